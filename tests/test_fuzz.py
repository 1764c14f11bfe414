"""The fuzz targets (fuzz/, docs/fuzzing.md) in make test, briefly: every
C target built for AFL++ and fuzzed for 20000 executions from its seed
corpus (no crash, no hang, paths found), every Python target likewise; the
real seed inputs accepted by their parsers. make fuzz runs them for longer;
the replay of each corpus under ASan/UBSan is a host test
(build/host/fuzz/replay_<target>, tests/test_host_units.py).

    /usr/bin/python3 -m pytest -q tests/test_fuzz.py
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_pyfuzz  # noqa: E402
from load_tool import load_tool  # noqa: E402

FUZZ_TOOL = os.path.join(ROOT, "tools", "fuzz")
PY_EXECS = 5000         # Python targets: 1 to 3 s each on an idle machine
EXECS = 20000           # AFL++ targets: about 1 to 5 s each on an idle 2-core machine
HAVE_AFL = shutil.which("afl-fuzz") and shutil.which("afl-clang-fast")


def _load_tool():
    return load_tool(FUZZ_TOOL, "atoll_fuzz_tool")


fuzz_tool = _load_tool()
C_TARGETS = {t[0]: t for t in fuzz_tool.c_targets()}


def test_every_target_has_a_corpus():
    for name in list(C_TARGETS) + fuzz_tool.PY_TARGETS:
        d = os.path.join(ROOT, "fuzz", "corpus", name)
        assert os.path.isdir(d) and len(os.listdir(d)) >= 3, name
        for f in os.listdir(d):     # afl-fuzz takes inputs of up to 1 MB
            assert os.path.getsize(os.path.join(d, f)) < 1 << 20, (name, f)


# Real inputs are real: every seed goes all the way through its parser
# (elf: the CPU driver is not a user program, so elf_check refuses it).
@pytest.mark.parametrize("name,refused", [("mb2", 0), ("acpi", 0), ("acpi_table", 0), ("elf", 1),
                                          ("idl", 0), ("args", 0), ("machine", 0)])
def test_real_seeds_are_accepted(name, refused):
    exe = os.path.join(ROOT, "build", "host", "fuzz", "replay_" + name)
    if not os.path.exists(exe):
        pytest.fail(f"{exe} is missing: run `make` first")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(os.listdir(os.path.join(ROOT, "fuzz", "corpus", name)))
    assert f"replay_{name}: {n} inputs, {n - refused} accepted" in r.stdout, r.stdout


@pytest.mark.skipif(not HAVE_AFL, reason="afl++ not installed: tools/install-deps")
@pytest.mark.parametrize("name", sorted(C_TARGETS))
def test_afl_short_run(name, tmp_path, monkeypatch):
    monkeypatch.setattr(fuzz_tool, "OUT", str(tmp_path))
    exe = fuzz_tool.build(*C_TARGETS[name], quiet=True)
    # A number of executions rather than seconds, so a loaded machine does
    # the same work (slower); 60 s is only the bound.
    r = fuzz_tool.afl(name, exe, 60, str(tmp_path / "out"), execs=EXECS)
    assert r["crashes"] == 0 and r["hangs"] == 0, r
    assert r["execs"] >= EXECS // 2, r    # it ran, in its persistent loop
    assert r["corpus"] >= r["seeds"] >= 3 and r["edges"] > 20, r


@pytest.mark.parametrize("name", atoll_pyfuzz.TARGETS)
def test_python_short_run(name, tmp_path):
    s = atoll_pyfuzz.run(name, 60, out_dir=str(tmp_path), execs=PY_EXECS)
    assert s.crashes == 0, open(s.crash_files[0] + ".txt").read()
    assert s.execs >= PY_EXECS and s.lines > 100, s


def test_python_fuzzer_reports_an_undocumented_exception(tmp_path, monkeypatch):
    """A reader that raises something other than TopologyError is a crash,
    saved with its traceback (what found the XML reader's ValueErrors)."""
    target = atoll_pyfuzz.TARGETS["topology_spec"]

    def broken(text):
        if "pack:3" in text:
            raise KeyError("planted")
        target.fn(text)
    monkeypatch.setitem(atoll_pyfuzz.TARGETS, "topology_spec",
                        atoll_pyfuzz.Target("topology_spec", broken, target.expected, target.dictionary))
    s = atoll_pyfuzz.run("topology_spec", 0, out_dir=str(tmp_path), replay_only=True)
    assert s.crashes == 1
    assert "KeyError: 'planted'" in open(s.crash_files[0] + ".txt").read()
