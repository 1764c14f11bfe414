"""QEMU tests of what programs get from the memory service (docs/memory.md):
the kernel command line's `mem=DESIGN` word, malloc's heap placed on a
node by the service, 1,000 spawn/exit cycles that give every byte back,
and malloc without a memory service (the domain's own RAM, said clearly).

The machine is test_mem.py's: 16 cores on 4 nodes of uneven size with an
asymmetric SLIT, one boot per design, chosen by the command-line word over
the default manifest's (`cache`).
"""
import json
import os

import pytest

from test_mem import DIST, NODE_OF, SIZES, SRAT, WAIT, atoll_run, Machine, NumaNode

MiB = 1 << 20


def machine(cmdline="", services=None):
    return Machine(smp=16, numa=[NumaNode(cpus=list(range(4 * n, 4 * n + 4)), mem=SIZES[n]) for n in range(4)],
                   mem=sum(SIZES), accel="tcg", dist=DIST, cmdline=cmdline,
                   modules=atoll_run.user_modules(services=services))


def run(m, commands):
    r = atoll_run.boot(m, timeout=900, shell_commands=list(commands))
    assert not r.timed_out, r.console[-3000:]
    assert "wait: " not in r.console, r.console[-3000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == []
    return r


@pytest.mark.parametrize("design", ["per-node", "central", "cache"])
def test_heap_on_its_node_and_a_thousand_lives(design):
    # Core 13 (node 3) and core 6 (node 1): 5 MB of heap on their own node;
    # core 9 (node 2) prefers node 0; then 1,000 lives over the 16 cores.
    # Cores 14 (node 3) and 11 (node 2) get their policy at spawn (+mem=):
    # node 1, and any (the instance's own pool first). (The sleeps: central
    # gives back a batch it kept once unused for 100 ms.)
    cmds = ["run 13 mem malloc local 5000000", "run 6 mem malloc local 5000000", "run 9 mem malloc 0 1000000",
            "run 14 mem +mem=1 malloc spawn 1000000", "run 11 mem +mem=any malloc spawn 1000000",
            WAIT, "sleep 100", "mem", "run 0 mem lives 1000 8", WAIT, "sleep 100", "mem"]
    r = run(machine(cmdline=f"mem={design}"), cmds)
    trouble = r.events_named("service_ended") + r.events_named("service_restarted")
    assert not trouble, (trouble, r.console[-6000:])

    # The word on the command line chose the design over the manifest's.
    up = r.events_named("mem_up")
    assert len(up) == 4 and all(e["design"] == design and e["design_from"] == "cmdline" for e in up), up

    # malloc: every piece of heap a Frame of the node asked for, in its SRAT range.
    mallocs = {e["core"]: e for e in r.events_named("mem_malloc")}
    assert set(mallocs) == {13, 6, 9, 14, 11}, mallocs
    for core, want in ((13, 3), (6, 1), (9, 0), (14, 1), (11, 0 if design == "central" else 2)):
        e = mallocs[core]
        assert e["from_spawn"] == (core in (14, 11)), e
        assert e["placed"] == "ERR_OK" and e["made"] == e["pieces"] and e["written"] == e["pieces"] * 16, e
        assert e["fallbacks"] == 0 and e["own_bytes"] == 0, e
        blocks = [b for b in r.events_named("mem_heap_block") if b["core"] == core]
        assert len(blocks) == e["blocks"] and e["service_bytes"] == sum(b["size"] for b in blocks), (e, blocks)
        assert e["service_bytes"] >= e["pieces"] * 64 * 1024, e
        for b in blocks:
            lo, hi = SRAT[want]
            assert b["node"] == want and lo <= b["base"] and b["base"] + b["size"] <= hi, b
    assert NODE_OF[13] == 3 and NODE_OF[6] == 1

    # 1,000 spawn/exit cycles (every fifth by a fault), each holding heap,
    # a Frame and RAM from the service at its end: every node's pool and
    # every monitor's free RAM back where they were.
    [lives] = r.events_named("mem_lives")
    assert lives["ok"] and lives["lives"] == 1000 and lives["failed"] == 0, json.dumps(lives)
    assert lives["nodes_differ"] == 0 and lives["cores_differ"] == 0, lives
    assert lives["pool_free_before"] == lives["pool_free_after"] > 0, lives
    assert "mem life" not in r.console   # no life reported trouble
    faults = [e for e in r.events_named("domain_fault") if e["name"] == "mem"]
    assert lives["warm"] == 32 and len(faults) == (1000 + 32) // 5, len(faults)
    ends = r.events_named("mem_client_end")
    assert len(ends) >= 1032, len(ends)
    ev = r.events_named("mem_stats")
    assert len(ev) == 8, ev
    for e in ev:
        assert e["free"] == e["total"] and e["lent"] == e["borrowed"] == 0, e


def manifest_design():
    """The design word the default manifest gives the memory service (its mem line's last word)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "servers", "starter",
                        "default.services")
    [line] = [ln for ln in open(path) if ln.split()[:2] == ["mem", "mem"]]
    return line.split()[-1]


def test_heap_without_a_memory_service_and_a_bad_word(tmp_path):
    """No memory service: the heap grows from the domain's own RAM, the call
    says ERR_NOT_FOUND and one line says so. A design word the service does
    not know leaves the manifest's, with a message."""
    path = tmp_path / "nomem.services"
    path.write_text("topology topo core:0 $name $key\n")
    r = run(machine(services=str(path)), ["run 5 mem malloc local 1000000", WAIT])
    [e] = r.events_named("mem_malloc")
    assert e["placed"] == "ERR_NOT_FOUND" and e["blocks"] == 0 and e["service_bytes"] == 0, e
    assert e["made"] == e["pieces"] == 15 and e["written"] == 15 * 16 and e["own_bytes"] >= 15 * 64 * 1024, e
    assert "malloc: no memory service (ERR_NOT_FOUND): the heap grows from this domain's own RAM" in r.console
    assert r.events_named("mem_up") == []

    r = run(machine(cmdline="mem=bogus"), ["run 5 mem malloc local 100000", WAIT])
    up = r.events_named("mem_up")
    # The manifest's word, the design the cost model shows best (docs/memory.md).
    assert manifest_design() == "cache"
    assert len(up) == 4 and all(x["design"] == manifest_design() and x["design_from"] == "manifest" for x in up), up
    assert "unknown design mem=bogus on the kernel command line" in r.console
    [e] = r.events_named("mem_malloc")
    assert e["placed"] == "ERR_OK" and e["blocks"] == 1, e

    # A policy at spawn that names no node: said once, the heap the domain's own.
    # A program without the memory service's client (hello) refuses the word.
    r = run(machine(), ["run 5 mem +mem=7 malloc spawn 100000", "run 6 mem +mem=far malloc spawn 100000",
                        "run 7 hello +mem=nearest", WAIT])
    assert "start-up: +mem=nearest: ERR_NOT_SUPPORTED (the heap grows from this domain's own RAM)" in r.console
    assert [e["why"] for e in r.events_named("domain_exit") if e["name"] == "hello"] == ["exit status 0"]
    assert "start-up: +mem=7: ERR_NO_SUCH_NODE (the heap grows from this domain's own RAM)" in r.console
    assert "start-up: +mem=far: ERR_INVALID_ARG (the heap grows from this domain's own RAM)" in r.console
    ev = r.events_named("mem_malloc")
    assert len(ev) == 2, ev
    for e in ev:   # where: MEM_HEAP_OWN (0xfffffffd)
        assert e["blocks"] == 0 and e["service_bytes"] == 0 and e["where"] == -3 and e["made"] == e["pieces"] == 1, e
