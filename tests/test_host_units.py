"""Runs every host unit-test binary that hake declared (host_test in a
Hakefile.py), as listed in build/host-tests.txt. Each binary prints its failed
checks and exits nonzero if any failed; it is built with ASan and UBSan, so an
out-of-bounds read also fails it.

    make && /usr/bin/python3 -m pytest -q tests/test_host_units.py
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LISTING = ROOT / "build" / "host-tests.txt"
TIMEOUT = 300  # seconds per binary; the slowest takes well under one


def _listed():
    """Paths from the listing (relative to the repo root), or None if absent."""
    if not LISTING.is_file():
        return None
    return [line.strip() for line in LISTING.read_text().splitlines() if line.strip()]


def _params():
    listed = _listed()
    if listed is None:
        # One test that fails with the explanation, rather than silently none.
        return [pytest.param(None, id="host-tests-listing")]
    return [pytest.param(p, id=pathlib.Path(p).name) for p in listed]


@pytest.mark.parametrize("binary", _params())
def test_host_unit(binary):
    if binary is None:
        pytest.fail(f"{LISTING.relative_to(ROOT)} is missing: run `make` first "
                    "(it builds the host tests and writes the listing)", pytrace=False)
    path = ROOT / binary
    if not path.is_file():
        pytest.fail(f"{binary} is listed but not built: run `make`", pytrace=False)
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    try:
        proc = subprocess.run([str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        pytest.fail(f"{binary} did not finish within {TIMEOUT} s; output so far:\n{out}",
                    pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"{binary} exited with status {proc.returncode}; output:\n{proc.stdout}",
                    pytrace=False)
