"""Host tests of the linearizability checker (tools/atoll_linearize.py):
histories it must accept, and histories it must reject: a stale read, a
lost acknowledged write, a cas that saw what was not there, a read of a
value never written, a write read before it began."""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_linearize as lin  # noqa: E402
from atoll_linearize import Op  # noqa: E402


def put(c, v, t0, t1, k="k", r="ERR_OK"):
    return Op(c, "put", k, value=v, result=r, t0=t0, t1=t1)


def get(c, out, t0, t1, k="k"):
    return Op(c, "get", k, result="ERR_NOT_FOUND" if out is None else "ERR_OK", out=out, t0=t0, t1=t1)


def cas(c, x, v, ok, t0, t1, k="k"):
    return Op(c, "cas", k, value=v, expect=x, result="ERR_OK" if ok else "ERR_CAS_FAILED", t0=t0, t1=t1)


def dele(c, ok, t0, t1, k="k"):
    return Op(c, "del", k, result="ERR_OK" if ok else "ERR_NOT_FOUND", t0=t0, t1=t1)


def ok(ops):
    return all(r["ok"] for r in lin.check(ops))


def test_sequential_history():
    assert ok([get(1, None, 0, 1), put(1, "a", 2, 3), get(1, "a", 4, 5), cas(1, "a", "b", True, 6, 7),
               cas(1, "a", "c", False, 8, 9), get(1, "b", 10, 11), dele(1, True, 12, 13), dele(1, False, 14, 15),
               get(1, None, 16, 17), cas(1, None, "d", True, 18, 19), get(1, "d", 20, 21)])


def test_concurrent_operations_take_either_order():
    # Two overlapping puts: a read after both may see either, but two reads
    # after both must agree with one order.
    h = [put(1, "a", 0, 10), put(2, "b", 1, 9)]
    assert ok(h + [get(3, "a", 11, 12)])
    assert ok(h + [get(3, "b", 11, 12)])
    # A read overlapping a put may see the old value or the new.
    assert ok([put(1, "a", 0, 1), put(2, "b", 2, 10), get(3, "a", 3, 4), get(3, "b", 5, 6)])


def test_stale_read_is_rejected():
    # b was acknowledged before the read began: the read must not see a.
    h = [put(1, "a", 0, 1), put(1, "b", 2, 3), get(2, "a", 4, 5)]
    assert not ok(h)


def test_lost_acknowledged_write_is_rejected():
    h = [put(1, "a", 0, 1), get(2, None, 2, 3)]
    assert not ok(h)


def test_reads_going_back_in_time_are_rejected():
    # Both reads overlap the put, but once one saw b, a later one cannot see a.
    h = [put(1, "a", 0, 1), put(2, "b", 2, 20), get(3, "b", 3, 4), get(4, "a", 5, 6)]
    assert not ok(h)


def test_cas_must_see_the_value():
    assert not ok([put(1, "a", 0, 1), cas(2, "z", "b", True, 2, 3)])
    assert not ok([put(1, "a", 0, 1), cas(2, "a", "b", False, 2, 3)])
    assert not ok([cas(2, None, "b", False, 0, 1)])   # absent, so it must succeed


def test_value_never_written_is_rejected():
    assert not ok([put(1, "a", 0, 1), get(2, "q", 2, 3)])


def test_read_before_the_write_began_is_rejected():
    assert not ok([get(2, "a", 0, 1), put(1, "a", 2, 3)])


def test_unknown_writes_may_or_may_not_take_effect():
    unknown = Op(1, "put", "k", value="a", result="?", t0=0, t1=math.inf)
    assert ok([unknown, get(2, None, 5, 6)])
    assert ok([unknown, get(2, "a", 5, 6)])
    assert ok([unknown, get(2, None, 5, 6), get(2, "a", 7, 8)])
    # ... but not before it was called, nor undone once seen.
    assert not ok([Op(1, "put", "k", value="a", result="?", t0=10, t1=math.inf), get(2, "a", 5, 6)])
    assert not ok([unknown, get(2, "a", 5, 6), get(2, None, 7, 8)])


def test_keys_are_independent():
    h = [put(1, "a", 0, 1, k="x"), get(2, None, 2, 3, k="y"), get(2, "a", 2, 3, k="x")]
    res = {r["key"]: r["ok"] for r in lin.check(h)}
    assert res == {"x": True, "y": True}
    res = {r["key"]: r["ok"] for r in lin.check(h + [get(3, None, 4, 5, k="x")])}
    assert res == {"x": False, "y": True}


def test_a_larger_concurrent_history_is_decided_quickly():
    # 8 clients, 40 rounds of overlapping puts and reads of the last round.
    h, t = [], 0
    for r in range(40):
        for c in range(8):
            h.append(put(c, f"{r}.{c}", t + c, t + 20 + c))
        h.append(get(9, f"{r}.7", t + 30, t + 31))
        t += 40
    res = lin.check(h)
    assert res[0]["ok"] and res[0]["explored"] < 100000


def test_events_and_errors_that_had_no_effect():
    line = ('@atoll {"event":"store_op","c":1,"i":0,"op":"put","k":"k0","v":"c1.0","x":null,"r":"ERR_NOT_LEADER",'
            '"out":"","ver":0,"t0":1,"t1":2}')
    evs = lin.events_of("noise\n" + line + "\n")
    assert len(evs) == 1 and lin.ops_of(evs) == []


def test_command_line_rejects_a_bad_history(tmp_path):
    evs = [{"event": "store_op", "c": 1, "i": 0, "op": "put", "k": "k0", "v": "a", "x": None, "r": "ERR_OK",
            "out": "", "ver": 1, "t0": 0, "t1": 1},
           {"event": "store_op", "c": 2, "i": 0, "op": "get", "k": "k0", "v": "", "x": None, "r": "ERR_NOT_FOUND",
            "out": "", "ver": 0, "t0": 2, "t1": 3}]
    p = tmp_path / "h.log"
    p.write_text("".join("@atoll " + json.dumps(e) + "\n" for e in evs))
    r = subprocess.run([os.path.join(ROOT, "tools", "linearize"), str(p)], capture_output=True, text=True)
    assert r.returncode == 1, r.stdout
    assert "NOT linearizable" in r.stderr
    p.write_text("@atoll " + json.dumps(evs[0]) + "\n")
    r = subprocess.run([os.path.join(ROOT, "tools", "linearize"), str(p)], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[-1])["ok"] is True
