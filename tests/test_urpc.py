"""QEMU tests of the cross-core machinery (issue #4): the monitors' mesh of
URPC channels, requests routed between cores, domains spawned on remote
cores, frames (capabilities) moved between cores, the name service from
every core, and the shell's mesh/ping/bench commands.

Each test boots under TCG, types shell commands and checks the structured
events the guest prints (docs/monitor.md, docs/names.md, docs/shell.md)."""
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import atoll_run  # noqa: E402
from atoll_run import Machine, NumaNode  # noqa: E402
from test_userspace import run_shell  # noqa: E402

GiB = 1 << 30
MiB = 1 << 20


def cluster_channels(ncores, node_of, cluster=8):
    """The channel count of the cluster plan (monitor/mesh_plan.h), computed
    independently: boot channels from core 0, all pairs inside a cluster,
    all pairs of leaders."""
    rank, leader, seen = {}, {}, {}
    for c in range(ncores):
        n = node_of[c]
        rank[c] = seen.get(n, 0)
        seen[n] = rank[c] + 1
    for c in range(ncores):
        want = rank[c] - rank[c] % cluster
        leader[c] = next(d for d in range(ncores) if node_of[d] == node_of[c] and rank[d] == want)
    links = 0
    for a in range(ncores):
        for b in range(a + 1, ncores):
            links += a == 0 or leader[a] == leader[b] or (leader[a] == a and leader[b] == b)
    return links


def mesh_up(r):
    ev = r.events_named("mesh_up")
    assert len(ev) == 1, r.console[-4000:]
    return ev[0]


def blocks(ncores, k):
    return [c * k // ncores for c in range(ncores)]


@pytest.mark.parametrize("smp,numa", [(4, 2), (16, 2), (64, 4)])
def test_mesh_remote_spawn_capabilities_and_names_everywhere(smp, numa):
    """All monitors connected; a domain spawned on a remote core serves a
    name, a client on another node finds it and connects (the channel's
    frame crosses cores); a name-service round trip from every core."""
    last = smp - 1
    cmds = [
        f"run {last} echo serve far 40",     # remote spawn (core 0's shell -> last core)
        f"run 1 echo call far 20",           # client on node 0, server on the last node
        f"run {smp // 2} echo call far 20",
        "wait",
        "run all echo nscheck",
        "wait",
        f"mesh {last}",
    ]
    r = run_shell(cmds, smp=smp, numa=numa, mem=2 * GiB if smp > 16 else 1 * GiB, timeout=600)
    assert r.status == 0, r.console[-4000:]
    up = mesh_up(r)
    assert up["cores"] == smp and up["kind"] == "cluster"
    assert up["channels"] == up["planned"] == cluster_channels(smp, blocks(smp, numa))
    # Remote spawn: the echo server runs on the last core, started from core 0.
    spawned = [e for e in r.events_named("domain_spawn") if e["name"] == "echo"]
    assert {e["core"] for e in spawned} >= {last, 1, smp // 2}
    served = r.events_named("echo_served")
    assert [e["core"] for e in served] == [last]
    service = served[0]["service"]
    # The id names the service's core and domain (SERVICE_ID, <atoll/monitor_proto.h>).
    assert service >> 48 == last
    server = [e for e in spawned if e["core"] == last][0]["domain"]
    assert (service >> 16) & 0xffffffff == server
    # Both clients found it by name and talked to it over their own channel,
    # whose frame came from the client's core.
    calls = {e["core"]: e for e in r.events_named("echo_call")}
    assert set(calls) == {1, smp // 2}, r.console[-4000:]
    for c, e in calls.items():
        assert e["server_core"] == last and e["rounds"] == 20 and e["rt_median_ns"] > 0
    accepted = r.events_named("echo_accept")
    assert sorted(e["client_core"] for e in accepted) == sorted({1, smp // 2})
    done = r.events_named("echo_done")
    assert done and done[0]["calls"] == 40 and done[0]["clients"] == 2
    # The server's monitor re-created every client's frame (and its own
    # channel to the name server): capabilities received from other cores.
    # (Only one `mesh` command runs; other cores' output may interleave with
    # the typed command's echo, so look for its lines, not the prompt.)
    got = re.findall(r"^capabilities: (\d+) sent to other cores, (\d+) received, 0 refused$", r.console, re.M)
    assert len(got) == 1 and int(got[0][1]) >= 2, r.console[-3000:]
    # A name-service round trip from every core.
    checks = r.events_named("ns_check")
    assert sorted(e["core"] for e in checks) == list(range(smp)), r.console[-4000:]
    assert all(e["ok"] and e["found"] == e["service"] and e["service"] >> 48 == e["core"] for e in checks)
    assert not r.events_named("echo_error"), r.events_named("echo_error")
    assert not r.events_named("domain_fault"), r.events_named("domain_fault")


def test_mesh_kinds_and_routes():
    """mesh=all links every pair; a small cluster plan forwards through the
    leaders, and `ping` reports the hops it took."""
    r = run_shell(["ping 1 6 5", "ping 6 1 5", "ping 2 3 5", "mesh 1"], smp=8, numa=2,
                  extra_modules=(), timeout=300)
    up = mesh_up(r)
    assert up["channels"] == cluster_channels(8, blocks(8, 2))
    pings = r.events_named("ping")
    # 1 -> its leader 0, which reaches 6 by its boot channel; 6 -> leader 4 ->
    # leader 0 -> 1; 2 and 3 share a cluster.
    assert [(p["from"], p["to"], p["hops"]) for p in pings] == [(1, 6, 2), (6, 1, 3), (2, 3, 1)]
    assert all(p["median_ns"] >= p["min_ns"] > 0 for p in pings)
    # mesh lists core 1's channels: to core 0 (boot) and its cluster.
    rows = re.findall(r"^\s+1\s+(\d+)\s+(boot|mesh)\s+up\s+\d+\s+\d+\s+\d+$", r.console, re.M)
    assert sorted(int(p) for p, _ in rows) == [0, 2, 3]

    m = Machine(smp=8, numa=2, mem=1 * GiB, accel="tcg", modules=atoll_run.user_modules("mesh=all"))
    r = atoll_run.boot(m, timeout=300, shell_commands=["ping 1 6 5"])
    up = mesh_up(r)
    assert up["kind"] == "all" and up["channels"] == 28
    assert r.events_named("ping")[0]["hops"] == 1

    m = Machine(smp=8, numa=2, mem=1 * GiB, accel="tcg", modules=atoll_run.user_modules("mesh=star"))
    r = atoll_run.boot(m, timeout=300, shell_commands=["ping 1 6 5"])
    assert mesh_up(r)["channels"] == 7
    assert r.events_named("ping")[0]["hops"] == 2


def test_interleaved_nodes_cluster_per_node():
    """Clusters never span nodes, whatever the core numbering."""
    m = Machine(smp=6, mem=1 * GiB, accel="tcg", modules=atoll_run.user_modules("cluster=2"),
                numa=[NumaNode(cpus=[0, 2, 4], mem=512 * MiB), NumaNode(cpus=[1, 3, 5], mem=512 * MiB)])
    r = atoll_run.boot(m, timeout=300, shell_commands=["ping 5 3 3"])
    up = mesh_up(r)
    # Node 0 = cores 0,2,4 (clusters {0,2},{4}); node 1 = 1,3,5 ({1,3},{5}).
    assert up["channels"] == cluster_channels(6, [0, 1, 0, 1, 0, 1], cluster=2)
    assert r.events_named("ping")[0]["hops"] == 2   # 5 -> leader 1 -> 3


def test_urpc_bench_matrix_events():
    """`bench urpc` prints one event per ordered pair with every field,
    measured by a pair of user domains (user/urpcbench) on the two cores,
    with a bare cache line on the same frame as the floor."""
    r = run_shell(["bench urpc 20 3", "wait"], smp=4, numa=2, timeout=400)
    assert r.status == 0, r.console[-3000:]
    ev = [e for e in r.events_named("urpc_bench") if e.get("where") == "user"]
    said = [ln for ln in r.console.splitlines() if "bench" in ln and "domain_" not in ln]
    assert sorted((e["from"], e["to"]) for e in ev) == [(a, b) for a in range(3) for b in range(3) if a != b], said
    for e in ev:
        assert e["rounds"] == 20 and e["error"] == "ERR_OK"
        assert 0 < e["rt_min_ns"] <= e["rt_p10_ns"] <= e["rt_median_ns"] <= e["rt_p90_ns"]
        assert e["oneway_median_ns"] > 0 and e["tput_msgs_per_s"] > 0 and e["wake_rt_median_ns"] > 0
        # One-way streams of 8 and 56 bytes, and 8 bytes in batches: every
        # message arrived (the benchmark reports an error otherwise).
        assert e["tput8_msgs_per_s"] > 0 and e["tput56_msgs_per_s"] > 0
        assert e["tput8_batch_msgs_per_s"] > 0
        assert 0 < e["bare_rt_min_ns"] <= e["bare_rt_p10_ns"] <= e["bare_rt_median_ns"] <= e["bare_rt_p90_ns"]
    # Each pair: the measuring domain on `from`, its echoing side on `to`,
    # both ended well.
    spawned = sorted(e["core"] for e in r.events_named("domain_spawn") if e["name"] == "urpcbench")
    assert spawned == sorted([a for a in range(3) for b in range(3) if a != b] * 2)
    ended = [e for e in r.events_named("domain_exit") if e["name"] == "urpcbench"]
    assert len(ended) == 12 and all(e["why"] == "exit status 0" for e in ended), ended
    assert all(e.get("where") == "user" for e in r.events_named("urpc_bench"))


def test_bad_requests_get_errors():
    """Wrong cores, unknown names and services: an error, never a hang."""
    cmds = ["ping 1 1", "ping 0 9", "bench urpc 0", "run 2 echo call nosuchname 5", "wait", "mesh 7",
            "run 1 urpcbench 1", "run 1 urpcbench 9", "wait"]
    r = run_shell(cmds, smp=4, numa=2, timeout=300)
    out = r.console
    assert out.count("usage: ping FROM TO") == 2
    assert "usage: bench urpc" in out
    assert out.count("usage: urpcbench TO") == 2      # itself, a core that does not exist
    assert "mesh: no core 7" in out
    err = r.events_named("echo_error")
    assert [(e["core"], e["what"], e["error"]) for e in err] == [(2, "lookup", "ERR_NOT_FOUND")]


def test_long_replies_stream_through_the_ring():
    """A reply longer than a channel's ring (a core's channel list with
    mesh=all at 40 cores: about 2 KB, the ring holds 1.7) is streamed, not
    lost."""
    m = Machine(smp=40, numa=2, mem=2 * GiB, accel="tcg", modules=atoll_run.user_modules("mesh=all"))
    r = atoll_run.boot(m, timeout=400, shell_commands=["mesh 5"])
    assert r.status == 0, r.console[-3000:]
    assert mesh_up(r)["channels"] == 40 * 39 // 2
    rows = re.findall(r"^\s+5\s+(\d+)\s+(boot|mesh)\s+up\s+\d+\s+\d+\s+\d+$", r.console, re.M)
    assert sorted(int(p) for p, _ in rows) == [c for c in range(40) if c != 5], r.console[-3000:]
    assert re.search(r"^capabilities: \d+ sent to other cores, \d+ received, 0 refused$", r.console, re.M)


def test_255_cores_mesh_stays_small():
    """The largest machine TCG runs: every monitor connected with 1,601
    channels (all-to-all would be 32,385), a request across clusters, and
    a long reply from a leader."""
    m = Machine(smp=255, machine="pc", mem=2 * GiB, accel="tcg", modules=atoll_run.user_modules())
    r = atoll_run.boot(m, timeout=600, shell_commands=["ping 1 254 5", "mesh 248"])
    assert r.status == 0, r.console[-3000:]
    up = mesh_up(r)
    assert up["cores"] == 255 and up["channels"] == up["planned"] == 1601
    ping = r.events_named("ping")
    assert len(ping) == 1 and ping[0]["hops"] == 2 and ping[0]["median_ns"] > 0
    rows = re.findall(r"^\s+248\s+(\d+)\s+(boot|mesh)\s+up\s+\d+\s+\d+\s+\d+$", r.console, re.M)
    # Core 248 leads the last cluster: its 6 members, the other 31 leaders, core 0.
    assert len(rows) == 6 + 31, r.console[-3000:]
