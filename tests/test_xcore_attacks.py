"""QEMU tests: a malicious domain (user/xattack) against its monitor and the
name server. Each attack prints one `xattack` event whose "ok" says the
attack was refused and the target still serves; besides, no monitor may
fault, the name server must keep answering every core, and nothing
panics."""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_userspace import run_shell  # noqa: E402


def attacks(r):
    return {e["attack"]: e for e in r.events_named("xattack")}


def no_monitor_fault(r):
    bad = [e for e in r.events_named("domain_fault") if e["name"] == "monitor"]
    assert bad == [], r.console[-4000:]
    assert [e for e in r.events_named("domain_exit") if e["name"] == "monitor"] == []


def test_monitor_refuses_bad_client_requests():
    """Local messages whose fragments do not fit together, a capability on
    a later fragment, unknown types and a string past its bound are refused
    by the monitor's LMP channel and its generated decoder, and it serves
    on; a hello carrying an endpoint to the monitor itself (or a Frame) must
    not make the monitor answer itself forever (it ignores the capability
    and makes its own endpoint to the sender); failed connects must not
    leak the monitor's slots."""
    cmds = [
        "run 1 xattack lmpjunk", "wait",
        "run 2 xattack hello", "wait",
        "run 3 xattack connect 4000", "wait",
        # Every monitor attacked still serves: a client on each core.
        "run 1 echo nscheck", "run 2 echo nscheck", "run 3 echo nscheck", "wait",
    ]
    r = run_shell(cmds, smp=4, numa=2, timeout=400)
    assert r.status == 0, r.console[-4000:]
    no_monitor_fault(r)
    got = attacks(r)
    assert set(got) == {"lmpjunk", "hello", "connect"}, r.console[-4000:]
    for name, e in got.items():
        assert e["ok"], (name, e)
    assert got["lmpjunk"]["mem"] == got["lmpjunk"]["lmp"] == "ERR_OK" and got["lmpjunk"]["sent"] >= 10
    # Each was refused, not acted on: the monitor said so on the console.
    assert len(re.findall(r"^monitor 1: local message from domain \d+ refused", r.console, re.M)) >= 1
    assert got["connect"]["not_found"] == got["connect"]["tries"] == 4000
    assert got["connect"]["channel"] == "ERR_DUPLICATE"
    checks = r.events_named("ns_check")
    assert sorted(e["core"] for e in checks) == [1, 2, 3] and all(e["ok"] for e in checks), r.console[-4000:]


def test_name_server_drops_bad_clients():
    """A client that corrupts its channel, or floods requests and never
    takes the replies, is dropped (once, with a names_drop event); the name
    server goes on answering everyone else at once."""
    cmds = [
        "run 1 xattack nscorrupt", "wait",
        "run 2 xattack nsflood", "wait",
        "run 1 echo nscheck", "run 2 echo nscheck", "run 3 echo nscheck", "wait",
    ]
    r = run_shell(cmds, smp=4, numa=2, timeout=300)
    assert r.status == 0, r.console[-4000:]
    no_monitor_fault(r)
    got = attacks(r)
    assert got["nscorrupt"]["ok"] and got["nsflood"]["ok"], got
    assert got["nsflood"]["sent"] > 31   # more than one ring: the server had to refuse
    drops = r.events_named("names_drop")
    assert sorted(e["client_core"] for e in drops) == [1, 2], r.console[-4000:]
    # Each bad client is reported once, not on every round of the server.
    assert len(re.findall(r"^names: client on core", r.console, re.M)) <= 4
    checks = r.events_named("ns_check")
    assert sorted(e["core"] for e in checks) == [1, 2, 3] and all(e["ok"] for e in checks), r.console[-4000:]
