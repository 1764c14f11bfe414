"""A fault-injection campaign (docs/faults.md): boot a machine whose
services run under the restart service (an echo server per core, the
topology service, and the replicated store when the machine has room for
three replicas), keep clients calling them (an echo loop on every core, and
store clients that check that no acknowledged write is lost), and have the
restart service run the campaign itself (the shell's `fault campaign`): it
injects the faults, many at once, and classifies each one's outcome
(contained, server restarted, state recovered, system failure). At the end
every service is asked once more. Prints one JSON line per fault, a
`campaign` summary line and a table in the manner of the MINIX 3 study.

    tools/inject --faults 300 --smp 3                 # what make test runs (tests/test_inject.py)
    tools/inject --faults 100000 --smp 16 --numa 4 --mem 2G --timeout 0 --json campaign.jsonl

The library entry points are plan() (the machine's manifest and the shell
commands, pure), summarize() (from a booted machine's events), table() and
main(). Standard library only."""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_run  # noqa: E402

# The restart service's FAULT_* kinds, in order (lib/include/atoll/recover.h).
ALL_KINDS = ("kill", "hang", "crash", "garble", "bitflip", "badbeat", "regs", "stall")
# A campaign's by default: a stall (slow, not dead) only when asked for.
KINDS = ALL_KINDS[:-1]
OUTCOMES = ("contained", "restarted", "recovered", "failed")
OUTCOME_TITLES = {"contained": "contained", "restarted": "server restarted", "recovered": "state recovered",
                  "failed": "system failure"}
# The name the starter registers when its campaign is over: the loops stop.
OVER = "campaign.over"
STORE_CLIENTS = 2
STORE_EVERY_MS = 5


def store_placement(smp, numa):
    """Where the store's replicas go: at least three (a majority survives one
    replica's loss while another catches up), at most eight; None: no store."""
    if numa >= 3:
        return "per-node"
    if 3 <= smp <= 8:
        return "per-core"
    return None


def manifest(smp, numa, store=True):
    lines = ["# tools/inject: the servers under the restart service (docs/faults.md).",
             "topology topo core:0 restart=100 backoff=10 $name $key",
             "echo.pc echo per-core restart=100 backoff=10 serve $name 0 key=$key"]
    place = store_placement(smp, numa) if store else None
    if place:
        lines.append(f"kv store {place} restart=100 backoff=10 heartbeat=yes serve $name $key $cores $life")
    return "\n".join(lines) + "\n", place


def plan(faults, ncores, seed=1, pace_ms=0, kinds=KINDS, store=True):
    """The shell commands of a campaign (pure)."""
    cmds = [f"run {c} echo loop echo.pc 99999999 10 until={OVER}" for c in range(ncores)]
    if store:
        clients = sorted({1 % ncores, (ncores - 1) % ncores})[:STORE_CLIENTS]
        cmds += [f"run {c} store acked kv {i + 1} 99999999 {STORE_EVERY_MS}" for i, c in enumerate(clients)]
    cmds += [f"fault campaign {faults} {seed} {pace_ms} {','.join(kinds)}"]
    # The loops stop at `campaign.over`; then every service is asked once more.
    cmds += ["wait 60000", "svc", "names"]
    cmds += [f"run {c} echo call echo.pc 1" for c in range(ncores)] + ["wait 6000", "topo node 0"]
    if store:
        cmds += ["run 0 store state kv", "wait 6000"]
    return cmds


def summarize(r, ncores, store=True):
    """Per-fault lines and the summary, from the machine's events."""
    lines = r.events_named("fault_outcome")
    matrix = {k: {o: 0 for o in OUTCOMES} for k in KINDS}
    per_service = {}
    for e in lines:
        matrix.setdefault(e["kind"], {o: 0 for o in OUTCOMES})[e["outcome"]] += 1
        per_service.setdefault(e["name"], {o: 0 for o in OUTCOMES})[e["outcome"]] += 1
    done = (r.events_named("campaign_done") or [{}])[-1]
    loops = r.events_named("echo_loop")
    calls = r.events_named("echo_call")
    acked = r.events_named("store_acked")
    states = r.events_named("store_state")
    restarted = r.events_named("service_restarted")
    s = {
        "event": "campaign",
        "faults": len(lines),
        "done": bool(done),
        "by_kind": matrix,
        "by_service": per_service,
        "outcomes": {o: sum(m[o] for m in matrix.values()) for o in OUTCOMES},
        "skipped": done.get("skipped"),
        "late_ends": done.get("late_ends"),
        "guest_ms": done.get("ms"),
        # Where the time goes: each fault's span from injection to verdict
        # (its instance takes no other fault meanwhile), and the restart
        # service's own work (docs/faults.md, Speed).
        "mean_ms_by_outcome": {o: round(sum(e["ms"] for e in lines if e["outcome"] == o) /
                                        max(1, sum(1 for e in lines if e["outcome"] == o)))
                               for o in OUTCOMES},
        "mean_ms_by_kind": {k: round(sum(e["ms"] for e in lines if e["kind"] == k) /
                                     max(1, sum(1 for e in lines if e["kind"] == k)))
                            for k in matrix if any(e["kind"] == k for e in lines)},
        "starter": done.get("starter"),
        "restarts": len(restarted),
        "restart_limits": len(r.events_named("restart_limit")),
        "kernel_panics": len(r.events_named("panic")),
        "monitor_faults": sum(1 for e in r.events_named("domain_fault") if e.get("name") == "monitor"),
        "client_calls": sum(e["calls"] for e in loops),
        "client_errors": sum(e["errors"] for e in loops),
        "client_loops": len(loops),
        "store": bool(store),
        "store_writes": sum(e["writes"] for e in acked) if store else None,
        "store_acknowledged": sum(e["acked"] for e in acked) if store else None,
        "store_checks": sum(e["checks"] for e in acked) if store else None,
        "lost_acknowledged_writes": (sum(e["lost"] for e in acked) + sum(e["wrong"] for e in acked)
                                     if store else None),
        "store_replicas_equal": (len({e.get("digest") for e in states}) == 1 and len(states) > 0) if store else None,
        "echo_answered_at_end": len({e["core"] for e in calls}),
        "timed_out": r.timed_out,
    }
    s["answering_at_end"] = (s["echo_answered_at_end"] == ncores and bool(r.events_named("topo_node"))
                             and (not store or (len(acked) > 0 and bool(s["store_replicas_equal"]))))
    s["ok"] = (s["done"] and not s["timed_out"] and s["outcomes"]["failed"] == 0 and s["kernel_panics"] == 0
               and s["monitor_faults"] == 0 and s["answering_at_end"] and s["client_errors"] == 0
               and not s["lost_acknowledged_writes"])
    return lines, s


def table(s):
    heads = ["fault", "injected"] + [OUTCOME_TITLES[o] for o in OUTCOMES]
    rows = []
    for k, m in s["by_kind"].items():
        n = sum(m.values())
        if n:
            rows.append([k, str(n)] + [str(m[o]) for o in OUTCOMES])
    rows.append(["total", str(s["faults"])] + [str(s["outcomes"][o]) for o in OUTCOMES])
    w = [max(len(r[i]) for r in rows + [heads]) for i in range(len(heads))]
    fmt = lambda r: "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))  # noqa: E731
    out = [fmt(heads), fmt(["-" * x for x in w])] + [fmt(r) for r in rows[:-1]] + [fmt(["-" * x for x in w]),
                                                                                    fmt(rows[-1])]
    yes = lambda b: "yes" if b else "NO"  # noqa: E731
    more = [("restarts (all services)", s["restarts"]),
            ("late ends (an effect after the fault was judged)", s["late_ends"]),
            ("restart limits reached", s["restart_limits"]),
            ("kernel panics", s["kernel_panics"]),
            ("monitor faults", s["monitor_faults"]),
            ("client calls / errors", f"{s['client_calls']} / {s['client_errors']}")]
    if s["store"]:
        more += [("store writes / acknowledged / checked reads", f"{s['store_writes']} / {s['store_acknowledged']} / "
                  f"{s['store_checks']}"),
                 ("lost acknowledged writes", s["lost_acknowledged_writes"]),
                 ("store replicas equal at the end", yes(s["store_replicas_equal"]))]
    more += [("every service answering at the end", yes(s["answering_at_end"]))]
    if s.get("wall_s"):
        more += [("wall time", f"{s['wall_s']:.0f} s ({s['faults'] / s['wall_s']:.1f} faults/s)")]
    lw = max(len(a) for a, _ in more)
    return "\n".join(out + [""] + [f"{a:<{lw}}  {b}" for a, b in more])


def main(argv=None):
    p = argparse.ArgumentParser(prog="inject", description="A fault-injection campaign (docs/faults.md).")
    p.add_argument("--faults", type=int, default=300)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--smp", type=int, default=3)
    p.add_argument("--numa", type=int, default=0)
    p.add_argument("--mem", default="1G")
    p.add_argument("--pace", type=int, default=0, help="ms between faults (default 0: as fast as instances are free)")
    p.add_argument("--kinds", default=",".join(KINDS), help="a subset of " + ",".join(ALL_KINDS) +
                   " (default: all but stall)")
    p.add_argument("--no-store", action="store_true", help="leave the replicated store out")
    p.add_argument("--timeout", type=float, default=900, help="seconds (0: none)")
    p.add_argument("--log", help="a copy of the console")
    p.add_argument("--json", help="write the per-fault lines and the summary here too")
    p.add_argument("--quiet", action="store_true", help="print only the summary and the table")
    a = p.parse_args(argv)
    kinds = [k for k in a.kinds.split(",") if k]
    bad = [k for k in kinds if k not in ALL_KINDS]
    if bad or not kinds or a.faults < 1:
        p.error(f"--kinds: unknown {bad}" if bad else "nothing to inject")
    text, place = manifest(a.smp, a.numa, store=not a.no_store)
    store = place is not None
    cmds = plan(a.faults, a.smp, a.seed, a.pace, kinds, store=store)
    path = os.path.join(atoll_run.REPO, "build", f"inject-{os.getpid()}.services")
    with open(path, "w") as f:
        f.write(text)
    t0 = time.monotonic()
    try:
        mem = atoll_run.parse_size(a.mem)
        m = atoll_run.Machine(smp=a.smp, numa=a.numa, mem=mem, accel="tcg",
                              modules=atoll_run.user_modules(services=path))
        r = atoll_run.boot(m, timeout=a.timeout or None, log=a.log, shell_commands=cmds)
    finally:
        os.unlink(path)
    lines, s = summarize(r, a.smp, store)
    s["wall_s"] = round(time.monotonic() - t0, 1)
    s["machine"] = {"smp": a.smp, "numa": a.numa, "store": place, "seed": a.seed, "pace_ms": a.pace}
    out = [json.dumps(x) for x in lines] + [json.dumps(s)]
    print("\n".join(out[-1:] if a.quiet else out))
    print(table(s))
    if a.json:
        with open(a.json, "w") as f:
            f.write("\n".join(out) + "\n")
    return 0 if s["ok"] else 1
