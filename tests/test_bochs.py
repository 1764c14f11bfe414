"""Atoll on a second emulator: Bochs 2.7 (tools/run --emulator bochs,
docs/runner.md "Bochs").

Bochs's CPU models have x2APIC, so these boots are the suite's coverage of
the x2APIC path under emulation (QEMU 7.2's TCG has none; the KVM tests are
opt-in). Bochs also answers CPUID its own way: the boot report's topology
must still describe the machine Bochs was told to emulate (2 packages of 2
cores here; tests/host/test_cpuid_topo.c has the decoding).

Bochs counts guest time in instructions (atoll_bochs.IPS per guest second),
so the TSC the kernel calibrates against the PIT must come out at IPS.

The packages come from tools/install-deps, which make test runs.
"""
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_bochs  # noqa: E402
import atoll_run  # noqa: E402
from atoll_run import ConfigError, parse_args  # noqa: E402

KERNEL = os.path.join(ROOT, "build", "cpudriver", "atoll.elf")
needs_bochs = pytest.mark.skipif(not atoll_bochs.installed(),
                                 reason="Bochs is not installed: tools/install-deps")


def boot(args, shell_commands=None, timeout=300):
    if not os.path.exists(KERNEL):
        pytest.fail(f"{KERNEL} is missing: run `make` first")
    m, _ = parse_args(["--emulator", "bochs"] + args)
    r = atoll_run.boot(m, timeout=timeout, shell_commands=shell_commands)
    assert not r.timed_out, f"Bochs did not finish in {timeout}s; console tail:\n{r.console[-3000:]}"
    assert not r.malformed, r.malformed
    return r


def one(r, name):
    ev = r.events_named(name)
    assert len(ev) == 1, f"expected one {name} event, got {ev}\n{r.console[-3000:]}"
    return ev[0]


@needs_bochs
def test_four_cores_to_the_shell_in_x2apic_mode():
    r = boot(["--sockets", "2", "--cores", "2"],
             shell_commands=["cores", "ping 0 3 20", "run 3 hello bochs", "wait", "run 1 badboy ud2", "wait"])
    assert r.status == 0, f"{r.message}\n{r.console[-3000:]}"
    assert r.events_named("panic") == [], r.console[-3000:]

    b = one(r, "boot")
    assert b["x2apic"] is True
    # Guest time is Bochs's instruction count: the TSC runs at IPS, and the
    # calibration against the PIT must find that.
    assert abs(b["tsc_hz"] - atoll_bochs.IPS) < atoll_bochs.IPS // 100, b
    ups = sorted(r.events_named("core_up"), key=lambda e: e["core"])
    assert [(e["core"], e["apic"]) for e in ups] == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert all(e["x2apic"] and e["smep"] and e["smap"] for e in ups), ups
    assert one(r, "boot_summary")["cores_up"] == 4

    # Where each core sits, from its own CPUID: APIC id = package << 1 | core.
    for e in r.events_named("cpu_topology"):
        assert (e["package"], e["package_core"], e["thread"]) == (e["apic"] >> 1, e["apic"] & 1, 0), e
    t = one(r, "topology")
    assert (t["packages"], t["cores"], t["pus"], t["source"]) == (2, 4, 4, "cpuid.0xb"), t
    # [level, type, size, instances]: L1 and L2 per core, an L3 per package
    # (Bochs's leaf 4 would say L1 shared by 2 and one L3 for all).
    assert [(c[0], c[1], c[3]) for c in t["caches"]] == [(1, 1, 4), (1, 2, 4), (2, 3, 4), (3, 3, 2)], t
    assert "2 packages, 4 cores, 4 PUs" in r.console

    # User space on every core: monitors, their mesh, IPIs between cores
    # (x2APIC ICR writes), a domain run and one stopped by an exception.
    mons = [e for e in r.events_named("domain_spawn") if e["name"] == "monitor"]
    assert sorted(e["core"] for e in mons) == [0, 1, 2, 3]
    assert one(r, "mesh_up")["cores"] == 4
    assert re.search(r"^core 3: APIC id 3, node 0, \d+ domains", r.console, re.M), r.console[-2000:]
    p = one(r, "ping")
    assert (p["from"], p["to"], p["rounds"]) == (0, 3, 20) and p["median_ns"] > 0
    assert re.search(r"hello from domain \d+ on core 3 bochs\n", r.console)
    hello = [e for e in r.events_named("domain_exit") if e["name"] == "hello"]
    assert [(e["core"], e["why"]) for e in hello] == [(3, "exit status 0")]
    fault = one(r, "domain_fault")
    assert (fault["core"], fault["name"], fault["what"]) == (1, "badboy", "invalid opcode")
    assert one(r, "exit")["status"] == 0


@needs_bochs
@pytest.mark.parametrize("cmdline,want", [("poweroff", True), ("poweroff nox2apic", False)])
def test_apic_mode_follows_the_command_line(cmdline, want):
    r = boot(["--smp", "2", "--kernel", KERNEL, "--cmdline", cmdline])
    assert r.status == 0, f"{r.message}\n{r.console[-3000:]}"
    assert one(r, "boot")["x2apic"] is want
    assert {e["x2apic"] for e in r.events_named("core_up")} == {want}
    assert one(r, "boot_summary")["cores_up"] == 2


@needs_bochs
def test_a_panic_is_the_exit_status():
    """No isa-debug-exit in Bochs: the status is the kernel's `exit` event."""
    r = boot(["--smp", "1", "--kernel", KERNEL, "--cmdline", "poweroff selftest=panic"])
    assert r.status == 1, f"{r.message}\n{r.console[-3000:]}"
    assert one(r, "panic")["core"] == 0
    assert one(r, "exit")["status"] == 1
    assert r.message is None


# -- the runner's side (no boot) -------------------------------------------------------
def dry_config(capsys, *args):
    assert atoll_run.main(["--emulator", "bochs", "--dry-run", "--kernel", KERNEL] + list(args)) == 0
    return capsys.readouterr().out


def test_dry_run_prints_a_bochs_configuration(capsys):
    text = dry_config(capsys, "--smp", "8", "--sockets", "2", "--cores", "4", "--mem", "512M")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert f"cpu: count=2:4:1, ips={atoll_bochs.IPS}, model=corei7_skylake_x, reset_on_triple_fault=0" in lines
    assert "memory: guest=512, host=512" in lines
    assert "com1: enabled=1, mode=file, dev=/dev/stdout" in lines
    assert "clock: sync=none, time0=1" in lines
    assert any(ln.startswith("ata0-master: type=cdrom, path=") and ln.endswith(".iso, status=inserted")
               for ln in lines)
    text = dry_config(capsys, "--smp", "3", "--bochs-cpu", "ryzen")
    assert "cpu: count=1:3:1," in text and "model=ryzen," in text


def test_the_socket_console_config():
    m, _ = parse_args(["--emulator", "bochs", "--smp", "2"])
    text = atoll_bochs.config(m, 1024, "/x.iso", 4321, "/tmp/l")
    assert "com1: enabled=1, mode=socket-client, dev=127.0.0.1:4321" in text.splitlines()
    assert atoll_bochs.command("/r", "/d") == ["bochs", "-q", "-f", "/r", "-rc", "/d"]


def test_machine_pc_is_the_default_under_bochs():
    m, _ = parse_args(["--emulator", "bochs"])
    assert (m.machine, m.emulator, m.smp) == ("pc", "bochs", 4)
    m, _ = parse_args([])
    assert (m.machine, m.emulator) == ("q35", "qemu")


@pytest.mark.parametrize("args,msg", [
    (["--machine", "q35"], "Bochs emulates an i440FX PC"),
    (["--numa", "2"], "no SRAT"),
    (["--accel", "kvm"], "Bochs has no accelerator"),
    (["--x2apic", "off"], "--cmdline nox2apic"),
    (["--cpu-flags=-smap"], "--cpu-flags is for QEMU"),
    (["--bochs-cpu", "z80"], "unknown Bochs CPU model 'z80'"),
    (["--smp", "255"], "at most 254 CPUs"),
    (["--mem", "4G"], "at most 2048 MiB"),
    (["--smp", "6", "--cores", "2", "--threads", "3"], "--threads 3"),
    (["--smp", "6", "--sockets", "2", "--cores", "3"], "make cores * threads a power of two"),
    (["--gdb"], "--gdb is QEMU's stub"),
])
def test_bochs_refuses(args, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        parse_args(["--emulator", "bochs"] + args)


def test_bochs_shapes_that_fit():
    for args in (["--smp", "3"], ["--smp", "6", "--sockets", "3", "--cores", "2"],
                 ["--smp", "8", "--cores", "4", "--threads", "2"]):
        parse_args(["--emulator", "bochs"] + args)


def test_exit_event_status():
    assert atoll_run._exit_event_status('@atoll {"event":"exit","status":0}') == 0
    assert atoll_run._exit_event_status('  @atoll {"event":"exit","status":1}') == 1
    for bad in ('@atoll {"event":"exit","status":"0"}', '@atoll {"event":"exit","status":300}',
                '@atoll {"event":"exit",', 'x @atoll {"event":"exit","status":0}',
                '@atoll {"event":"exited","status":0}'):
        assert atoll_run._exit_event_status(bad) is None, bad
