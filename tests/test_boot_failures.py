"""QEMU tests: boots that cannot go on end at once with a clear message and
status 1; a core that never came up is known to be dead, so nothing waits
for it; what only the monitors may start is refused (issue #17, "Boots and
the runner"). Each test would have waited for its timeout before."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import atoll_run  # noqa: E402
from atoll_run import Machine, Module  # noqa: E402
from test_userspace import run_shell  # noqa: E402

MiB = 1 << 20


def boot(smp=2, mem=1 << 30, modules=None, cmdline="", commands=(), timeout=60):
    mods = atoll_run.user_modules() if modules is None else modules
    m = Machine(smp=smp, mem=mem, accel="tcg", modules=mods, cmdline=cmdline)
    return atoll_run.boot(m, timeout=timeout, shell_commands=list(commands) or None)


# At 8 MiB the kernel has none left for the boot core's monitor (at 6 MiB,
# since the boot modules passed 2 MiB, GRUB itself runs out loading them).
# At 12 MiB the name server starts and a later system server cannot: the
# starter or the shell, by how much the boot modules take (each program
# added to the image moves the boundary).
@pytest.mark.parametrize("mem,whys", [(8 * MiB, ("no RAM left for user space",)),
                                      (12 * MiB, ("cannot start the starter", "cannot start the shell"))])
def test_too_little_memory_stops_the_machine(mem, whys):
    r = boot(mem=mem, timeout=60)
    assert not r.timed_out, r.console[-2000:]
    assert r.status == 1
    failed = r.events_named("boot_failed")
    assert len(failed) == 1 and any(w in failed[0]["why"] for w in whys) and \
        failed[0]["error"] == "ERR_NO_MEMORY", failed


def test_cores_beyond_the_memory_get_no_monitor_and_one_warning():
    """8 CPUs in 40 MiB: the first cores get the 4 MiB minimum each, the last
    two none. One warning names them (not one per core, and not a share too
    small for every core), and the mesh comes up without them."""
    r = boot(smp=8, mem=40 * MiB, commands=["cores"], timeout=90)
    assert not r.timed_out, r.console[-2000:]
    warnings = [w["msg"] for w in r.events_named("warning") if "no RAM left for user space" in w["msg"]]
    assert warnings == ["2 of 8 cores (6 to 7) have no RAM left for user space, so no monitor: "
                        "give the machine more memory (4 MiB a core at least)"], warnings
    up = r.events_named("mesh_up")
    assert len(up) == 1 and up[0]["cores"] == 6 and up[0]["down"] == 2, up


def test_a_monitor_that_is_not_a_program_stops_the_machine(tmp_path):
    bad = tmp_path / "monitor.elf"
    bad.write_bytes(b"this is not an ELF file\n" * 100)
    mods = [m for m in atoll_run.user_modules() if os.path.basename(m.path) != "monitor.elf"]
    r = boot(modules=[Module(str(bad))] + mods, timeout=60)
    assert not r.timed_out, r.console[-2000:]
    assert r.status == 1
    failed = r.events_named("boot_failed")
    assert len(failed) == 1 and failed[0]["why"] == "cannot start the monitor", failed
    assert failed[0]["error"] == "ERR_ELF_MAGIC"
    assert "boot: cannot start the monitor: ERR_ELF_MAGIC" in r.console


def test_a_dead_core_is_left_out_and_answered_for_at_once():
    """Core 3 never checks in (selftest=unlisted:3). The mesh comes up
    without it (the shell does not wait 120 s), and requests about it are
    answered at once with ERR_CORE_DOWN."""
    r = boot(smp=4, cmdline="selftest=unlisted:3",
             commands=["cores", "run 3 hello", "ps 3", "run 2 hello there", "wait", "ping 1 2 5"], timeout=100)
    assert not r.timed_out, r.console[-3000:]
    assert [e["core"] for e in r.events_named("core_down")] == [3]
    up = r.events_named("mesh_up")
    assert len(up) == 1 and up[0]["cores"] == 3 and up[0]["down"] == 1, up
    assert "core 3: down (never came up)" in r.console
    assert {e["core"]: e["state"] for e in r.events_named("core_state")} == {0: "up", 1: "up", 2: "up", 3: "down"}
    assert "run: ERR_CORE_DOWN" in r.console
    assert "ps: ERR_CORE_DOWN" in r.console
    assert "hello from domain" in r.console and r.events_named("ping")
    assert r.status == 0   # the last command, ping between live cores


def test_system_programs_only_the_monitors_start_and_timer_hz_zero_warns():
    r = run_shell(["run 1 monitor", "run 1 names", "run 0 shell", "status"], smp=2, timeout=120)
    assert r.console.count("run: ERR_NOT_PERMITTED") == 3, r.console[-2000:]
    assert not [e for e in r.events_named("domain_spawn") if e["core"] == 1 and e["name"] != "monitor"]
    r = boot(cmdline="timer_hz=0 poweroff", timeout=60)
    assert r.status == 0
    assert any("timer_hz must be 1..10000" in w["msg"] for w in r.events_named("warning"))


def test_wait_counts_timer_ticks():
    """`wait 50` with a domain that never ends gives up after 50 ticks
    (status 1); `kill` then lets a plain `wait` return."""
    r = run_shell(["run 1 xattack spin", "wait 50", "status", "kill 1 2", "wait"], smp=2, timeout=120)
    assert "wait: domains still running" in r.console
    assert r.status == 0
