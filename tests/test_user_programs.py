"""Every user program the build makes (build/user/*.elf, linked by
lib/user.lds) passes the CPU driver's own ELF checker, run on the host
through tests/host/test_elf, and has the layout the loader expects: static,
linked at USER_MIN, text R+X, rodata R, data R+W, nothing W+X.

    make && /usr/bin/python3 -m pytest -q tests/test_user_programs.py
"""
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
USER = ROOT / "build" / "user"
CHECKER = ROOT / "build" / "host" / "tests" / "host" / "test_elf"
USER_MIN = 0x400000


def _programs():
    progs = sorted(USER.glob("*.elf")) if USER.is_dir() else []
    if not progs:
        return [pytest.param(None, id="no-user-programs")]
    return [pytest.param(p, id=p.stem) for p in progs]


@pytest.mark.parametrize("elf", _programs())
def test_user_program(elf):
    if elf is None:
        pytest.fail("build/user/ holds no programs: run `make` first", pytrace=False)
    if not CHECKER.is_file():
        pytest.fail(f"{CHECKER.relative_to(ROOT)} is not built: run `make`", pytrace=False)
    proc = subprocess.run([str(CHECKER), str(elf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    assert proc.returncode == 0, f"the CPU driver's ELF checker refuses {elf.name}:\n{proc.stdout}"

    segs = re.findall(r"^\s*([R-])([W-])([X-]) vaddr (0x[0-9a-f]+)", proc.stdout, re.M)
    flags = ["".join(s[:3]) for s in segs]
    assert flags == ["R-X", "R--", "RW-"] or flags == ["R-X", "RW-"] or flags == ["R-X", "R--"], \
        f"{elf.name}: unexpected segments {flags}"
    assert int(segs[0][3], 16) == USER_MIN, f"{elf.name}: text not at USER_MIN"

    hdr = subprocess.run(["readelf", "-lW", str(elf)], check=True, capture_output=True, text=True).stdout
    assert "EXEC (Executable file)" in hdr
    assert "INTERP" not in hdr and "DYNAMIC" not in hdr
