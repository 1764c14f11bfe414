"""QEMU tests of user space (issue #3): monitors on every core, the shell,
domains started on chosen cores, forbidden accesses refused or stopped,
random system calls, local message round trips, malformed programs.

Each test boots under TCG, types shell commands (tools/run's `--`) and checks
the events and lines the guest prints (docs/boot-report.md, docs/shell.md,
docs/user-space.md)."""
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine, Module  # noqa: E402


def run_shell(commands, smp=2, numa=0, extra_modules=(), timeout=240, mem=1 << 30, cmdline=""):
    modules = atoll_run.user_modules()
    names = {os.path.basename(m.path) for m in modules}
    for p in atoll_run.USER_PROGRAMS:
        if p + ".elf" not in names:
            pytest.fail(f"build/user/{p}.elf is missing: run `make` first")
    m = Machine(smp=smp, numa=numa, mem=mem, accel="tcg", modules=modules + list(extra_modules), cmdline=cmdline)
    r = atoll_run.boot(m, timeout=timeout, shell_commands=list(commands))
    assert not r.timed_out, f"timed out; console tail:\n{r.console[-4000:]}"
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-4000:]
    return r


PS_ROW = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\S+)\s+(runnable|blocked|stopped)\s+\d+\s+\d+\s+\d+ KiB$", re.M)


def spawns(r, name):
    return [e for e in r.events_named("domain_spawn") if e["name"] == name]


def exits(r, name):
    return [e for e in r.events_named("domain_exit") if e["name"] == name]


def test_monitor_on_every_core_and_domains_everywhere():
    cmds = [f"run {c} hello core{c}" for c in range(8)] + ["wait", "ps"]
    r = run_shell(cmds, smp=8, numa=2)
    assert r.status == 0, r.console[-3000:]
    assert sorted(e["core"] for e in spawns(r, "monitor")) == list(range(8))
    # QEMU's -cpu max has SMEP and SMAP; every core turns them on.
    assert all(e["smep"] and e["smap"] for e in r.events_named("core_up"))
    assert sorted(e["core"] for e in spawns(r, "hello")) == list(range(8))
    for c in range(8):
        assert re.search(rf"hello from domain \d+ on core {c} core{c}\n", r.console), c
    done = exits(r, "hello")
    assert sorted(e["core"] for e in done) == list(range(8))
    assert all(e["why"] == "exit status 0" and e["reclaimed"] for e in done)
    # ps lists a monitor on every core, and the shell on core 0 (its rows
    # found by their shape: another domain's line may break the one the
    # shell echoed the command on).
    rows = PS_ROW.findall(r.console)
    assert sorted(int(c) for c, i, n, _ in rows if n == "monitor" and i == "1") == list(range(8)), rows
    assert [c for c, _, n, _ in rows if n == "shell"] == ["0"], rows


def test_shell_commands_and_status():
    r = run_shell(["help", "cores", "mem", "nosuchcommand", "status", "ps 1"], smp=4, numa=2)
    out = r.console
    assert "run CORE|all PROGRAM" in out
    assert len(re.findall(r"^core \d: APIC id \d, node \d,", out, re.M)) == 4
    assert re.search(r"^\s+0\s+2\s+\d+\s+\d+", out, re.M) and re.search(r"^\s+1\s+2\s+\d+\s+\d+", out, re.M)
    assert "nosuchcommand: unknown command" in out
    assert re.search(r"atoll> status\n127\n", out)
    assert r.status == 0   # the last command, ps 1


def test_last_command_status_is_the_exit_status():
    r = run_shell(["run 1 nosuchprogram"])
    assert "run: ERR_NOT_FOUND" in r.console
    assert r.status == 1


FATAL = {
    "kernel-read": "page fault", "kernel-write": "page fault", "null": "page fault",
    "unmapped": "page fault", "cli": "general protection fault", "hlt": "general protection fault",
    "cr3": "general protection fault", "wrmsr": "general protection fault",
    "port": "general protection fault", "ud2": "invalid opcode", "div0": "divide error",
    "exec-stack": "page fault", "write-code": "page fault",
    "compat": "general protection fault",   # the 32-bit code selector is kernel-only
}


def test_forbidden_accesses_are_refused_or_stopped():
    cmds = ["run 1 badboy checks", "wait"]
    for mode in FATAL:
        cmds += [f"run 1 badboy {mode}", "wait"]
    cmds += ["run 1 badboy edge-syscall", "wait", "run 1 hello after", "wait", "ps"]
    r = run_shell(cmds)
    m = re.search(r"badboy: (\d+) checks, (\d+) unexpected", r.console)
    assert m and int(m.group(1)) >= 45 and m.group(2) == "0", \
        [ln for ln in r.console.splitlines() if "UNEXPECTED" in ln] or r.console[-5000:]
    for what in ("re-create a capability without the Kernel cap", "notify with a Frame", "wait times out"):
        assert re.search(rf"check {what} +ERR_\w+ +ok", r.console), what
    faults = r.events_named("domain_fault")
    assert [f["what"] for f in faults] == list(FATAL.values()), faults
    assert all(f["core"] == 1 and f["name"] == "badboy" for f in faults)
    for f in faults:   # the report names the domain, its core and the address
        assert re.search(rf"domain badboy \(id {f['domain']}\) on core 1: {f['what']} at rip {f['rip']:#x}",
                         r.console)
    kread = faults[0]
    assert kread["addr"] == 0xffffffff80200000
    # A syscall in the last user page would return to a non-canonical rip:
    # the kernel stops the domain instead of faulting in ring 0.
    assert exits(r, "badboy")[-1]["why"] == "non-canonical return address or stack"
    assert [e["reclaimed"] for e in exits(r, "badboy")] == [True] * (len(FATAL) + 2)
    # The rest of the system runs on.
    assert "hello from domain" in r.console and "on core 1 after" in r.console
    assert r.status == 0


def test_random_system_calls_on_four_cores():
    cmds = [f"run {c} fuzz {c + 1} 10000" for c in range(4)] + ["wait", "run 2 hello alive", "wait", "ps"]
    r = run_shell(cmds, smp=4)
    done = re.findall(r"fuzz: 10000 calls on core (\d)", r.console)
    assert sorted(int(c) for c in done) == [0, 1, 2, 3], r.console[-4000:]
    assert r.events_named("domain_fault") == []
    assert [e["why"] for e in exits(r, "fuzz")] == ["exit status 0"] * 4
    assert "on core 2 alive" in r.console
    assert r.status == 0


def test_lmp_round_trips():
    r = run_shell(["run 0 lmpbench 300", "wait", "run 1 lmpbench 300", "wait"])
    bench = r.events_named("lmp_bench")
    assert sorted(b["core"] for b in bench) == [0, 1], r.console[-3000:]
    for b in bench:
        assert b["rounds"] == 300
        assert 0 < b["null_min"] <= b["null_median"]
        assert 0 < b["cap_min"] <= b["cap_median"]
    # client and server both ended cleanly
    assert [e["why"] for e in exits(r, "lmpbench")] == ["exit status 0"] * 4


def test_malformed_programs_are_refused(tmp_path):
    hello = open(os.path.join(ROOT, "build", "user", "hello.elf"), "rb").read()
    (tmp_path / "notelf.elf").write_bytes(b"this is not an ELF file" * 10)
    (tmp_path / "cut.elf").write_bytes(hello[:200])
    bad_machine = bytearray(hello)
    bad_machine[18] = 0x28   # e_machine: ARM
    (tmp_path / "arm.elf").write_bytes(bytes(bad_machine))
    mods = [Module(str(tmp_path / n)) for n in ("notelf.elf", "cut.elf", "arm.elf")]
    cmds = ["run 1 notelf", "run 1 cut", "run 1 arm", "run 1 hello ok", "wait"]
    r = run_shell(cmds, extra_modules=mods)
    assert "run: ERR_ELF_MAGIC" in r.console
    assert re.search(r"run: ERR_(TRUNCATED|ELF_HEADER|ELF_SEGMENT)", r.console), r.console[-3000:]
    assert "run: ERR_ELF_CLASS" in r.console
    assert [e["name"] for e in r.events_named("domain_spawn") if e["core"] == 1] == ["monitor", "hello"]
    assert "on core 1 ok" in r.console


def test_threads_of_a_domain():
    """lib/thread: 8 threads (and 1, and 31) on core 1 meet at a barrier,
    share a counter under a mutex and a bounded buffer on two condition
    variables; the lone first thread waiting on nobody gets ERR_DEADLOCK; a
    thread on a core that does not exist is ERR_INVALID_ARG. A stack overrun ends only
    its domain, with a thread_fatal event, and the shell goes on."""
    r = run_shell(["run 1 threads", "wait", "run 1 threads 1 5", "wait", "run 1 threads 31 7", "wait",
                   "run 1 threads overrun", "wait", "run 1 hello after", "wait"], smp=2)
    runs = r.events_named("threads")
    assert [(e["threads"], e["rounds"]) for e in runs] == [(8, 20), (1, 5), (31, 7)], runs
    for e in runs:
        assert e["ok"] is True, e
        assert e["core"] == 1
        assert e["counter"] == e["counter_want"] == e["threads"] * e["rounds"]
        assert e["items"] == e["items_want"] and e["sum"] == e["sum_want"]
        assert e["lasts"] == e["rounds"] and e["most_in_section"] == 1
        assert e["peak_alive"] == e["threads"] + 1
        assert e["other_core"] == "ERR_INVALID_ARG" and e["deadlock"] == "ERR_DEADLOCK"
    fatal = r.events_named("thread_fatal")
    assert len(fatal) == 1 and fatal[0]["msg"] == "thread overran its stack", fatal
    assert [e["why"] for e in exits(r, "threads")] == ["exit status 0"] * 3 + ["exit status 70"]
    assert [e["why"] for e in exits(r, "hello")] == ["exit status 0"]
