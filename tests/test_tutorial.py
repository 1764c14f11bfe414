"""The tutorial (docs/writing-a-service.md) cannot rot: every code excerpt it
shows must stand, to the letter, in the file it names, and the service it
builds must run as it says: a greeter per node, each client served by the
instance on its own node."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402

DOC = os.path.join(ROOT, "docs", "writing-a-service.md")
EXCERPT = re.compile(r"^```\w+ file=(\S+)\n(.*?)^```$", re.M | re.S)


def test_every_excerpt_is_in_its_file():
    text = open(DOC, encoding="utf-8").read()
    found = EXCERPT.findall(text)
    assert len(found) >= 6, "the tutorial shows its code"
    for path, body in found:
        source = open(os.path.join(ROOT, path), encoding="utf-8").read()
        assert body in source, f"docs/writing-a-service.md shows code that is not in {path}:\n{body}"


def test_the_tutorial_service_runs():
    manifest = os.path.join(ROOT, "user", "greeter", "tutorial.services")
    m = Machine(smp=8, numa=2, accel="tcg", modules=atoll_run.user_modules(services=manifest))
    r = atoll_run.boot(m, timeout=300, shell_commands=["svc", "run 1 greeter call greeter 50",
                                                       "run 6 greeter call greeter 50", "wait"])
    assert not r.timed_out and r.status == 0, r.console[-3000:]
    up = r.events_named("service_up")
    assert len(up) == 1 and up[0]["name"] == "greeter" and up[0]["joined"] == 2, up
    calls = {e["core"]: e for e in r.events_named("greeter_call")}
    assert set(calls) == {1, 6}, r.console[-3000:]
    for e in calls.values():
        assert e["server_node"] == e["node"] and e["rounds"] == 50 and e["median_ns"] > 0, e
        assert e["greeting"] == f"hello, tutorial, from core {e['server_core']}"
