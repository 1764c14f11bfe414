"""The per-core rule, checked on the linked CPU driver.

Every writable byte of kernel state must lie in the per-core range
(__percore_start..__percore_end: .data and .bss), which each core maps to its
own private copy. The only other writable sections allowed are the boot
sections (.boot, .boot.bss: used on the boot page tables only, unmapped
afterwards) and .bootshared (written by the boot core before any other core
starts, mapped read-only on every core afterwards). A change that adds, say,
a variable in a section of its own fails here.
"""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELF = os.path.join(ROOT, "build", "cpudriver", "atoll.elf")
ALLOWED_OUTSIDE = {".boot", ".boot.bss", ".bootshared"}

SHF_WRITE, SHF_ALLOC, SHF_EXEC = 0x1, 0x2, 0x4


def sections(path):
    """(name, addr, size, flags) of every section, from readelf."""
    out = subprocess.run(["readelf", "-S", "-W", path], check=True, capture_output=True, text=True).stdout
    result = []
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("["):
            continue
        body = line.split("]", 1)[1].split()
        if len(body) < 7 or body[0] == "Name":
            continue
        name, addr, size, flags = body[0], int(body[2], 16), int(body[4], 16), body[6]
        bits = (SHF_WRITE if "W" in flags else 0) | (SHF_ALLOC if "A" in flags else 0) | (
            SHF_EXEC if "X" in flags else 0)
        result.append((name, addr, size, bits))
    return result


def symbols(path):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


def violations(path):
    """Sentences naming each breach of the per-core rule (empty: none)."""
    syms = symbols(path)
    lo, hi = syms["__percore_start"], syms["__percore_end"]
    found = []
    for name, addr, size, bits in sections(path):
        if not (bits & SHF_ALLOC) or size == 0:
            continue
        if bits & SHF_WRITE and bits & SHF_EXEC and name not in (".boot",):
            found.append(f"section {name} is writable and executable (W^X)")
        if not bits & SHF_WRITE:
            continue
        inside = lo <= addr and addr + size <= hi
        if name in (".data", ".bss") and not inside:
            found.append(f"{name} at {addr:#x}+{size:#x} lies outside the per-core range {lo:#x}..{hi:#x}")
        elif not inside and name not in ALLOWED_OUTSIDE:
            found.append(f"writable section {name} at {addr:#x} lies outside the per-core range "
                         f"{lo:#x}..{hi:#x}: state there would be shared between cores")
    return found


@pytest.fixture(scope="module")
def elf():
    if not os.path.exists(ELF):
        pytest.fail(f"{ELF} is missing: run `make` first")
    return ELF


def test_kernel_obeys_per_core_rule(elf):
    assert violations(elf) == []


def test_per_core_range_is_page_aligned(elf):
    syms = symbols(elf)
    assert syms["__percore_start"] % 4096 == 0
    assert syms["__percore_end"] % 4096 == 0
    assert syms["__percore_start"] <= syms["__data_start"] <= syms["__bss_end"] <= syms["__percore_end"]


def test_checker_catches_shared_writable_state(elf, tmp_path):
    """The check itself must fail on a kernel with a writable section
    outside the per-core range."""
    bad = tmp_path / "bad.elf"
    blob = tmp_path / "blob"
    blob.write_bytes(b"\0" * 64)
    subprocess.run(["objcopy", "--add-section", f".shared_counter={blob}",
                    "--set-section-flags", ".shared_counter=alloc,load,data",
                    "--change-section-address", ".shared_counter=0xffffffff80100000",
                    elf, str(bad)], check=True, capture_output=True)
    found = violations(str(bad))
    assert any(".shared_counter" in v for v in found), found


def test_checker_catches_data_moved_out(elf, tmp_path):
    bad = tmp_path / "bad.elf"
    subprocess.run(["objcopy", "--change-section-address", ".bss+0x100000", elf, str(bad)],
                   check=True, capture_output=True)
    assert any(v.startswith(".bss") for v in violations(str(bad)))


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils missing")
def test_text_and_rodata_are_not_writable(elf):
    for name, _addr, _size, bits in sections(elf):
        if name in (".text", ".rodata"):
            assert not bits & SHF_WRITE, name
