"""QEMU tests of placement (docs/services.md): a boot manifest brought up by
the starter, a per-node service whose nearest instance every core finds,
the next nearest by SLIT distance when one is stopped (ties taken in turn),
and a manifest with bad lines refused line by line while the rest comes up."""
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402

# 16 cores on 4 nodes of 4 (0-3, 4-7, 8-11, 12-15). From node 1 the nearest
# other node is 0; from node 3, nodes 1 and 2 are equally far.
DIST = [[10, 15, 30, 40], [15, 10, 25, 30], [30, 25, 10, 30], [40, 30, 30, 10]]
NODE_OF = [c // 4 for c in range(16)]


def boot(manifest, commands, tmp_path, smp=16, numa=4, dist=DIST, timeout=900):
    path = tmp_path / "test.services"
    path.write_text(manifest)
    m = Machine(smp=smp, numa=numa, mem=2 << 30, accel="tcg", dist=dist,
                modules=atoll_run.user_modules(services=str(path)))
    r = atoll_run.boot(m, timeout=timeout, shell_commands=list(commands))
    assert not r.timed_out, r.console[-3000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == []
    return r


def calls_by_core(r):
    return {e["core"]: e["server_core"] for e in r.events_named("echo_call")}


def test_per_node_service_nearest_instance(tmp_path):
    # restart=0: a stopped instance stays stopped (the restart service would
    # bring it back, docs/restart.md).
    manifest = "# one echo per node\necho.pn echo per-node restart=0 serve $name 0 key=$key\n"
    first = [f"run {c} echo call echo.pn 1" for c in range(16)] + ["wait"]
    # Stop node 1's and node 3's instances (cores 4 and 12, the first of
    # their nodes, domain 3 there: the name server's replica is 2), then ask again from those nodes, twice
    # from node 3 to see the tie taken in turn.
    then = ["svc", "kill 4 3", "kill 12 3", "sleep 200"]   # the name server drops their names
    then += [f"run {c} echo call echo.pn 1" for c in (4, 5, 6, 7, 12, 13, 14, 15)] + ["wait", "svc"]
    r = boot(manifest, first + then, tmp_path)
    up = r.events_named("service_up")
    assert len(up) == 1 and up[0]["instances"] == up[0]["joined"] == 4, up
    calls = r.events_named("echo_call")
    assert len(calls) == 24 and not r.events_named("echo_error"), (calls, r.events_named("echo_error"))
    before, after = calls[:16], calls[16:]
    # Every core was served by the instance on its own node.
    for e in before:
        assert NODE_OF[e["server_core"]] == NODE_OF[e["core"]], e
    assert sorted({e["server_core"] for e in before}) == [0, 4, 8, 12]
    # Node 1's cores now go to node 0 (distance 15, the nearest).
    for e in after:
        if NODE_OF[e["core"]] == 1:
            assert NODE_OF[e["server_core"]] == 0, e
    # Node 3's go to node 2 (30; node 1, as near, is stopped too).
    for e in after:
        if NODE_OF[e["core"]] == 3:
            assert NODE_OF[e["server_core"]] == 2, e
    assert "killed domain 3 on core 4" in r.console and "killed domain 3 on core 12" in r.console
    # svc says so (the second listing): two instances gone, two running.
    assert r.console.count("echo.pn per-node 4 3 gone") == 1
    assert r.console.count("echo.pn per-node 12 3 gone") == 1
    assert r.console.count("echo.pn per-node 8 3 running") == 2


def test_ties_are_taken_in_turn(tmp_path):
    """Node 3's instance stopped: nodes 1 and 2 are both 30 away, so node
    3's lookups alternate between them."""
    manifest = "echo.pn echo per-node restart=0 serve $name 0 key=$key\n"
    cmds = ["kill 12 3", "sleep 200"] + [f"run {12 + i % 4} echo call echo.pn 1" for i in range(6)] + ["wait"]
    r = boot(manifest, cmds, tmp_path)
    nodes = collections.Counter(NODE_OF[e["server_core"]] for e in r.events_named("echo_call"))
    assert sum(nodes.values()) == 6 and set(nodes) == {1, 2} and nodes[1] == nodes[2] == 3, nodes


def test_a_full_manifest_starts_every_service_and_refuses_the_lines_beyond(tmp_path):
    """The starter keeps a group in the name server for every service,
    beside its own name (NAMES_KEPT): a manifest of 32 services starts all
    32, and the lines beyond are refused in one event. With 8 kept, the
    8th service was accepted and never started."""
    lines = [f"s{i} echo core:{i % 2} serve $name 0 key=$key" for i in range(1, 33)] + \
            ["s33 echo core:0 serve $name 0 key=$key", "s34 echo core:1 serve $name 0 key=$key"]
    r = boot("\n".join(lines) + "\n", ["svc", "run 1 echo call s31 1", "run 0 echo call s8 1", "wait"], tmp_path,
             smp=2, numa=0, dist=None)
    up = {e["name"] for e in r.events_named("service_up")}
    assert up == {f"s{i}" for i in range(1, 33)}, r.console[-3000:]
    refused = r.events_named("manifest_refused")
    assert len(refused) == 1 and refused[0]["line"] == 33 and refused[0]["lines"] == 2, refused
    assert "more than 32 services" in refused[0]["why"]
    assert "cannot make its group" not in r.console
    calls = {e["name"]: e for e in r.events_named("echo_call")}
    assert set(calls) == {"s31", "s8"}, r.console[-3000:]       # a late service is reached, as an early one
    assert calls["s31"]["server_core"] == 1 and calls["s8"]["server_core"] == 0, calls
    assert r.status == 0


def test_bad_manifest_lines_are_refused_the_rest_comes_up(tmp_path):
    manifest = "\n".join([
        "good echo per-node serve $name 0 key=$key",      # 1
        "noprog nosuchprogram core:1",                     # 2: fails at start
        "far echo nodes:9",                                # 3: no such node
        "a echo core:0 after=b",                           # 4: a cycle
        "b echo core:0 after=a",                           # 5
        "needy echo core:1 after=far serve x",             # 6: needs a refused one
        "good echo core:2",                                # 7: duplicate
        "short echo",                                      # 8: too few words
        "per echo percore",                                # 9: unknown placement
    ]) + "\n"
    r = boot(manifest, ["svc", "run 5 echo call good 1", "wait"], tmp_path, smp=8, numa=2, dist=None)
    refused = {e["line"]: e for e in r.events_named("manifest_refused")}
    assert set(refused) == {3, 4, 5, 6, 7, 8, 9}, refused
    assert "node 9 does not exist" in refused[3]["why"]
    assert "circle" in refused[4]["why"] and "circle" in refused[5]["why"]
    assert "which was refused" in refused[6]["why"]
    assert "line 1 already" in refused[7]["why"]
    assert "expected NAME PROGRAM PLACEMENT" in refused[8]["why"]
    assert "unknown placement" in refused[9]["why"]
    assert [e["name"] for e in r.events_named("service_failed")] == ["noprog"]
    assert "starter: manifest line 2: noprog on core 1: ERR_NOT_FOUND" in r.console
    up = {e["name"]: e for e in r.events_named("service_up")}
    assert up["good"]["joined"] == 2
    call = r.events_named("echo_call")
    assert len(call) == 1 and call[0]["server_core"] >= 4   # core 5 is on node 1
    assert r.status == 0
