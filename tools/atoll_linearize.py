"""A linearizability checker for the store's histories (docs/store.md), in
the manner of Porcupine and Knossos: Wing and Gong's search with Lowe's
memoisation, one key at a time.

A history is a list of operations, each with the time it was called (t0)
and the time its answer came back (t1), from clients on any core. The
history is linearizable if every operation can be given a point between
its t0 and t1 such that, taken in the order of those points, the
operations are a legal run of a sequential register per key:

  put(k, v)            -> ok                     k holds v
  get(k)               -> v, or not found
  del(k)               -> ok (k was there), or not found (it was not)
  cas(k, x, v)         -> ok (k held x, or was absent when x is None: k
                          now holds v), or failed (it did not: nothing changes)

Each key is an independent object, and linearizability is local (Herlihy
and Wing 1990): a history is linearizable iff its restriction to every key
is, so each key is checked alone. An operation whose answer never came
(the replica died under it: "r": "?") may have taken effect at any point
after it was called, or never: a write of that kind is kept with t1 = inf
and may be left out; a read of that kind is dropped. An operation answered
with an error that means it was never sequenced (ERR_NOT_LEADER,
ERR_NO_LEADER, ERR_STORE_KEY, ...) is dropped.

The search: among the operations not yet placed, a candidate is one that
was called before every other unplaced operation returned (nothing must
come before it); it is placed if the register allows its result, and the
search goes on from there, backtracking on a dead end. States already seen
(the set placed, the register's value) are not searched twice.
"""
import json
import math
import sys

# Results that say what the register did; anything else means no effect.
EFFECTS = {
    "put": {"ERR_OK"},
    "get": {"ERR_OK", "ERR_NOT_FOUND"},
    "del": {"ERR_OK", "ERR_NOT_FOUND"},
    "cas": {"ERR_OK", "ERR_CAS_FAILED"},
}
UNKNOWN = "?"


class Op:
    __slots__ = ("client", "kind", "key", "value", "expect", "result", "out", "t0", "t1", "line")

    def __init__(self, client, kind, key, value=None, expect=None, result="ERR_OK", out=None,
                 t0=0, t1=0, line=None):
        self.client, self.kind, self.key = client, kind, key
        self.value, self.expect, self.result, self.out = value, expect, result, out
        self.t0, self.t1, self.line = t0, t1, line

    def __repr__(self):
        return (f"Op(c{self.client} {self.kind}({self.key}, v={self.value!r}, x={self.expect!r})"
                f" -> {self.result} {self.out!r} [{self.t0}, {self.t1}])")


def from_event(e):
    """An Op from a store_op event of `store hist`, or None if it had no effect."""
    kind, result = e["op"], e["r"]
    if kind not in EFFECTS:
        raise ValueError(f"unknown operation {kind!r}")
    if result == UNKNOWN:
        if kind == "get":
            return None
    elif result not in EFFECTS[kind]:
        return None
    t1 = math.inf if result == UNKNOWN else e["t1"]
    if t1 < e["t0"]:
        raise ValueError(f"answered before called: {e}")
    out = e.get("out") if kind == "get" and result == "ERR_OK" else None
    return Op(e["c"], kind, e["k"], value=e.get("v") or None, expect=e.get("x"), result=result, out=out,
              t0=e["t0"], t1=t1, line=e)


def step(state, op):
    """The register's next state if op's result is legal from `state` (None:
    absent), or raises KeyError if it is not. An unknown write always fits."""
    k, r = op.kind, op.result
    if k == "put":
        return op.value
    if k == "get":
        if (r == "ERR_OK" and state == op.out) or (r == "ERR_NOT_FOUND" and state is None):
            return state
        raise KeyError
    if k == "del":
        if r == UNKNOWN:
            return None
        if (r == "ERR_OK") == (state is not None):
            return None
        raise KeyError
    if k == "cas":
        holds = state is None if op.expect is None else state == op.expect
        if r == UNKNOWN:
            return op.value if holds else state
        if (r == "ERR_OK") == holds:
            return op.value if holds else state
        raise KeyError
    raise KeyError


def check_key(ops, init=None, budget=2_000_000):
    """Is this one key's history linearizable? (ok, explored, witness): the
    order found, or for a failure the longest prefix placed. budget bounds
    the states explored (None: ok is None, undecided)."""
    n = len(ops)
    ops = sorted(ops, key=lambda o: o.t0)
    must = 0   # the operations that returned: all must be placed
    for i, o in enumerate(ops):
        if o.t1 != math.inf:
            must |= 1 << i
    seen = set()
    explored = 0
    best = []
    sys.setrecursionlimit(max(1000, 4 * n + 100))

    def search(done, state, order):
        nonlocal explored, best
        if done & must == must:
            return True
        if (done, state) in seen:
            return False
        seen.add((done, state))
        explored += 1
        if explored > budget:
            raise TimeoutError
        if len(order) > len(best):
            best = list(order)
        # The earliest return among unplaced operations bounds the candidates.
        horizon = min((ops[i].t1 for i in range(n) if not done >> i & 1), default=math.inf)
        for i in range(n):
            if done >> i & 1:
                continue
            o = ops[i]
            if o.t0 > horizon:
                break   # sorted by t0: no later one can come first either
            try:
                nxt = step(state, o)
            except KeyError:
                continue
            order.append(i)
            if search(done | 1 << i, nxt, order):
                return True
            order.pop()
        return False

    order = []
    try:
        ok = search(0, init, order)
    except TimeoutError:
        return None, explored, []
    return ok, explored, [ops[i] for i in (order if ok else best)]


def check(ops, budget=2_000_000):
    """Every key's history: a list of dicts {key, ops, ok, explored, witness}."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    out = []
    for key in sorted(by_key):
        ok, explored, witness = check_key(by_key[key], budget=budget)
        out.append({"key": key, "ops": len(by_key[key]), "ok": ok, "explored": explored, "witness": witness})
    return out


def events_of(text):
    """store_op events from console output or JSON lines."""
    evs = []
    for line in text.splitlines():
        i = line.find("{")
        if i < 0 or '"store_op"' not in line:
            continue
        try:
            e = json.loads(line[i:])
        except json.JSONDecodeError:
            continue
        if e.get("event") == "store_op":
            evs.append(e)
    return evs


def ops_of(events):
    return [o for o in (from_event(e) for e in events) if o is not None]


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="tools/linearize",
                                 description="Check store histories (store_op events) for linearizability.")
    ap.add_argument("files", nargs="+", help="console logs or JSON lines with store_op events")
    ap.add_argument("--budget", type=int, default=2_000_000, help="states to explore per key at most")
    a = ap.parse_args(argv)
    status = 0
    for path in a.files:
        with open(path, errors="replace") as f:
            events = events_of(f.read())
        ops = ops_of(events)
        for r in check(ops, a.budget):
            line = {"event": "linearize", "file": path, "key": r["key"], "ops": r["ops"], "ok": r["ok"],
                    "explored": r["explored"]}
            print(json.dumps(line))
            if r["ok"] is not True:
                status = 1
                print(f"{path}: key {r['key']}: {'undecided' if r['ok'] is None else 'NOT linearizable'};"
                      f" longest legal order ({len(r['witness'])} of {r['ops']}):", file=sys.stderr)
                for o in r["witness"][-5:]:
                    print(f"  {o!r}", file=sys.stderr)
        unknown = sum(1 for o in ops if o.t1 == math.inf)
        print(json.dumps({"event": "linearize_summary", "file": path, "events": len(events), "ops": len(ops),
                          "unknown": unknown, "ok": status == 0}))
    return status
