"""The fault-injection campaign (tools/inject, docs/restart.md): its plan
is seeded and deterministic (host), and a short campaign in a booted
machine (150 faults of every kind into the servers, the name server
among them) ends with no kernel panic, no monitor fault, and every service
answering."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_inject  # noqa: E402


def test_the_plan_is_seeded_and_covers_every_kind():
    a, fa = atoll_inject.plan(400, 4, seed=3)
    b, fb = atoll_inject.plan(400, 4, seed=3)
    c, _ = atoll_inject.plan(400, 4, seed=4)
    assert a == b and fa == fb and a != c
    assert {f["kind"] for f in fa} == set(atoll_inject.KINDS)
    assert {f["core"] for f in fa if f["name"] == "echo.pc"} == {0, 1, 2, 3}
    assert any(f["name"] == "names" for f in fa)
    # Every fault is one `fault` command the shell takes (seeds under 1e9).
    faults = [x for x in a if x.startswith("fault ")]
    assert len(faults) == 400 and all(0 < f["seed"] < 10**9 for f in fa)
    assert a[-1] == "topo node 0" and sum(x.startswith("run ") for x in a) == 8


def test_a_short_campaign_leaves_no_panic_and_every_service_answering(tmp_path):
    out = tmp_path / "campaign.jsonl"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "inject"), "--faults", "150", "--smp", "2",
                        "--pace", "4", "--seed", "7", "--json", str(out), "--timeout", "400"],
                       capture_output=True, text=True, timeout=450)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    s = lines[-1]
    assert s["event"] == "campaign", p.stdout[-3000:]
    assert not s["timed_out"], p.stdout[-3000:]
    assert s["typed"] == s["faults"] == len(lines) - 1 == 150, s
    assert s["kernel_panics"] == 0 and s["monitor_faults"] == 0, s
    assert s["answering_at_end"] and s["echo_answered_at_end"] == 2, s
    # Faults really happened and were repaired: at least one restart per kill.
    kills = s["by_kind"]["kill"]["injected"]
    assert s["injected"] >= 100 and kills > 0 and s["restarts"] >= kills, s
    assert s["restart_limits"] == 0, s
    assert p.returncode == 0, p.stdout[-3000:]
    assert "kernel panics" in p.stdout and "every service answering at the end  yes" in p.stdout
