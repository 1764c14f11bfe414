"""A fault-injection campaign (docs/restart.md): boot a machine whose
services run under the restart service, keep a client calling every
instance in a loop, inject faults into the servers through the shell's
`fault` (kill, hang, crash, garble, bitflip, badbeat, regs; kill of the name
server too),
and at the end check that every service answers. Prints one JSON line per
fault and a summary (JSON and a table in the manner of the MINIX 3 study).

    tools/inject --faults 200 --smp 2              # what make test runs (tests/test_inject.py)
    tools/inject --faults 100000 --smp 16 --numa 4 --timeout 0   # the long run

The library entry points are plan() (the shell commands, pure and
seeded), summarize() (from a booted machine's events) and main().
Standard library only."""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_run  # noqa: E402

KINDS = ("kill", "hang", "crash", "garble", "bitflip", "badbeat", "regs")
# Hangs cost HEARTBEAT_HANG_MS (5 s) each to notice: fewer of them.
DEFAULT_WEIGHTS = {"kill": 30, "hang": 4, "crash": 25, "garble": 20, "bitflip": 16, "badbeat": 5, "regs": 10}
# One in this many kills hits the name server instead of an echo instance.
NAMES_EVERY = 20

MANIFEST = """\
# tools/inject: one echo server per core under the restart service.
topology topo core:0 restart=100 backoff=10 $name $key
echo.pc echo per-core restart=100 backoff=10 serve $name 0 key=$key
"""


def plan(faults, ncores, seed=1, pace=5, weights=None, loop_calls=None):
    """The campaign as shell commands, and the faults as dicts (in order)."""
    rng = random.Random(seed)
    weights = weights or DEFAULT_WEIGHTS
    kinds = [k for k in KINDS if weights.get(k)]
    wts = [weights[k] for k in kinds]
    # About one call per 10 ms tick: the loops last about as long as the faults.
    calls = loop_calls or max(100, faults * (pace + 1))
    cmds = [f"run {c} echo loop echo.pc {calls} 10" for c in range(ncores)]
    planned = []
    for i in range(faults):
        kind = rng.choices(kinds, wts)[0]
        name, core = "echo.pc", rng.randrange(ncores)
        if kind == "kill" and rng.randrange(NAMES_EVERY) == 0:
            name, core = "names", 0
        elif kind == "kill" and rng.randrange(NAMES_EVERY) == 0:
            name, core = "topology", 0
        fault_seed = rng.randrange(1, 10**9)   # the shell takes numbers up to 1e9
        planned.append({"fault": i, "kind": kind, "name": name, "core": core, "seed": fault_seed})
        cmds += [f"fault {kind} {name} {core} {fault_seed}", f"sleep {pace}"]
    # Let hung instances be noticed and everything come back, the loops end,
    # then ask every service once more.
    cmds += ["sleep 700", "wait 60000", "svc", "names"]
    cmds += [f"run {c} echo call echo.pc 1" for c in range(ncores)] + ["wait 6000", "topo node 0"]
    return cmds, planned


def summarize(r, planned, ncores):
    """Per-fault lines and the summary, from the machine's events."""
    injected = r.events_named("fault_injected")
    lines = []
    for p, e in zip(planned, injected):
        lines.append(dict(p, domain=e.get("domain"), err=e.get("err")))
    by_kind = {}
    for line in lines:
        k = by_kind.setdefault(line["kind"], {"injected": 0, "skipped": 0})
        k["injected" if line["err"] == "ERR_OK" else "skipped"] += 1
    loops = r.events_named("echo_loop")
    calls = r.events_named("echo_call")
    restarted = r.events_named("service_restarted")
    s = {
        "event": "campaign",
        "faults": len(planned),
        "typed": len(injected),
        "injected": sum(1 for x in lines if x["err"] == "ERR_OK"),
        "by_kind": by_kind,
        "taken": len(r.events_named("fault_taken")),
        "heartbeats_garbled": len(r.events_named("heartbeat_garbled")),
        "restarts": len(restarted),
        "restarts_names": sum(1 for e in restarted if e["name"] == "names"),
        "restart_limits": len(r.events_named("restart_limit")),
        "kernel_panics": len(r.events_named("panic")),
        "monitor_faults": sum(1 for e in r.events_named("domain_fault") if e.get("name") == "monitor"),
        "client_calls": sum(e["calls"] for e in loops),
        "client_errors": sum(e["errors"] for e in loops),
        "client_loops": len(loops),
        "answering_at_end": len({e["core"] for e in calls}) == ncores and bool(r.events_named("topo_node")),
        "echo_answered_at_end": len(calls),
        "lost_acknowledged_writes": None,   # no replicated store in this campaign yet
        "timed_out": r.timed_out,
    }
    return lines, s


def table(s):
    rows = [("faults planned", s["faults"]), ("faults injected", s["injected"])]
    for k in KINDS:
        if k in s["by_kind"]:
            rows.append((f"  {k}", f"{s['by_kind'][k]['injected']} (+{s['by_kind'][k]['skipped']} skipped)"))
    rows += [("restarts (name server)", f"{s['restarts']} ({s['restarts_names']})"),
             ("restart limits reached", s["restart_limits"]),
             ("kernel panics", s["kernel_panics"]),
             ("client calls / errors", f"{s['client_calls']} / {s['client_errors']}"),
             ("every service answering at the end", "yes" if s["answering_at_end"] else "NO")]
    w = max(len(a) for a, _ in rows)
    return "\n".join(f"{a:<{w}}  {b}" for a, b in rows)


def main(argv=None):
    p = argparse.ArgumentParser(prog="inject", description="A fault-injection campaign (docs/restart.md).")
    p.add_argument("--faults", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--smp", type=int, default=2)
    p.add_argument("--numa", type=int, default=0)
    p.add_argument("--mem", default="1G")
    p.add_argument("--pace", type=int, default=5, help="timer ticks between faults (default 5: 50 ms)")
    p.add_argument("--kinds", default=",".join(KINDS), help="a subset of " + ",".join(KINDS))
    p.add_argument("--timeout", type=float, default=900, help="seconds (0: none)")
    p.add_argument("--log", help="a copy of the console")
    p.add_argument("--json", help="write the per-fault lines and the summary here too")
    a = p.parse_args(argv)
    kinds = [k for k in a.kinds.split(",") if k]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or a.faults < 1:
        p.error(f"--kinds: unknown {bad}" if bad else "nothing to inject")
    weights = {k: DEFAULT_WEIGHTS[k] for k in kinds}
    cmds, planned = plan(a.faults, a.smp, a.seed, a.pace, weights)
    manifest = os.path.join(atoll_run.REPO, "build", f"inject-{os.getpid()}.services")
    with open(manifest, "w") as f:
        f.write(MANIFEST)
    try:
        mem = atoll_run.parse_size(a.mem)
        m = atoll_run.Machine(smp=a.smp, numa=a.numa, mem=mem, accel="tcg",
                              modules=atoll_run.user_modules(services=manifest))
        r = atoll_run.boot(m, timeout=a.timeout or None, log=a.log, shell_commands=cmds)
    finally:
        os.unlink(manifest)
    lines, s = summarize(r, planned, a.smp)
    out = [json.dumps(x) for x in lines] + [json.dumps(s)]
    print("\n".join(out))
    print(table(s))
    if a.json:
        with open(a.json, "w") as f:
            f.write("\n".join(out) + "\n")
    ok = not s["timed_out"] and s["kernel_panics"] == 0 and s["answering_at_end"] and s["monitor_faults"] == 0
    return 0 if ok else 1
