"""The topology service (servers/topo) against what the machine really is.

A 16-core, 4-node machine (2 packages x 4 cores x 2 threads, a node per
half package) with a non-default, asymmetric-looking SLIT boots under TCG;
the shell's `topo` commands ask the service, and every answer must match
what ACPI gave (the kernel's own numa_node events of the boot report) and
what QEMU's CPUID says for that -smp (package, core and thread from the CPU
index, TCG's caches: L1 and L2 per core, L3 per package). Nearest-first
orders are recomputed here from the distance matrix and the documented rule;
a core or node the machine does not have gives an error, never an answer.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402

SOCKETS, CORES, THREADS, NODES = 2, 4, 2, 4
SMP = SOCKETS * CORES * THREADS
# Not the default 10/20: every node has a different nearest neighbour.
DIST = [[10, 30, 15, 40],
        [30, 10, 25, 12],
        [15, 25, 10, 35],
        [40, 12, 35, 10]]
# QEMU TCG's caches: [level, type, size]; L1d/L1i/L2 shared by a core's
# threads, L3 by its package.
TCG_CACHES = [[1, 1, 64 << 10], [1, 2, 64 << 10], [2, 3, 512 << 10], [3, 3, 16 << 20]]


def node_of(c):
    return c // (SMP // NODES)


def place_of(c):
    """(package, core in package, thread) of QEMU's CPU c."""
    return c // (CORES * THREADS), c % (CORES * THREADS) // THREADS, c % THREADS


def sharers(c, level):
    pkg, core, _ = place_of(c)
    return [d for d in range(SMP) if place_of(d)[0] == pkg and (level == 3 or place_of(d)[1] == core)]


def rank(a, b):
    """docs/topology.md: itself, a thread of the same core, the lowest
    shared cache (1 + level), the same package, nothing."""
    if a == b:
        return 0
    if place_of(a)[:2] == place_of(b)[:2]:
        return 1
    return 1 + 3 if place_of(a)[0] == place_of(b)[0] else 10


def nearest_cores(frm, among):
    return sorted(among, key=lambda c: (DIST[node_of(frm)][node_of(c)], rank(frm, c), c))


def nearest_nodes(frm, among):
    return sorted(among, key=lambda n: (DIST[frm][n], n))


def test_topo_answers_match_acpi_and_cpuid():
    m = Machine(smp=SMP, sockets=SOCKETS, cores=CORES, threads=THREADS, numa=NODES, dist=DIST,
                accel="tcg", modules=atoll_run.user_modules())
    some = [0, 2, 3, 8, 13, 15]
    cmds = (["topo"] + [f"topo nearest node {n}" for n in range(NODES)] +
            ["topo nearest core 5", "topo nearest core 12 0,2-3,8,13,15", "topo nearest node 1 0,2",
             "topo distance 3 1", "topo shared 4 7", "topo shared 7 8",
             # what the machine does not have
             "topo core 16", "topo distance 0 4", "topo nearest core 0 0,16", "topo nearest core 99",
             "topo nearest node 0 1,4", "topo shared 3 16", "topo node 4"])
    r = atoll_run.boot(m, timeout=300, shell_commands=cmds)
    assert not r.timed_out, r.console[-4000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-4000:]
    assert r.status == 1, "the last command asked for node 4: an error"

    # The machine.
    [mach] = r.events_named("topo_machine")
    assert (mach["cores"], mach["nodes"], mach["packages"], mach["physical_cores"]) == \
        (SMP, NODES, SOCKETS, SOCKETS * CORES), mach
    assert mach["numa_from_srat"] and mach["dist_from_slit"] and mach["source"] == "cpuid.0xb"

    # Nodes: exactly what the kernel read from SRAT and SLIT at boot.
    acpi = {e["node"]: e for e in r.events_named("numa_node")}
    nodes = {e["node"]: e for e in r.events_named("topo_node")}
    assert sorted(nodes) == sorted(acpi) == list(range(NODES))
    for n in range(NODES):
        assert nodes[n]["cores"] == acpi[n]["cpus"] == [c for c in range(SMP) if node_of(c) == n]
        assert nodes[n]["mem_bytes"] == acpi[n]["mem_bytes"] > 0
        assert nodes[n]["domain"] == acpi[n]["domain"]
        assert nodes[n]["distances"] == acpi[n]["distances"] == DIST[n]

    # Cores: where QEMU put each CPU, as every core's own CPUID said it.
    records = {e["core"]: e for e in r.events_named("cpu_topology")}
    cores = {e["core"]: e for e in r.events_named("topo_core")}
    assert sorted(cores) == sorted(records) == list(range(SMP))
    for c in range(SMP):
        e = cores[c]
        pkg, core, thread = place_of(c)
        assert (e["package"], e["package_core"], e["thread"]) == (pkg, core, thread), e
        assert (records[c]["package"], records[c]["package_core"], records[c]["thread"]) == (pkg, core, thread)
        assert e["apic"] == records[c]["apic"] == acpi[node_of(c)]["apic_ids"][c % (SMP // NODES)]
        assert e["node"] == node_of(c) and e["reported"] is True
        assert [k[:3] for k in e["caches"]] == TCG_CACHES, e
        for level, _, _, shared in e["caches"]:
            assert shared == sharers(c, level), (c, level, shared)

    # Nearest first, recomputed from the matrix and the rule.
    got = {(e["kind"], e["from"], tuple(e["order"])) for e in r.events_named("topo_nearest")}
    for n in range(NODES):
        assert ("node", n, tuple(nearest_nodes(n, range(NODES)))) in got
    assert ("core", 5, tuple(nearest_cores(5, range(SMP)))) in got
    assert ("core", 12, tuple(nearest_cores(12, some))) in got
    assert ("node", 1, tuple(nearest_nodes(1, [0, 2]))) in got and nearest_nodes(1, [0, 2]) == [2, 0]
    [d] = r.events_named("topo_distance")
    assert (d["from"], d["to"], d["distance"]) == (3, 1, DIST[3][1])
    shared = {(e["a"], e["b"]): e["level"] for e in r.events_named("topo_shared")}
    assert shared == {(4, 7): 3, (7, 8): 0}

    # What the machine does not have: an error each, and no answer.
    errors = [(e["query"], e["arg"], e["error"]) for e in r.events_named("topo_error")]
    assert errors == [("core", 16, "ERR_NO_SUCH_CORE"), ("distance from node", 0, "ERR_NO_SUCH_NODE"),
                      ("nearest core", 0, "ERR_NO_SUCH_CORE"), ("nearest core", 99, "ERR_NO_SUCH_CORE"),
                      ("nearest node", 0, "ERR_NO_SUCH_NODE"), ("shared cache of core", 3, "ERR_NO_SUCH_CORE"),
                      ("node", 4, "ERR_NO_SUCH_NODE")], errors
    assert len(r.events_named("topo_distance")) == 1 and len(r.events_named("topo_shared")) == 2
