"""The fault-injection campaign (tools/inject, docs/faults.md): the restart
service injects the faults itself and classifies each one's outcome. The
plan and the summary are checked on the host; a short campaign in a booted
machine (300 faults of every kind into the echo servers, the topology
service, the name server and the store's replicas, with client loops and
store clients checking their acknowledged writes) must classify every
fault, end with no system failure, no kernel panic, no lost acknowledged
write, and every service answering."""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_inject  # noqa: E402


def test_the_plan_and_the_manifest():
    cmds = atoll_inject.plan(500, 4, seed=3, pace_ms=2, kinds=("kill", "crash"))
    assert "fault campaign 500 3 2 kill,crash" in cmds
    assert sum(c.startswith("run ") and " echo loop " in c and "until=campaign.over" in c for c in cmds) == 4
    assert sum(" store acked kv " in c for c in cmds) == 2 and cmds[-2] == "run 0 store state kv"
    assert not any("store" in c for c in atoll_inject.plan(10, 2, store=False))
    # The store gets at least three replicas (a majority outlives one
    # recovering replica and one more fault), else it is left out.
    assert atoll_inject.manifest(3, 0)[1] == "per-core"
    assert atoll_inject.manifest(16, 4)[1] == "per-node"
    assert atoll_inject.manifest(2, 0)[1] is None and atoll_inject.manifest(16, 2)[1] is None


class _Run:
    def __init__(self, events, timed_out=False):
        self.events, self.timed_out = events, timed_out

    def events_named(self, name):
        return [e for e in self.events if e["event"] == name]


def _events(outcomes, lost=0):
    ev = [{"event": "fault_outcome", "n": i, "kind": k, "name": "echo.pc", "core": 0, "domain": 3, "outcome": o, "ms": 5}
          for i, (k, o) in enumerate(outcomes)]
    ev += [{"event": "campaign_done", "faults": len(outcomes), "skipped": 0, "late_ends": 0, "ms": 100},
           {"event": "echo_loop", "calls": 10, "errors": 0}, {"event": "echo_call", "core": 0},
           {"event": "topo_node"}, {"event": "store_state", "digest": "ab"}, {"event": "store_state", "digest": "ab"},
           {"event": "store_acked", "writes": 9, "acked": 8, "checks": 9, "lost": lost, "wrong": 0}]
    return ev


def test_the_summary_classifies_and_fails_on_a_failure_or_a_lost_write():
    lines, s = atoll_inject.summarize(_Run(_events([("kill", "restarted"), ("garble", "contained"),
                                                    ("crash", "recovered")])), 1)
    assert len(lines) == 3 and s["ok"], s
    assert s["by_kind"]["kill"]["restarted"] == 1 and s["outcomes"]["recovered"] == 1
    assert "system failure" in atoll_inject.table(s)
    _, s = atoll_inject.summarize(_Run(_events([("kill", "failed")])), 1)
    assert not s["ok"] and s["outcomes"]["failed"] == 1
    _, s = atoll_inject.summarize(_Run(_events([("kill", "restarted")], lost=1)), 1)
    assert not s["ok"] and s["lost_acknowledged_writes"] == 1


def test_a_short_campaign_classifies_every_fault_and_loses_nothing(tmp_path):
    out = tmp_path / "campaign.jsonl"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "inject"), "--faults", "300", "--smp", "3",
                        "--seed", "7", "--json", str(out), "--timeout", "400", "--quiet"],
                       capture_output=True, text=True, timeout=450)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    s = lines[-1]
    assert s["event"] == "campaign" and s["done"], p.stdout[-3000:]
    assert not s["timed_out"], p.stdout[-3000:]
    faults = lines[:-1]
    # Every fault was injected and classified, once.
    assert len(faults) == s["faults"] == 300 and sorted(f["n"] for f in faults) == list(range(300)), s
    assert all(f["outcome"] in atoll_inject.OUTCOMES for f in faults)
    # A kill, a crash or a hang always ends the server: never "contained".
    assert not [f for f in faults if f["kind"] in ("kill", "crash", "hang") and f["outcome"] == "contained"]
    # Every kind happened; servers were restarted, the store's replicas
    # recovered their state, and some faults were contained (a garbled
    # message is refused by the decoder).
    assert {f["kind"] for f in faults} == set(atoll_inject.KINDS), s
    o = s["outcomes"]
    assert o["restarted"] > 0 and o["recovered"] > 0 and s["by_kind"]["garble"]["contained"] > 0, s
    assert {f["name"] for f in faults if f["outcome"] == "recovered"} == {"kv"}, s
    assert s["by_service"].get("names", {}).get("restarted", 0) > 0, s
    # No system failure, no panic, no client error, nothing acknowledged lost.
    assert o["failed"] == 0 and s["kernel_panics"] == 0 and s["monitor_faults"] == 0, s
    # Client errors: rare but not yet none under a few hundred faults a
    # minute (docs/faults.md, Limits: an ERR_NOT_FOUND on a reconnection
    # just after the server's crash, about one in 10,000 calls); more than
    # one in a thousand is a regression.
    assert s["client_calls"] > 0 and s["client_errors"] <= s["client_calls"] // 1000, s
    assert s["lost_acknowledged_writes"] == 0 and s["store_acknowledged"] > 0 and s["store_replicas_equal"], s
    assert s["answering_at_end"], p.stdout[-3000:]
    assert p.returncode == (0 if s["ok"] else 1), p.stdout[-3000:]
    assert "state recovered" in p.stdout and re.search(r"every service answering at the end +yes", p.stdout)
