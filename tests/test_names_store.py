"""The name server on the store (servers/names, docs/names.md): a replica on
the first core of every NUMA node, reads answered by the caller's nearest
replica, writes done by the leader and acknowledged on a majority. These
boot 16 cores in 4 nodes and kill the leader's replica (core 0's) under
live clients: names registered before stay, lookups and registrations go
on, the nearest-instance rule holds, a name goes with its channel, and the
restarted replica has its core's former names reaped."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402

# A group with an instance on the first core of each node (4, 8, 12, and 0).
MANIFEST = """\
topology topo core:0 $name $key
echo.g echo per-node serve $name 0 key=$key
"""

NODE = {c: c // 4 for c in range(16)}


def boot(commands, tmp_path, timeout=300):
    path = tmp_path / "test.services"
    path.write_text(MANIFEST)
    m = Machine(smp=16, numa=4, mem=1 << 30, accel="tcg",
                modules=atoll_run.user_modules(services=str(path)))
    r = atoll_run.boot(m, timeout=timeout, shell_commands=list(commands))
    assert not r.timed_out, r.console[-3000:]
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-3000:]
    return r


def listed(r, which):
    """The names in the `which`-th `names` listing (one "name iface core" a line)."""
    starts = [m.end() for m in re.finditer(r"atoll> names\n", r.console)]
    text = r.console[starts[which]:]
    text = text[:text.index("@atoll {\"event\":\"names_list\"")]
    return sorted(line.split()[0] for line in text.splitlines() if len(line.split()) == 3)


def test_names_live_through_the_death_of_the_leaders_replica(tmp_path):
    cmds = [
        # Through core 4's replica (core 5's node): stays.
        "run 5 echo hold x 3",
        # Through core 0's replica (core 1's node), not kept: reaped when
        # that replica is started again (its channel died with it).
        "run 1 echo hold z 2",
        # Through core 12's replica; then its domain is killed: the names go.
        "run 13 echo hold y 2",
        "sleep 300",
        "names",
        "kill 13 2",
        "run 9 echo call echo.g 1",
        "fault kill names 0",
        # At once, while the leader's replica is dead or catching up:
        "run 14 echo call echo.g 1",
        "run 6 echo nscheck",
        "run 10 echo nscheck",
        "sleep 1500",
        "run 2 echo nscheck",
        "run 3 echo call echo.g 1",
        "wait",
        "names",
    ]
    r = boot(cmds, tmp_path)
    assert r.status == 0, r.console[-3000:]
    # A replica on each node's first core, all with the names at boot.
    ups = r.events_named("names_up")
    boot_ups = [e for e in ups if e["life"] == 0]
    assert sorted(e["core"] for e in boot_ups) == [0, 4, 8, 12], ups
    assert all(e["replicas"] == 4 for e in ups), ups
    # The leader's replica was killed and started again by its monitor ...
    restarted = [e for e in r.events_named("service_restarted") if e["name"] == "names"]
    assert [e["core"] for e in restarted] == [0] and restarted[0]["by"] == "monitor", restarted
    # ... another was elected in a later term, and the restarted one caught up.
    elected = r.events_named("names_elected")
    assert elected and all(e["name"] == "names" and e["core"] != 0 and e["term"] >= 2 for e in elected), elected
    again = [e for e in ups if e["life"] == 1]
    assert [e["core"] for e in again] == [0], ups
    # Registrations held, and lookups answered, before and after the kill.
    holds = {e["prefix"]: e for e in r.events_named("ns_hold")}
    assert all(holds[p]["registered"] == n and holds[p]["error"] == "ERR_OK" for p, n in
               (("x", 3), ("z", 2), ("y", 2))), holds
    checks = r.events_named("ns_check")
    assert sorted(e["core"] for e in checks) == [2, 6, 10] and all(e["ok"] for e in checks), checks
    # The nearest instance: on the caller's own node, every time.
    calls = r.events_named("echo_call")
    assert sorted(e["core"] for e in calls) == [3, 9, 14], calls
    assert all(e["server_node"] == NODE[e["core"]] for e in calls), calls
    # Before: every name; after: x stays, y went with its domain, z with the
    # replica its channel was on (reaped by that replica's next life).
    before, after = listed(r, 0), listed(r, 1)
    assert {"x.0", "x.1", "x.2", "y.0", "y.1", "z.0", "z.1"} <= set(before), before
    assert {"x.0", "x.1", "x.2"} <= set(after), after
    assert not {"y.0", "y.1", "z.0", "z.1"} & set(after), after
    assert after.count("echo.g") == 4 and "topology" in after, after
    assert not [n for n in after if n.startswith("nscheck.")], after   # each unregistered its own
