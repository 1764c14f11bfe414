"""QEMU boot tests: every core must report, and the topology the guest
discovered (cores, APIC ids, NUMA nodes, their memory and distances, where
each core's kernel memory lives) must equal the machine QEMU was given.

Each test boots the real kernel image under TCG (never KVM: CI may not have
it) with `poweroff` on the command line and checks the guest's
machine-readable events (docs/boot-report.md), never the absence of a crash.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import GiB, MiB, Machine, NumaNode  # noqa: E402

DIRECT_MAP_BASE = 0xffff800000000000
KERNEL = os.path.join(ROOT, "build", "cpudriver", "atoll.elf")


def bits(n):
    """Bits QEMU gives a topology level of n members in the APIC id."""
    return (n - 1).bit_length()


def expected_apic_ids(m):
    """APIC id of each CPU index, as QEMU numbers them (packed fields of
    ceil(log2(count)) bits: socket, core, thread)."""
    sockets, cores, threads = m.sockets or 1, m.cores or m.smp, m.threads or 1
    if m.sockets is None and m.cores is None and m.threads is None:
        sockets, cores, threads = 1, m.smp, 1
    ids = []
    for i in range(m.smp):
        t = i % threads
        c = (i // threads) % cores
        s = i // (threads * cores)
        ids.append((s << (bits(cores) + bits(threads))) | (c << bits(threads)) | t)
    return ids


def boot(m, timeout=240):
    if not os.path.exists(KERNEL):
        pytest.fail(f"{KERNEL} is missing: run `make` first")
    m.accel = "tcg"
    m.cmdline = ("poweroff " + m.cmdline).strip()
    r = atoll_run.boot(m, timeout=timeout)
    assert not r.timed_out, f"guest did not finish in {timeout}s; console tail:\n{r.console[-3000:]}"
    assert not r.malformed, f"malformed event lines: {r.malformed}"
    return r


def one(r, name):
    ev = r.events_named(name)
    assert len(ev) == 1, f"expected one {name} event, got {ev}\n{r.console[-3000:]}"
    return ev[0]


def check_machine(r, m):
    """The guest's view must equal machine m, and the boot must succeed."""
    tail = r.console[-4000:]
    assert r.status == 0, f"status {r.status} ({r.message}); console tail:\n{tail}"
    assert one(r, "exit")["status"] == 0
    assert r.events_named("panic") == [], tail
    assert r.events_named("warning") == [], tail
    summary = one(r, "boot_summary")
    assert summary["cores_found"] == m.smp
    assert summary["cores_up"] == m.smp
    assert summary["boot_ms"] > 0

    nodes = m.numa or [NumaNode(cpus=list(range(m.smp)), mem=m.mem)]
    node_of_cpu = {c: i for i, n in enumerate(nodes) for c in n.cpus}
    # With one node QEMU gives no SRAT; the guest then has node 0 only.
    guest_nodes = sorted(r.events_named("numa_node"), key=lambda e: e["node"])
    assert [e["node"] for e in guest_nodes] == list(range(len(nodes)))

    ups = sorted(r.events_named("core_up"), key=lambda e: e["core"])
    assert [e["core"] for e in ups] == list(range(m.smp)), "every core reports exactly once"
    apics = expected_apic_ids(m)
    for e in ups:
        cpu = e["core"]   # core ids follow the MADT, which QEMU lists by CPU index
        assert e["apic"] == apics[cpu], e
        assert e["node"] == node_of_cpu[cpu], e
        assert e["kmem_size"] > 0
        assert e["x2apic"] is False   # TCG in QEMU 7.2 has no x2APIC

    for n, (want, got) in enumerate(zip(nodes, guest_nodes)):
        assert got["cpus"] == sorted(want.cpus), got
        assert got["apic_ids"] == [apics[c] for c in sorted(want.cpus)], got
        # SRAT leaves out the legacy hole below 1 MiB (384 KiB) in node 0.
        assert abs(got["mem_bytes"] - want.mem) <= 1 * MiB, (got["mem_bytes"], want.mem)
        if m.numa:
            assert got["distances"] == m.dist[n], got
            covered = sum(hi - lo for lo, hi in got["ranges"])
            assert covered == got["mem_bytes"]
        else:
            assert got["distances"] == [10]

    # Each core's kernel memory lies in its own node's memory.
    for e in ups:
        g = guest_nodes[e["node"]]
        assert e["kmem_node"] == e["node"], e
        if m.numa:
            lo, hi = e["kmem_base"], e["kmem_base"] + e["kmem_size"]
            assert any(a <= lo and hi <= b for a, b in g["ranges"]), (e, g["ranges"])
    # Blocks never overlap.
    spans = sorted((e["kmem_base"], e["kmem_base"] + e["kmem_size"]) for e in ups)
    for (a0, a1), (b0, _b1) in zip(spans, spans[1:]):
        assert a1 <= b0, spans


# -- core counts -----------------------------------------------------------------
@pytest.mark.parametrize("smp", [1, 2, 3, 4, 7, 8, 16, 32])
def test_cores_one_node(smp):
    m = Machine(smp=smp, mem=512 * MiB)
    check_machine(boot(m), m)


@pytest.mark.parametrize("smp,numa", [(2, 2), (4, 2), (8, 2), (8, 4), (16, 4), (32, 2)])
def test_cores_numa(smp, numa):
    m = Machine(smp=smp, numa=numa, mem=1 * GiB)
    check_machine(boot(m), m)


def test_64_cores_4_nodes():
    m = Machine(smp=64, numa=4, mem=2 * GiB,
                dist=[[10, 20, 30, 40], [20, 10, 20, 30], [30, 20, 10, 20], [40, 30, 20, 10]])
    check_machine(boot(m), m)


# -- NUMA layouts ----------------------------------------------------------------
def test_uneven_nodes_and_distances():
    m = Machine(smp=7, mem=1536 * MiB,
                numa=[NumaNode(cpus=[0], mem=256 * MiB), NumaNode(cpus=[1, 2, 3, 4], mem=1024 * MiB),
                      NumaNode(cpus=[5, 6], mem=256 * MiB)],
                dist=[[10, 21, 31], [21, 10, 15], [31, 15, 10]])
    check_machine(boot(m), m)


def test_interleaved_cpus():
    """Nodes need not own contiguous CPU ranges."""
    m = Machine(smp=4, mem=1 * GiB,
                numa=[NumaNode(cpus=[0, 2], mem=512 * MiB), NumaNode(cpus=[1, 3], mem=512 * MiB)])
    check_machine(boot(m), m)


def test_node_without_memory_borrows_nearest():
    """A node with CPUs but no memory: its cores' kernel memory comes from the
    nearest node, with a warning saying so, and every core still comes up."""
    m = Machine(smp=4, mem=1 * GiB,
                numa=[NumaNode(cpus=[0, 1], mem=1 * GiB), NumaNode(cpus=[2, 3], mem=0)],
                dist=[[10, 20], [20, 10]])
    r = boot(m)
    assert r.status == 0, r.console[-3000:]
    assert one(r, "boot_summary")["cores_up"] == 4
    ups = {e["core"]: e for e in r.events_named("core_up")}
    assert ups[2]["node"] == 1 and ups[2]["kmem_node"] == 0
    warnings = [w["msg"] for w in r.events_named("warning")]
    assert any("node 1" in w for w in warnings), warnings


# -- memory sizes and machine types ------------------------------------------------
@pytest.mark.parametrize("mem,smp,machine", [
    (128 * MiB, 1, "q35"),
    (128 * MiB, 8, "pc"),
    (3 * GiB, 4, "pc"),       # pc: RAM above 3.5 GiB moves above 4 GiB
    (6 * GiB, 4, "q35"),      # q35: RAM above 2 GiB moves above 4 GiB
])
def test_memory_sizes(mem, smp, machine):
    m = Machine(smp=smp, mem=mem, machine=machine)
    check_machine(boot(m), m)


def test_above_4g_on_two_nodes():
    """Node 1's memory lies entirely above 4 GiB: its cores' kernel memory too."""
    m = Machine(smp=4, numa=2, mem=6 * GiB)
    r = boot(m)
    check_machine(r, m)
    for e in r.events_named("core_up"):
        if e["node"] == 1:
            assert e["kmem_base"] >= 4 * GiB, e


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_sockets_cores_threads(machine):
    """2 sockets x 3 cores x 2 threads: QEMU leaves gaps in the APIC ids."""
    m = Machine(smp=12, sockets=2, cores=3, threads=2, machine=machine, numa=2, mem=1 * GiB)
    r = boot(m)
    check_machine(r, m)
    assert sorted(e["apic"] for e in r.events_named("core_up")) != list(range(12))


# -- x2APIC ------------------------------------------------------------------------
def test_xapic_under_tcg():
    m = Machine(smp=2)
    r = boot(m)
    check_machine(r, m)
    assert one(r, "boot")["x2apic"] is False


# TCG's -cpu max has SMAP: every core turns it on unless the command line
# says nosmap (for hosts whose KVM cannot run stac/clac, docs/kvm.md).
@pytest.mark.parametrize("cmdline,want", [("", True), ("nosmap", False)])
def test_smap_follows_the_command_line(cmdline, want):
    r = boot(Machine(smp=2, cmdline=cmdline))
    assert r.status == 0, r.console[-3000:]
    ups = r.events_named("core_up")
    assert len(ups) == 2 and {e["smap"] for e in ups} == {want} and {e["smep"] for e in ups} == {True}, ups


# x2APIC needs KVM (QEMU 7.2's TCG has none). KVM is opt-in: on a nested host
# every exit is so costly that a 2-core boot can take minutes, and the suite
# must never depend on it (docs/runner.md, Known problems).
@pytest.mark.skipif(not (os.environ.get("ATOLL_TEST_KVM") == "1" and atoll_run.kvm_usable()),
                    reason="KVM tests are opt-in: ATOLL_TEST_KVM=1")
@pytest.mark.parametrize("cmdline,want", [("", True), ("nox2apic", False)])
def test_x2apic_under_kvm(cmdline, want):
    m = Machine(smp=2, x2apic="on", cmdline=cmdline)
    m.cmdline = ("poweroff " + cmdline).strip()
    m.accel = "kvm"
    r = atoll_run.boot(m, timeout=120)
    assert r.status == 0, r.console[-3000:]
    assert {e["x2apic"] for e in r.events_named("core_up")} == {want}


# -- failures are reported, and contained -------------------------------------------
def test_exception_on_an_application_core_is_contained():
    m = Machine(smp=4, cmdline="selftest=fault:2")
    r = boot(m)
    assert r.status == 1   # the run reports failure...
    p = one(r, "panic")
    assert p["core"] == 2 and p["what"] == "page fault"
    assert "accessing 0x1000" in p["msg"]
    # ...with registers and a symbolized backtrace...
    assert "EXCEPTION on core 2" in r.console
    assert "selftest_fault+0x" in r.console
    assert "ap_main+0x" in r.console.split("EXCEPTION on core 2", 1)[1]
    # ...and the other cores run on.
    assert one(r, "core_failed")["core"] == 2
    assert one(r, "boot_summary")["cores_up"] == 3
    assert sorted(e["core"] for e in r.events_named("core_up")) == [0, 1, 2, 3]


def test_exception_on_the_boot_core():
    r = boot(Machine(smp=2, cmdline="selftest=fault:0"))
    assert r.status == 1
    p = one(r, "panic")
    assert p["core"] == 0 and p["what"] == "page fault"
    assert "rip 0x" in r.console and "rflags" in r.console and "cr2" in r.console
    assert "bsp_main+0x" in r.console
    assert one(r, "exit")["status"] == 1


def test_panic_has_backtrace():
    r = boot(Machine(smp=1, cmdline="selftest=panic"))
    assert r.status == 1
    p = one(r, "panic")
    assert p["what"] == "panic" and "selftest" in p["msg"]
    assert "backtrace:" in r.console and "bsp_main+0x" in r.console


def test_a_core_cannot_reach_another_cores_kernel_memory():
    """Core 1 reads core 0's kernel block through its own direct map: the
    page is not there, so it faults at exactly that address."""
    r = boot(Machine(smp=2, cmdline="selftest=probe:1"))
    core0 = [e for e in r.events_named("core_up") if e["core"] == 0][0]
    p = one(r, "panic")
    assert p["core"] == 1 and p["what"] == "page fault"
    assert f"accessing {DIRECT_MAP_BASE + core0['kmem_base']:#x}" in p["msg"]
    assert "not present" in p["msg"]


def test_core_that_never_checks_in_is_reported_by_apic_id():
    r = boot(Machine(smp=4, cmdline="selftest=unlisted:3 smp_timeout_ms=500"))
    assert r.status == 1
    t = one(r, "core_timeout")
    assert t["apic"] == 3
    assert "APIC id 3" in r.console
    s = one(r, "boot_summary")
    assert s["cores_up"] == 3 and s["cores_found"] == 4


def test_timescale_slows_every_clock():
    """timescale=4: the kernel counts 4 of the TSC's measured seconds as one
    (docs/boot-report.md), and so does every domain (its tsc_hz); the
    machine works as usual (every core up, a round trip between domains
    timed in its own time). A value out of range warns and keeps 1."""
    from test_userspace import run_shell
    r = run_shell(["run 1 lmpbench 50", "wait"], smp=4, cmdline="timescale=4")
    b = one(r, "boot")
    assert b["timescale"] == 4 and b["tsc_hz"] == 4 * b["tsc_hz_measured"], b
    assert len(r.events_named("core_up")) == 4, r.console[-3000:]
    [lmp] = r.events_named("lmp_bench")
    assert lmp["tsc_hz"] == b["tsc_hz"] and lmp["rounds"] == 50, lmp
    r = boot(Machine(smp=1, cmdline="timescale=0"))
    assert r.status == 0 and one(r, "boot")["timescale"] == 1
    assert any("timescale" in w["msg"] for w in r.events_named("warning"))


def test_bad_command_line_value_warns():
    r = boot(Machine(smp=1, cmdline="smp_timeout_ms=soon"))
    assert r.status == 0
    assert any("smp_timeout_ms" in w["msg"] for w in r.events_named("warning"))
    assert one(r, "boot")["cmdline"] == "poweroff smp_timeout_ms=soon"


def test_runner_cli_maps_guest_status():
    """tools/run exits with the guest's own status: 0 on success, 1 on failure."""
    import subprocess
    run = [sys.executable, os.path.join(ROOT, "tools", "run"), "--accel", "tcg", "--smp", "2",
           "--numa", "2", "--poweroff", "--quiet", "--timeout", "120"]
    ok = subprocess.run(run, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    bad = subprocess.run(run + ["--cmdline", "selftest=panic"], capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout[-2000:] + bad.stderr[-2000:]
