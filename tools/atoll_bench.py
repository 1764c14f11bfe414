"""tools/bench: run benchmarks over machine shapes on Atoll and on Linux,
collect their JSON lines, draw the plots and write the report.

    tools/bench --shapes "2 4 8 16 32 8n2" --accel tcg      # sweep (make bench)
    tools/bench --jobs 2 ... | tools/bench --slurm ...     # in parallel, on a cluster
    tools/bench report --out build/bench                   # merge the points, redraw
    tools/bench point build/bench/points/ID                # run one point alone
    tools/bench list                                       # benchmarks x systems

A point is one system booted on one machine shape with one accelerator; it
runs every benchmark that system has a half for, in one boot. Each point has
its own folder (atoll_bench_points.py): a rerun skips points done with the
same code and settings, points run here (--jobs) or as Slurm tasks
(atoll_bench_slurm.py), and the report merges whatever folders exist. A
point that cannot run (bad shape, no kernel, QEMU failing, a hang, garbage)
is retried once when another boot may help, then recorded with the reason
and the console's tail, and the sweep goes on.

The plug-in point is BENCHMARKS: each Benchmark names, per system, the
Half that runs it (the guest program) and how its options depend on the
machine and accelerator. Atoll's halves are registered there as they are
written (register_half); until then the report lists them as missing.
docs/bench.md documents the command, the files and every JSON field.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_bench_linux as linux  # noqa: E402
import atoll_bench_points as points  # noqa: E402
import atoll_bench_report as report  # noqa: E402
import atoll_costmodel  # noqa: E402
import atoll_bench_slurm as slurm  # noqa: E402
import atoll_run  # noqa: E402
from atoll_run import ConfigError, GiB, Machine  # noqa: E402

REPO = atoll_run.REPO
DEFAULT_OUT = os.path.join("build", "bench")
DEFAULT_SHAPES = "2 4 8 16 32 8n2 16n4"
SCHEMA = report.SCHEMA


# -- the registry: benchmarks and how each system runs them ---------------------------------
@dataclasses.dataclass
class Half:
    """One system's half of a benchmark.

    program: Linux: the static program /bin/NAME in the initramfs (built from
      bench/linux/NAME.c). Atoll: the user program (build/user/NAME.elf) the
      half needs, or "" when it needs none (the boot report is always there).
    options: (machine, accel) -> {key: value}: the defaults, small under TCG.
      Linux passes them as NAME.key=value on the kernel command line.
    quick: what --quick changes, for a smoke test.
    cost: what --cost-model changes: the counts are per operation and exact,
      so few operations do (docs/costmodel.md). A value may be a function of
      the machine.
    commands: Atoll: (machine, options) -> lines typed at the Atoll shell's
      prompts (tools/run's `--`); the shell powers off after the last.
    adapt: Atoll: (event, options) -> result or event dicts (the `@bench`
      schema) for each `@atoll` event of the boot: for programs that print
      their own events rather than `@bench` lines.
    services: Atoll: the boot manifest the half needs (a path from the repo's
      root), "" for the default one."""
    program: str = ""
    options: Callable[[Machine, str], Dict[str, object]] = lambda m, accel: {}
    quick: Dict[str, object] = dataclasses.field(default_factory=dict)
    commands: Optional[Callable[[Machine, Dict[str, object]], List[str]]] = None
    cost: Dict[str, object] = dataclasses.field(default_factory=dict)
    adapt: Optional[Callable[[dict, Dict[str, object]], List[dict]]] = None
    services: str = ""   # Atoll: the boot manifest it needs (default: servers/starter/default.services)
    # Atoll: (services, options) -> the manifest for these options (a path
    # from the repo's root), when they leave some of its services unused.
    manifest: Optional[Callable[[str, Dict[str, object]], str]] = None
    # Atoll: options -> the options of each boot the half needs, when its
    # runs must not share a machine (the store: a boot per placement).
    boots: Optional[Callable[[Dict[str, object]], List[Dict[str, object]]]] = None


@dataclasses.dataclass
class Benchmark:
    name: str
    title: str
    halves: Dict[str, Half] = dataclasses.field(default_factory=dict)


def tcg_core_counts(smp):
    """The values of N for unmap under TCG: every N up to 8, then steps."""
    ns = list(range(1, min(smp, 8) + 1))
    n = 12
    while n < smp:
        ns.append(n)
        n = n + 4 if n < 32 else n * 2
    if smp > 8:
        ns.append(smp)
    return ",".join(str(n) for n in ns)


def _pingpong_options(m, accel):
    if accel == "kvm":
        return {"samples": 31, "batch": 200}
    return {"samples": 7, "batch": 10}


def _unmap_options(m, accel):
    if accel == "kvm":
        return {"iters": 101, "warmup": 10}
    return {"iters": 11, "warmup": 3, "n": tcg_core_counts(m.smp)}


def _store_options(m, accel):
    if accel == "kvm":
        return {"ops": 200000, "samples": 7}
    return {"ops": 5000, "samples": 3, "n": tcg_core_counts(m.smp)}


def _local_options(m, accel):
    cpus = "0-1" if m.smp > 1 else "0"
    if accel == "kvm":
        return {"samples": 31, "batch": 200, "cpus": cpus}
    return {"samples": 7, "batch": 20, "cpus": cpus}


def _result(bench, metric, unit, median, samples, spread, params, **extra):
    r = {"benchmark": bench, "metric": metric, "unit": unit, "value": median,
         "samples": samples, "median": median, "spread": spread, "params": params}
    r.update(extra)
    return r


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def atoll_boot_adapt(event, options):
    """Atoll's boot report -> boot's kernel_to_all_cores: boot_summary's
    boot_ms runs from the boot core's first kernel instruction to the last
    core's check-in (docs/boot-report.md)."""
    if event.get("event") != "boot_summary":
        return []
    ms, up, found = event.get("boot_ms"), event.get("cores_up"), event.get("cores_found")
    if not _num(ms):
        return [{"event": "error", "benchmark": "boot", "reason": "boot_summary without boot_ms"}]
    if _num(up) and _num(found) and up != found:
        return [{"event": "error", "benchmark": "boot",
                 "reason": f"only {up} of {found} cores came up"}]
    return [_result("boot", "kernel_to_all_cores", "ns", ms * 1e6, 1, 0.0, {})]


def _atoll_cores(machine, options):
    try:
        cpus = atoll_run.parse_cpus(str(options.get("cpus", "0")))
    except ConfigError:
        cpus = [0]
    return [c for c in cpus if c < machine.smp] or [0]


def atoll_local_commands(machine, options):
    rounds = int(options.get("rounds", 300))
    cmds = []
    for c in _atoll_cores(machine, options):
        cmds += [f"run {c} lmpbench {rounds}", "wait"]
    return cmds


def atoll_local_adapt(event, options):
    """user/lmpbench's lmp_bench event -> local round trips. lmpbench reports
    the median and the minimum only, so spread is median - min here
    (params.spread says so)."""
    if event.get("event") != "lmp_bench":
        return []
    out = []
    core, rounds, hz = event.get("core"), event.get("rounds"), event.get("tsc_hz")
    if not (_num(rounds) and rounds >= 1):
        rounds = 1
    for proto, med, mn in (("lmp", "null_median", "null_min"),
                           ("lmp_cap", "cap_median", "cap_min")):
        m, lo = event.get(med), event.get(mn)
        if not (_num(m) and _num(lo)):
            continue
        params = {"protocol": proto, "core": core}
        out.append(_result("local", "round_trip", "cycles", m, int(rounds), max(0, m - lo),
                           params, min=lo, spread_kind="median-min"))
        if _num(hz) and hz > 0:
            f = 1e9 / hz
            out.append(_result("local", "round_trip", "ns", m * f, int(rounds),
                               max(0.0, (m - lo) * f), params, min=lo * f,
                               spread_kind="median-min"))
    return out


def atoll_pingpong_commands(machine, options):
    """`bench urpc`: every ordered pair of cores (pairs=all) or core 0 to
    every other (pairs=row), a fresh URPC channel each between two user
    domains (user/urpcbench), both spinning, and a bare cache line on the
    same frame (docs/monitor.md)."""
    row = " row" if str(options.get("pairs", "all")) == "row" else ""
    return [f"bench urpc {int(options.get('rounds', 200))} {machine.smp}{row}"]


def atoll_pingpong_adapt(event, options):
    """The shell's urpc_bench event -> ping-pong results: protocol `urpc`
    (both sides polling), `urpc_wake` (the receiver asleep, woken by a
    notification IPI) and `cacheline` (a bare cache line on the same frame,
    as Linux's: the floor the report divides by), plus URPC's one-way
    latency and throughput. The event has the median and p10/p90 of the
    round trips: spread is p90 - p10 (params.spread_kind says so). An event
    that reports an error gives an error result."""
    if event.get("event") != "urpc_bench":
        return []
    src, dst, rounds = event.get("from"), event.get("to"), event.get("rounds")
    med, p10, p90 = event.get("rt_median_ns"), event.get("rt_p10_ns"), event.get("rt_p90_ns")
    if event.get("error", "ERR_OK") != "ERR_OK":
        return [{"event": "error", "benchmark": "pingpong",
                 "reason": f"urpc_bench {src}->{dst}: {event.get('error')}"}]
    if not all(_num(v) for v in (src, dst, rounds, med, p10, p90)):
        return [{"event": "error", "benchmark": "pingpong", "reason": f"malformed urpc_bench event: {event}"}]
    out = [_result("pingpong", "round_trip", "ns", med, int(rounds), max(0, p90 - p10),
                   {"protocol": "urpc", "src": src, "dst": dst}, min=event.get("rt_min_ns"),
                   spread_kind="p90-p10")]
    bare = [event.get(k) for k in ("bare_rt_median_ns", "bare_rt_p10_ns", "bare_rt_p90_ns")]
    if all(_num(v) for v in bare):
        out.append(_result("pingpong", "round_trip", "ns", bare[0], int(rounds), max(0, bare[2] - bare[1]),
                           {"protocol": "cacheline", "src": src, "dst": dst},
                           min=event.get("bare_rt_min_ns"), spread_kind="p90-p10"))
    wake = event.get("wake_rt_median_ns")
    if _num(wake):
        out.append(_result("pingpong", "round_trip", "ns", wake, 1, 0.0,
                           {"protocol": "urpc_wake", "src": src, "dst": dst}))
    one = event.get("oneway_median_ns")
    if _num(one):
        out.append(_result("pingpong", "one_way", "ns", one, int(rounds), 0.0,
                           {"protocol": "urpc", "src": src, "dst": dst}))
    # One-way streams: 16-byte messages (protocol urpc), 8 and 56 bytes one
    # per call, 8 bytes in batches (several to a slot).
    for field, proto in (("tput_msgs_per_s", "urpc"), ("tput8_msgs_per_s", "urpc_8"),
                         ("tput56_msgs_per_s", "urpc_56"), ("tput8_batch_msgs_per_s", "urpc_batch_8")):
        tput = event.get(field)
        if _num(tput):
            out.append(_result("pingpong", "throughput", "msgs/s", tput, 1, 0.0,
                               {"protocol": proto, "src": src, "dst": dst}))
    return out


def _node_cpus(machine):
    """The CPUs of each NUMA node (one node of every CPU without NUMA)."""
    nodes = machine.numa
    if isinstance(nodes, int):
        nodes = atoll_run.even_numa(machine.smp, nodes, machine.mem) if nodes else []
    return [list(n.cpus) for n in nodes if n.cpus] or [list(range(machine.smp))]


def lookup_pairs(machine):
    """(relation, server core, client core) for the lookup benchmark: an
    instance on the client's own core, on another core of its node, and on
    another node, as the machine allows. The server avoids core 0 (the name
    server and the shell run there) when its node has another core."""
    nodes = _node_cpus(machine)
    home = nodes[0]
    server = home[1] if len(home) > 1 else home[0]
    pairs = [("same_core", server, server)]
    others = [c for c in home if c != server]
    if others:
        pairs.append(("same_node", server, others[0]))
    if len(nodes) > 1:
        pairs.append(("remote_node", server, nodes[1][0]))
    return pairs


LOOKUPS = 21   # timed lookups per client (odd: a true median)


def atoll_lookup_commands(machine, options):
    """For each relation, a fresh instance `bench.lookup.REL` that answers
    ROUNDS calls and ends, and one client (user/echo, docs/names.md)."""
    rounds = int(options.get("rounds", 100))
    cmds = []
    for rel, server, client in lookup_pairs(machine):
        name = f"bench.lookup.{rel}"
        cmds += [f"run {server} echo serve {name} {rounds}", f"run {client} echo call {name} {rounds} {LOOKUPS}",
                 "wait"]
    return cmds


def atoll_lookup_adapt(event, options):
    """echo's echo_call event -> the name server's answer (median of 21
    lookups of a name that is there), connecting to the instance (with the
    first call), and a call's round trip, by where the instance is."""
    if event.get("event") != "echo_call" or not str(event.get("name", "")).startswith("bench.lookup."):
        return []
    core, server, node, snode = (event.get(k) for k in ("core", "server_core", "node", "server_node"))
    vals = [event.get(k) for k in ("lookup_ns", "lookup_min_ns", "connect_ns", "rt_median_ns", "rt_min_ns")]
    if not all(_num(v) for v in [core, server, node, snode] + vals):
        return [{"event": "error", "benchmark": "lookup", "reason": f"malformed echo_call event: {event}"}]
    lk, lk_min, conn, rt, rt_min = vals
    rel = "same_core" if core == server else "same_node" if node == snode else "remote_node"
    params = {"relation": rel, "client": core, "server": server}
    lookups, rounds = int(event.get("lookups") or 1), int(event.get("rounds") or 1)
    return [_result("lookup", "name_lookup", "ns", lk, lookups, max(0, lk - lk_min), params, min=lk_min,
                    spread_kind="median-min"),
            _result("lookup", "connect", "ns", conn, 1, 0.0, params),
            _result("lookup", "call", "ns", rt, rounds, max(0, rt - rt_min), params, min=rt_min,
                    spread_kind="median-min")]


# Under --cost-model: a few dozen operations per pair after a warm-up, core 0
# to every other core (a 64-CPU machine is 63 pairs, not 4,032). Linux
# measures each sample (and each unmap call) as its own region, so the
# report's median per operation keeps out the odd timer tick, which runs on
# host time (docs/costmodel.md, Determinism); Atoll's tick is core-local.
COST_PINGPONG_LINUX = {"samples": 5, "batch": 8, "warmup": 16, "pairs": "row"}
COST_PINGPONG_ATOLL = {"rounds": 40, "pairs": "row"}
COST_UNMAP = {"iters": 7, "warmup": 2}
# The store's N: 1, 2, 4 ... and every core (7 values at 64 CPUs, not
# tcg_core_counts' 15): a count per operation needs no N in between, and
# Atoll's 3 placements x 3 read fractions x N rounds were most of a 64-CPU
# sweep's time (docs/costmodel.md, The sweep's time).
def _cost_store_ns(m):
    return ",".join(str(n) for n in mem_core_counts(m.smp))


COST_STORE = {"ops": 200, "samples": 1, "n": _cost_store_ns}
COST_STORE_ATOLL = {"ops": 50, "n": _cost_store_ns}   # per client; a region per round (placement, read %, N)
COST_LOCAL = {"samples": 5, "batch": 8, "warmup": 16}
COST_LOOKUP = {"rounds": 20}   # a region per lookup (20), the connect, and per call
# mem marks only a client alone (N = 1, both halves): the runs with more
# clients at once would add nothing to the counts, only time (the 2 MiB
# rounds' first touch under the plugin: 77 of the 194 s of Linux's 8-CPU point).
COST_MEM = {"rounds": 5, "n": "1"}

ATOLL_UNMAP_PROTOCOLS = "unicast,broadcast,multicast,numa-multicast,ipi"


def _atoll_unmap_options(m, accel):
    o = dict(_unmap_options(m, accel))
    o.update({"ops": "unmap,protect", "protocols": ATOLL_UNMAP_PROTOCOLS})
    o.setdefault("n", "all")
    return o


def atoll_unmap_commands(machine, options):
    """user/threads' `bench` on core 0: its threads on cores 1..N-1 read the
    page, core 0 times span_unmap / span_protect by each protocol."""
    ops = ",".join({"munmap": "unmap", "mprotect": "protect"}.get(o, o)
                   for o in str(options.get("ops", "unmap,protect")).split(","))
    return [f"run 0 threads bench {int(options.get('iters', 11))} {int(options.get('warmup', 3))} "
            f"{options.get('n', 'all')} {ops} "
            f"{options.get('protocols', ATOLL_UNMAP_PROTOCOLS)}",
            "wait 1800000"]


def atoll_unmap_adapt(event, options):
    """threads' unmap_bench event -> unmap latency with params op
    (unmap/protect), protocol and cores (= N), like Linux's munmap/mprotect
    rows. The event has the median, minimum and maximum: spread is max - min."""
    if event.get("event") != "unmap_bench":
        return []
    op, proto = event.get("op"), event.get("protocol")
    vals = [event.get(k) for k in ("cores", "iters", "median_ns", "min_ns", "max_ns", "failed")]
    if op not in ("unmap", "protect") or not isinstance(proto, str) or not all(_num(v) for v in vals):
        return [{"event": "error", "benchmark": "unmap", "reason": f"malformed unmap_bench event: {event}"}]
    cores, iters, med, lo, hi, failed = vals
    if failed or iters < 1:
        return [{"event": "error", "benchmark": "unmap",
                 "reason": f"{op} ({proto}, N={cores}): {failed} failed, {iters} timed"}]
    params = {"op": op, "protocol": proto, "cores": cores, "pages": 1}
    return [_result("unmap", "latency", "ns", med, int(iters), max(0, hi - lo), params, min=lo, max=hi,
                    spread_kind="max-min")]
STORE_PLACEMENTS = {"kvn": "per-node", "kvc": "per-core", "kv1": "central"}   # servers/store/bench.services


def atoll_store_commands(machine, options):
    """`store bench` from N cores at once (cores 0..N-1, one client each),
    for each placement, read fraction and N; each batch is a round the
    adapter adds up."""
    ns = [n for n in atoll_run.parse_cpus(str(options.get("n") or tcg_core_counts(machine.smp)))
          if 1 <= n <= machine.smp]
    reads = [int(x) for x in str(options.get("reads", "100,95,50")).split(",") if x.strip()]
    stale = " stale" if str(options.get("fresh", 1)) in ("0", "false") else ""
    ops, keys = int(options.get("ops", 200)), int(options.get("keys", 64))
    cmds, rnd = [], 0
    for name in str(options.get("placements", "kvn,kvc,kv1")).split(","):
        for r in reads:
            for n in ns:
                rnd += 1
                cmds += [f"run {c} store bench {name} {c} {ops} {r} {keys} {rnd} {n}{stale}" for c in range(n)]
                cmds.append("wait 60000")
    return cmds


def store_manifest(services, options):
    """The store benchmark's manifest with only the placements it measures:
    a store not measured would still start its replicas (64 of them for
    `kvc` at 64 CPUs) and take the machine's time. Written under build/
    (named by the placements, rebuilt from the manifest whenever asked); the
    whole manifest when every placement is measured."""
    chosen = [p for p in str(options.get("placements", ",".join(STORE_PLACEMENTS))).split(",") if p]
    unknown = [p for p in chosen if p not in STORE_PLACEMENTS]
    if unknown:
        raise ValueError(f"store placements {unknown}: not in {services} ({', '.join(STORE_PLACEMENTS)})")
    if set(chosen) == set(STORE_PLACEMENTS):
        return services
    with open(os.path.join(REPO, services)) as f:
        text = "".join(ln for ln in f if not (ln.split() and ln.split()[0] in STORE_PLACEMENTS
                                              and ln.split()[0] not in chosen))
    path = os.path.join("build", "bench", "store-" + "-".join(sorted(chosen)) + ".services")
    full = os.path.join(REPO, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    try:
        with open(full) as f:
            same = f.read() == text
    except OSError:
        same = False
    if not same:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(full), suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, full)   # points starting at once each see a whole file
    return path


def store_boots(options):
    """A boot per placement: in one boot the stores not being measured sat
    idle beside 64 busy clients at 64 CPUs until the restart service judged
    their replicas silent, and their group lost its leader (docs/costmodel.md);
    alone, each placement's replicas are the only servers the clients load,
    and its rounds do not share the machine with another store's."""
    chosen = [p for p in str(options.get("placements", ",".join(STORE_PLACEMENTS))).split(",") if p]
    return [dict(options, placements=p) for p in chosen] or [options]


_store_rounds: Dict[tuple, list] = {}


def atoll_store_adapt(event, options):
    """store_bench events -> one throughput and one latency result per
    round (placement, read fraction, N): throughput = every client's
    operations over the round's span (the first loop's start to the last
    one's end, the guest's clock: never more than the truth, less when the
    loops did not all run at once); `overlap` says how much of the span
    all N ran at once (the common span over the whole). latency = the
    median of the clients' median latencies."""
    if event.get("event") == "boot_summary":
        _store_rounds.clear()   # a new boot: rounds count from 1 again
    if event.get("event") != "store_bench":
        return []
    key = (event.get("name"), event.get("round"))
    got = _store_rounds.setdefault(key, [])
    got.append(event)
    n = event.get("n")
    if not (_num(n) and len(got) >= n):
        return []
    del _store_rounds[key]
    params = {"placement": STORE_PLACEMENTS.get(event.get("name"), event.get("name")), "cores": n,
              "read_pct": event.get("read_pct"), "fresh": event.get("fresh")}
    errors = sum(int(e.get("errors", 0)) for e in got)
    if errors:
        return [{"event": "error", "benchmark": "store", "params": params,
                 "reason": f"{errors} operations failed in the round"}]
    ops = sum(int(e.get("ops", 0)) for e in got)
    span = max(e["t1"] for e in got) - min(e["t0"] for e in got)
    common = min(e["t1"] for e in got) - max(e["t0"] for e in got)
    meds = sorted(float(e.get("lat_med_ns", 0)) for e in got)
    med = meds[len(meds) // 2]
    return [_result("store", "throughput", "ops/s", ops * 1e9 / max(span, 1), ops, 0.0, params,
                    overlap=round(max(common, 0) / max(span, 1), 3), spread_kind="none"),
            _result("store", "latency", "ns", med, len(got), meds[-1] - meds[0], params, min=meds[0],
                    max=meds[-1], spread_kind="max-min of the clients' medians")]


def atoll_caps_commands(machine, options):
    """user/capxfer's `caps` benchmark on core 0 (holders on cores 1..H)."""
    return [f"run 0 capxfer bench {int(options.get('rounds', 11))} {int(options.get('max_holders', 0))}",
            "wait 1800000"]


def atoll_caps_adapt(event, options):
    """capxfer's caps_bench event -> the latency of a revoke or a delete of
    an object copied to H other cores, by protocol (holders: only the cores
    that hold copies are asked; broadcast: every core, the baseline). The
    event has the median, minimum and maximum: spread is max - min."""
    if event.get("event") != "caps_bench":
        return []
    op, proto = event.get("op"), event.get("protocol")
    vals = [event.get(k) for k in ("holders", "cores", "rounds", "median_ns", "min_ns", "max_ns", "failed")]
    if op not in ("revoke", "delete") or proto not in ("holders", "broadcast") or not all(_num(v) for v in vals):
        return [{"event": "error", "benchmark": "caps", "reason": f"malformed caps_bench event: {event}"}]
    holders, cores, rounds, med, lo, hi, failed = vals
    if failed or rounds < 1:
        return [{"event": "error", "benchmark": "caps",
                 "reason": f"{op} ({proto}, {holders} holders): {failed} of {rounds + failed} failed"}]
    params = {"protocol": proto, "holders": holders, "cores": cores}
    return [_result("caps", f"{op}_latency", "ns", med, int(rounds), max(0, hi - lo), params, min=lo, max=hi,
                    spread_kind="max-min")]


MEM_DESIGNS = ("central", "per-node", "cache")
MEM_SIZES = (4096, 2 << 20)


def mem_core_counts(smp):
    """1, 2, 4 ... cores, and every core."""
    ns, n = [], 1
    while n < smp:
        ns.append(n)
        n *= 2
    return ns + [smp]


def atoll_mem_commands(machine, options):
    """For each design, size and N: `mem bench` on cores 0..N-1 at once
    (servers/mem, docs/memory.md), then wait. The service is the same for
    every design: each run acts as that design's client (mem_use_design)."""
    rounds = int(options.get("rounds", 50))
    designs = str(options.get("designs", ",".join(MEM_DESIGNS))).split(",")
    ns = ([n for n in atoll_run.parse_cpus(str(options["n"])) if 1 <= n <= machine.smp] if options.get("n")
          else mem_core_counts(machine.smp))
    cmds = []
    for d in designs:
        for size in MEM_SIZES:
            for n in ns:
                cmds += [f"run {c} mem bench {d} {size} {rounds} {n}" for c in range(n)] + ["wait 600000"]
    return cmds


_mem_runs = {}


def atoll_mem_adapt(event, options):
    """mem_bench events -> per core: the median alloc+free latency; per
    (design, size, N) once all N cores reported: the throughput (the sum of
    each core's operations per second: the runs overlap but do not start
    together) and the share of allocations on the caller's own node."""
    if event.get("event") != "mem_bench":
        return []
    keys = ("core", "cores", "bytes", "rounds", "total_ns", "median_ns", "min_ns", "max_ns", "local", "failed")
    vals = [event.get(k) for k in keys]
    design = event.get("design")
    if design not in MEM_DESIGNS or not all(_num(v) for v in vals):
        return [{"event": "error", "benchmark": "mem", "reason": f"malformed mem_bench event: {event}"}]
    core, cores, size, rounds, total, med, lo, hi, local, failed = vals
    if failed or event.get("error") != "ERR_OK" or rounds < 1 or total <= 0:
        return [{"event": "error", "benchmark": "mem",
                 "reason": f"{design} {size} B on core {core} of {cores}: {failed} failed ({event.get('error')})"}]
    params = {"design": design, "bytes": size, "cores": cores}
    out = [_result("mem", "alloc_free_latency", "ns", med, int(rounds), max(0, hi - lo), dict(params, core=core),
                   min=lo, max=hi, spread_kind="max-min")]
    key = (design, size, cores)
    runs = _mem_runs.setdefault(key, [])
    runs.append((rounds * 1e9 / total, local, rounds))
    if len(runs) == cores:
        del _mem_runs[key]
        rates = [r for r, _, _ in runs]
        ops = sum(n for _, _, n in runs)
        out.append(_result("mem", "throughput", "ops/s", round(sum(rates)), len(runs),
                           round(max(rates) - min(rates)), params, spread_kind="max-min of a core's rate"))
        out.append(_result("mem", "local_share", "%", round(100.0 * sum(l for _, l, _ in runs) / ops, 2), ops, 0,
                           params))
    return out


BENCHMARKS: Dict[str, Benchmark] = {
    "boot": Benchmark("boot", "time from kernel entry to the first user program (Atoll: "
                      "to every core up)", {
                          "linux": Half("boot"),
                          "atoll": Half("", adapt=atoll_boot_adapt)}),
    "pingpong": Benchmark("pingpong", "core-to-core round trip, every pair of cores "
                          "(cache line, pipe, eventfd, futex)", {
                              "linux": Half("pingpong", _pingpong_options,
                                            {"samples": 3, "batch": 5, "pairs": "row"},
                                            cost=COST_PINGPONG_LINUX),
                              "atoll": Half("", lambda m, a: {"rounds": 1000 if a == "kvm" else 200},
                                            {"rounds": 20}, commands=atoll_pingpong_commands,
                                            adapt=atoll_pingpong_adapt,
                                            cost=COST_PINGPONG_ATOLL)}),
    "unmap": Benchmark("unmap", "unmap/TLB shootdown latency against the number of cores", {
        "linux": Half("unmap", _unmap_options, {"iters": 3, "warmup": 1}, cost=COST_UNMAP),
        "atoll": Half("threads", _atoll_unmap_options, {"iters": 3, "warmup": 1}, commands=atoll_unmap_commands,
                      adapt=atoll_unmap_adapt, cost=COST_UNMAP)}),
    "store": Benchmark("store", "key-value store throughput and latency against the number of cores, "
                       "for read fractions 100%, 95%, 50% (Linux: one process, a hash map behind a pthread "
                       "rwlock or mutex; Atoll: the replicated store per node, per core and on one core)", {
                           "linux": Half("store", _store_options, {"ops": 500, "samples": 1, "reads": "95"},
                                         cost=COST_STORE),
                           "atoll": Half("store", lambda m, a: {"ops": 200, "keys": 64}, {"ops": 20, "reads": "95"},
                                         cost=COST_STORE_ATOLL, commands=atoll_store_commands, adapt=atoll_store_adapt,
                                         services=os.path.join("servers", "store", "bench.services"),
                                         manifest=store_manifest, boots=store_boots)}),
    "local": Benchmark("local", "same-core round trip between two address spaces (Atoll: "
                       "LMP between two domains; Linux: pipe, eventfd, futex between two "
                       "processes)", {
                           "linux": Half("local", _local_options, {"samples": 3, "batch": 5},
                                         cost=COST_LOCAL),
                           "atoll": Half("lmpbench",
                                         lambda m, a: {"rounds": 300,
                                                       "cpus": "0-1" if m.smp > 1 else "0"},
                                         {"rounds": 50}, commands=atoll_local_commands,
                                         adapt=atoll_local_adapt)}),
    "lookup": Benchmark("lookup", "finding a service by name and calling it, by where its "
                        "instance runs: same core, same node, another node (Atoll's name "
                        "server on core 0)", {
                            "atoll": Half("echo", lambda m, a: {"rounds": 100}, {"rounds": 10},
                                          cost=COST_LOOKUP, commands=atoll_lookup_commands, adapt=atoll_lookup_adapt)}),
    "caps": Benchmark("caps", "revoke and delete of an object copied to H other cores, asking only "
                      "the holders or (the baseline) every core (monitor/capops.c)", {
                          "atoll": Half("capxfer", lambda m, a: {"rounds": 11, "max_holders": 0}, {"rounds": 3},
                                        commands=atoll_caps_commands, adapt=atoll_caps_adapt)}),
    "mem": Benchmark("mem", "alloc+free of a 4 KiB and a 2 MiB Frame from 1, 2, 4 ... N cores at once, "
                     "per design of the memory service (central, per-node, per-node with a per-core "
                     "cache; Linux: mmap, first touch, munmap bound to the local node): latency, "
                     "throughput, local share", {
                         "linux": Half("mem", lambda m, a: {"rounds": 50 if a == "kvm" else 20}, {"rounds": 5},
                                       cost=COST_MEM),
                         "atoll": Half("mem", lambda m, a: {"rounds": 50 if a == "kvm" else 20}, {"rounds": 5},
                                       cost=COST_MEM, commands=atoll_mem_commands, adapt=atoll_mem_adapt)}),
}


def register_half(benchmark, system, half):
    """Plug a system's half of a benchmark in (Atoll's, as they are written)."""
    BENCHMARKS[benchmark].halves[system] = half


# -- systems ---------------------------------------------------------------------------------
class System:
    name = ""
    missing_reason = "not written yet"

    def unavailable(self):
        """None, or why this system cannot run at all here."""
        return None

    def prepare(self, benchmarks):
        """Build what the runs need; raises an Exception with the reason."""

    def command(self, machine, benchmarks, options, cost=None):
        raise NotImplementedError

    def run(self, machine, benchmarks, options, timeout, log, echo=False, cost=None):
        """Boot and return an atoll_run.BootResult."""
        raise NotImplementedError


class LinuxSystem(System):
    name = "linux"
    missing_reason = "no Linux program for it"

    def __init__(self, kernel=None, append=""):
        self.kernel = kernel
        self.append = append
        self.initrd = None

    def unavailable(self):
        try:
            self.kernel = self.kernel or linux.find_kernel()
        except linux.LinuxError as e:
            return str(e)
        if not os.access(self.kernel, os.R_OK):
            return f"Linux kernel {self.kernel} not readable"
        return None

    def prepare(self, benchmarks):
        progs = linux.build_programs()
        self.initrd = linux.build_initramfs(progs)

    def command(self, machine, benchmarks, options, cost=None):
        progs = [BENCHMARKS[b].halves["linux"].program for b in benchmarks]
        opts = {BENCHMARKS[b].halves["linux"].program: options.get(b, {}) for b in benchmarks}
        append = linux.kernel_cmdline(progs, opts, self.append)
        initrd = self.initrd or os.path.join(linux.BUILD_DIR, "initramfs.cpio")
        return linux.linux_command(machine, self.kernel or "/boot/vmlinuz", initrd, append,
                                   cost=cost)

    def run(self, machine, benchmarks, options, timeout, log, echo=False, cost=None):
        cmd = self.command(machine, benchmarks, options, cost)
        if cost:
            atoll_costmodel.prepare(cost)
        return atoll_run.run_qemu(cmd, timeout=timeout, log=log, echo=echo)


class AtollSystem(System):
    """Atoll booted by tools/run's library with its user programs (the
    monitor, the shell, ...); each half types its shell commands and either
    prints `@bench` lines or has its `@atoll` events adapted."""
    name = "atoll"
    missing_reason = "Atoll's half is not written yet"

    def __init__(self, timescale="1"):
        self.timescale = timescale   # the kernel word timescale=K: a number, or "cpus" (K = the shape's CPUs)

    def kernel_words(self, machine):
        """Atoll's kernel command line for a point on `machine`: under the
        cost model one host thread runs every vCPU in turn, so a guest
        second holds about N times less work per CPU, and bounds written
        for cores that run at once expire; timescale=K stretches every
        guest clock K times (docs/costmodel.md)."""
        k = timescale_for(self.timescale, machine.smp)
        return f"timescale={k}" if k > 1 else ""

    def unavailable(self):
        k = os.path.join(REPO, atoll_run.DEFAULT_KERNEL)
        if not os.path.exists(k):
            return f"no Atoll kernel ({atoll_run.DEFAULT_KERNEL}): run make first"
        names = {os.path.basename(m.path) for m in atoll_run.user_modules()}
        if "monitor.elf" not in names or "shell.elf" not in names:
            return "Atoll's monitor and shell are not built (build/user/): run make first"
        return None

    def prepare(self, benchmarks):
        names = {os.path.basename(m.path) for m in atoll_run.user_modules()}
        for b in benchmarks:
            prog = BENCHMARKS[b].halves["atoll"].program
            if prog and prog + ".elf" not in names:
                raise FileNotFoundError(f"Atoll's {b} program build/user/{prog}.elf is not "
                                        "built, or not among tools/run's user programs")
        # The boot image is the same for every shape: build it once here, so
        # points booting in parallel (or Slurm nodes sharing build/) find it.
        atoll_run.image_for(self._machine(Machine()))

    @staticmethod
    def _services(b, options=None):
        """The manifest benchmark b boots with: the half's, or (with
        `options`) the one its options choose, say the store's placements
        (Half.manifest)."""
        h = BENCHMARKS[b].halves.get("atoll")
        if not h or not h.services:
            return ""
        if options is None or not h.manifest:
            return h.services
        return h.manifest(h.services, options.get(b, {}))

    def _boots(self, benchmarks, options):
        """[(benchmarks, options)], one per boot, in order: the benchmarks by
        the manifest they need (a manifest's services would disturb the
        other benchmarks' measurements), and a half that splits its options
        (Half.boots) once for each part, with that part's options."""
        groups = {}
        for b in benchmarks:
            h = BENCHMARKS[b].halves.get("atoll")
            parts = h.boots(options.get(b, {})) if h and h.boots else [options.get(b, {})]
            for i, part in enumerate(parts):
                key = self._services(b) if len(parts) == 1 else (b, i)
                bs, opts = groups.setdefault(key, ([], dict(options)))
                bs.append(b)
                opts[b] = part
        return list(groups.values())

    def _machine(self, machine, benchmarks=(), options=None):
        m = dataclasses.replace(machine)
        services = [self._services(b, options) for b in benchmarks if self._services(b)]
        m.modules = atoll_run.user_modules(services=os.path.join(REPO, services[0]) if services else None)
        m.cmdline = self.kernel_words(machine)
        return m

    def commands(self, machine, benchmarks, options):
        cmds = []
        for b in benchmarks:
            h = BENCHMARKS[b].halves["atoll"]
            if h.commands:
                cmds += h.commands(machine, options.get(b, {}))
        return cmds

    def command(self, machine, benchmarks, options, cost=None):
        """The tools/run command that reproduces the point (the shell
        commands are typed at the prompts)."""
        extra = ["--cost-model", "--cost-out", cost.out] if cost else []
        # Benchmarks needing another manifest or a machine to themselves
        # boot apart (_boots): this is the first boot's command.
        if benchmarks:
            benchmarks, options = self._boots(benchmarks, options)[0]
        if benchmarks and self._services(benchmarks[0]):
            extra += ["--services", self._services(benchmarks[0], options)]
        words = self.kernel_words(machine)
        if words:
            extra += ["--cmdline", words]
        return (["tools/run"] + run_options(machine) + extra + ["--"]
                + self.commands(machine, benchmarks, options))

    def run(self, machine, benchmarks, options, timeout, log, echo=False, cost=None):
        groups = self._boots(benchmarks, options)
        if len(groups) > 1:   # one boot per manifest or part, their consoles one after another
            # Each boot's plugin writes a file of its own (it starts its file
            # afresh: with one file only the last boot's regions were left,
            # and a sweep drew Atoll's boot and store alone), then they are
            # put together in cost.out.
            costs = [cost if cost is None or i == 0 else dataclasses.replace(cost, out=f"{cost.out}.{i}")
                     for i in range(len(groups))]
            rs = [self.run(machine, g, opts, timeout, log if i == 0 else f"{log}.{i}", echo, costs[i])
                  for i, (g, opts) in enumerate(groups)]
            if cost is not None:
                merge_cost_files(cost.out, [c.out for c in costs[1:]])
            bad = [r for r in rs if r.status != 0] or rs
            return dataclasses.replace(
                rs[0], status=bad[0].status, console="".join(r.console for r in rs),
                events=[e for r in rs for e in r.events], wall_s=sum(r.wall_s for r in rs),
                timed_out=any(r.timed_out for r in rs), malformed=[x for r in rs for x in r.malformed],
                message=bad[0].message, qemu_rc=bad[0].qemu_rc, stderr="".join(r.stderr for r in rs))
        m = self._machine(machine, benchmarks, options)
        r = atoll_run.boot(m, timeout=timeout, log=log, echo=echo, cost=cost,
                           shell_commands=self.commands(machine, benchmarks, options))
        extra = []
        for e in r.events:
            for b in benchmarks:
                h = BENCHMARKS[b].halves["atoll"]
                if h.adapt:
                    extra += h.adapt(e, options.get(b, {}))
        if extra:
            text = "".join(report.BENCH_PREFIX + json.dumps(x) + "\n" for x in extra)
            r = dataclasses.replace(r, console=r.console + text)
        return r


def merge_cost_files(into, parts):
    """Append each of `parts` (the plugin's JSON lines of one boot) to
    `into`, then remove it: the regions of every boot of a point in one
    file (a later boot's `config` and `total` lines follow its regions)."""
    with open(into, "a") as out:
        for p in parts:
            if os.path.exists(p):
                with open(p) as f:
                    text = f.read()
                out.write(text if not text or text.endswith("\n") else text + "\n")
                os.unlink(p)


def run_options(m):
    """tools/run options describing machine m."""
    args = ["--smp", str(m.smp)]
    if m.sockets is not None:
        args += ["--sockets", str(m.sockets), "--cores", str(m.cores),
                 "--threads", str(m.threads)]
    args += ["--mem", atoll_run.fmt_size(m.mem)]
    for n in m.numa:
        spec = []
        if n.cpus:
            spec.append("cpus=" + ",".join(n.cpu_ranges()))
        spec.append("mem=" + atoll_run.fmt_size(n.mem))
        args += ["--numa-node", ",".join(spec)]
    if len(m.numa) > 1 and m.dist and m.dist != atoll_run.default_dist(len(m.numa)):
        args += ["--numa-dist", ";".join(",".join(str(v) for v in row) for row in m.dist)]
    if m.machine != "q35":
        args += ["--machine", m.machine]
    args += ["--accel", m.accel]
    if m.x2apic != "auto":
        args += ["--x2apic", m.x2apic]
    return args


TIMESCALE_MAX = 1000   # the kernel's bound (cpudriver/boot_options.c): past it the word is ignored


def timescale_for(word, cpus):
    """K of `--timescale WORD` on a machine of `cpus` CPUs: WORD is a whole
    number of at least 1, or `cpus` (K = cpus). ConfigError otherwise."""
    w = str(word).strip()
    if w == "cpus":
        return max(1, min(int(cpus), TIMESCALE_MAX))
    if w.isdigit() and 1 <= int(w) <= TIMESCALE_MAX:
        return int(w)
    raise ConfigError(f"--timescale {word!r}: a whole number from 1 to {TIMESCALE_MAX}, or 'cpus'")


def make_systems(linux_kernel=None, linux_append="", atoll_timescale="1"):
    return {"linux": LinuxSystem(linux_kernel, linux_append), "atoll": AtollSystem(atoll_timescale)}


# -- machine shapes ------------------------------------------------------------------------------
@dataclasses.dataclass
class Shape:
    spec: str
    name: str
    machine: Machine
    error: Optional[str] = None     # why no accelerator can run it (its points fail)


def parse_shape(spec):
    """'8' (8 CPUs, no NUMA), '8n2' (8 CPUs on 2 NUMA nodes), either with
    ':MEM' ('32n4:2G'), or any of tools/run's machine options ('--smp 6
    --numa-node cpus=0-3,mem=1G --numa-node cpus=4-5,mem=512M'). Raises
    ConfigError for bad syntax; a shape QEMU cannot run (too many CPUs,
    memory that does not split into its nodes, ...) comes back with
    `error` set, so the sweep records its points as failed and goes on."""
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty machine shape")
    if spec.startswith("-"):
        m, _ = atoll_run.parse_args(shlex.split(spec))
        m.cmdline, m.modules, m.kernel = "", [], ""
    else:
        import re
        mm = re.fullmatch(r"(\d+)(?:n(\d+))?(?::(\w+))?", spec)
        if not mm:
            raise ConfigError(f"bad machine shape {spec!r}: use N, NnK, NnK:MEM (8, 8n2, "
                              "32n4:2G) or tools/run options (--smp 6 --numa 2 ...)")
        mem = atoll_run.parse_size(mm.group(3)) if mm.group(3) else 1 * GiB
        m = Machine(smp=int(mm.group(1)), numa=int(mm.group(2) or 0), mem=mem)
    # The accelerator is chosen per point (which re-validates, so TCG's limits
    # fail that point only); "kvm" checks the rest without needing /dev/kvm.
    m.accel = "kvm"
    try:
        m.validate()
    except ConfigError as e:
        k = m.numa if isinstance(m.numa, int) else len(m.numa)
        name = f"{m.smp}cpu" + (f"-{k}node" if k else "") + (
            "-" + atoll_run.fmt_size(m.mem) if m.mem != 1 * GiB else "")
        m.numa = []
        return Shape(spec=spec, name=name, machine=m, error=str(e))
    return Shape(spec=spec, name=shape_name(m), machine=m)


def shape_name(m):
    """A short, file-name-safe name: 8cpu, 8cpu-2node, 6cpu-3node-uneven-1536M-pc."""
    name = f"{m.smp}cpu"
    if m.sockets is not None and (m.sockets, m.threads) != (1, 1):
        name += f"-{m.sockets}s{m.cores}c{m.threads}t"
    if m.numa:
        name += f"-{len(m.numa)}node"
        even = atoll_run.even_numa(m.smp, len(m.numa), m.mem) if (
            len(m.numa) <= m.smp and m.mem % (len(m.numa) * atoll_run.NUMA_ALIGN) == 0) else None
        if [(n.cpus, n.mem) for n in m.numa] != [(n.cpus, n.mem) for n in (even or [])]:
            name += "-uneven"
        if m.dist != atoll_run.default_dist(len(m.numa)):
            name += "-dist"
    if m.mem != 1 * GiB:
        name += "-" + atoll_run.fmt_size(m.mem)
    if m.machine != "q35":
        name += "-" + m.machine
    return name


def parse_shapes(specs):
    """A list of shape strings (each may hold several short shapes separated
    by spaces or commas; option-style shapes are one string each) ->
    [Shape], names made unique."""
    shapes = []
    for s in specs:
        s = s.strip()
        if not s:
            continue
        parts = [s] if s.startswith("-") else s.replace(",", " ").split()
        shapes += [parse_shape(p) for p in parts]
    seen = {}
    for sh in shapes:
        if sh.name in seen:
            seen[sh.name] += 1
            sh.name += f"-{seen[sh.name]}"
        else:
            seen[sh.name] = 1
    return shapes


def machine_dict(m):
    return {
        "smp": m.smp, "sockets": m.sockets, "cores": m.cores, "threads": m.threads,
        "nodes": [{"cpus": ",".join(n.cpu_ranges()), "mem": atoll_run.fmt_size(n.mem)}
                  for n in m.numa],
        "dist": m.dist if m.numa else None,
        "mem": atoll_run.fmt_size(m.mem), "type": m.machine,
    }


# -- judging one point ---------------------------------------------------------------------------
def judge(benchmarks, console, status, message=None, timed_out=False):
    """What one boot produced for each requested benchmark.

    Returns (results, info): results are the valid result lines; info has
    "benchmarks": {name: (status, reason)} with status ok | partial |
    failed, "malformed": [(line, reason)], "guest": the start event,
    "point_reason": why the boot as a whole failed (or None)."""
    results, events, malformed = report.parse_console(console)
    errors, done = {}, {}
    guest, end = None, None
    for e in events:
        if e["event"] == "error":
            errors.setdefault(str(e.get("benchmark", "?")), []).append(
                str(e.get("reason", "error")))
        elif e["event"] == "done":
            done[e.get("benchmark")] = e.get("status")
        elif e["event"] == "start" and guest is None:
            guest = e
        elif e["event"] == "end":
            end = e
    point_reason = None
    if timed_out:
        point_reason = (f"{message or 'timed out'} (the guest hung or is too slow for this "
                        "timeout; raise --timeout or lower the iteration counts)")
    elif status == atoll_run.EXIT_NO_STATUS:
        point_reason = ("the guest stopped without reporting a status (a kernel panic, a reset "
                        "or a power-off)")
    elif status == atoll_run.EXIT_USAGE:
        point_reason = message or "QEMU failed to start"
    elif status not in (0, 1):
        point_reason = message or f"exit status {status}"
    elif status == 1 and not errors:
        point_reason = "the guest reported failure (exit status 1)"
    elif end is None and not results:
        point_reason = "the guest printed no @bench lines"
    if point_reason and not results and not events and console.strip():
        point_reason += "; no @bench line in the console"
    if malformed and not results:
        point_reason = (point_reason + "; " if point_reason else "") + (
            f"{len(malformed)} malformed @bench line(s)")
    per = {}
    for b in benchmarks:
        rs = [r for r in results if r["benchmark"] == b]
        why = "; ".join(errors.get(b, []))
        if why:
            per[b] = ("partial" if rs else "failed", why)
        elif rs and (done.get(b) == 0 or (b not in done and point_reason is None)):
            per[b] = ("ok", None)
        elif rs:
            per[b] = ("partial", point_reason or f"exit status {done.get(b)}")
        elif b in done and done[b] == 0:
            per[b] = ("failed", "finished without printing any result")
        else:
            per[b] = ("failed", point_reason or ("no results" + (
                f" ({len(malformed)} malformed @bench lines)" if malformed else "")))
    init_errors = errors.get("init")
    if init_errors:
        for b in benchmarks:
            if per[b][0] == "failed" and per[b][1] == "no results":
                per[b] = ("failed", "; ".join(init_errors))
    return results, {"benchmarks": per, "malformed": malformed, "guest": guest,
                     "point_reason": point_reason}


# -- the sweep -------------------------------------------------------------------------------------
def git_commit():
    try:
        c = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        if c.returncode != 0:
            return "unknown"
        commit = c.stdout.strip()
        d = subprocess.run(["git", "-C", REPO, "diff", "--quiet", "HEAD", "--"],
                           capture_output=True, timeout=30)
        return commit + ("-dirty" if d.returncode == 1 else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def qemu_version():
    try:
        r = subprocess.run([atoll_run.QEMU, "--version"], capture_output=True, text=True,
                           timeout=10)
        first = r.stdout.splitlines()[0] if r.stdout else ""
        parts = first.split()
        if "version" in parts:
            return "QEMU " + parts[parts.index("version") + 1]
        return first or "QEMU (unknown version)"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "QEMU (not found)"


def host_description():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    kvm = "usable" if atoll_run.kvm_usable() else "not usable"
    return (f"{platform.node()}, {os.cpu_count()} CPUs{', ' + model if model else ''}, "
            f"Linux {platform.release()}, /dev/kvm {kvm}")


def resolve_accels(accel):
    """'auto' | 'tcg' | 'kvm' | 'both' -> ([accels], [notes])."""
    kvm = atoll_run.kvm_usable()
    if accel == "auto":
        return (["kvm"] if kvm else ["tcg"]), []
    if accel == "both":
        if kvm:
            return ["tcg", "kvm"], []
        return ["tcg"], ["KVM skipped: /dev/kvm is not usable on this host"]
    if accel in ("tcg", "kvm"):
        return [accel], []
    raise ConfigError(f"--accel {accel!r}: use auto, tcg, kvm or both")


# The cost model runs every virtual CPU on one host thread and calls the
# plugin on every memory access: give it this many times TCG's timeout.
COST_TIMEOUT_FACTOR = 4


def default_timeout(machine, accel, cost_model=False):
    t = (60 + 5 * machine.smp) if accel == "kvm" else (180 + 25 * machine.smp)
    return t * COST_TIMEOUT_FACTOR if cost_model else t


@dataclasses.dataclass
class Sweep:
    shapes: List[Shape]
    systems: List[str]
    benchmarks: List[str]
    accels: List[str]
    out: str
    overrides: Dict[str, Dict[str, str]] = dataclasses.field(default_factory=dict)
    timeout: Optional[float] = None
    quick: bool = False
    echo: bool = False
    plots: bool = True
    notes: List[str] = dataclasses.field(default_factory=list)
    command: str = ""
    wait_quiet: float = 0.0     # seconds to wait for a quiet host before each boot
    busy_limit: float = 0.5     # "quiet": at most this many other runnable tasks
    jobs: int = 1               # points at once on this host (--jobs)
    parallel_timed: bool = False    # timed points may share the host (--parallel-timed)
    force: bool = False         # run points done earlier again (--force)
    # Count-only points: their figures are counts that do not depend on the
    # host's load (the cost model, --cost-model: docs/costmodel.md), so they
    # run in parallel freely, on one host CPU each. A point's `kind` records
    # it ("counts", else "timed").
    counts_only: bool = False
    extra: Dict[str, object] = dataclasses.field(default_factory=dict)  # more settings
    linux_kernel: Optional[str] = None
    linux_append: str = ""
    atoll_timescale: str = "1"                  # --timescale: Atoll's clocks stretched K times
    slurm: Optional["slurm.Options"] = None     # submit to Slurm instead of running here


def point_options(sweep, machine, accel, benchmarks, system="linux"):
    """{benchmark: options} for one system's point: the half's defaults,
    --cost-model's, --quick's, then --set's."""
    opts = {}
    for b in benchmarks:
        h = BENCHMARKS[b].halves[system]
        o = dict(h.options(machine, accel))
        if sweep.counts_only:
            o.update({k: v(machine) if callable(v) else v for k, v in h.cost.items()})
        if sweep.quick:
            o.update(h.quick)
            if b == "unmap":
                o["n"] = f"1,2,{machine.smp}" if machine.smp > 2 else "1,2"
        o.update(sweep.overrides.get(b, {}))
        opts[b] = o
    return opts


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def host_busy(samples=10, interval=0.1):
    """The mean number of runnable tasks on the host besides this one, from
    /proc/loadavg's instantaneous count, over samples*interval seconds."""
    vals = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                vals.append(max(0, int(f.read().split()[3].split("/")[0]) - 1))
        except (OSError, ValueError, IndexError):
            return None
        if i + 1 < samples:
            time.sleep(interval)
    return round(sum(vals) / len(vals), 2)


def wait_quiet(max_wait, limit):
    """Wait up to max_wait seconds until host_busy() <= limit (other work
    on the host skews TCG's numbers). Returns (busy, waited seconds)."""
    t0 = time.monotonic()
    busy = host_busy()
    said = False
    while busy is not None and busy > limit and time.monotonic() - t0 < max_wait:
        if not said:
            log(f"waiting for the host to quieten ({busy:g} other runnable tasks; limit "
                f"{limit:g}, at most {max_wait:g} s)")
            said = True
        time.sleep(2)
        busy = host_busy()
    return busy, round(time.monotonic() - t0, 1)


def sweep_notes(shapes, accels):
    """Caveats the report must carry about this host."""
    notes = []
    host = os.cpu_count() or 1
    big = max((s.machine.smp for s in shapes), default=0)
    if "tcg" in accels and big > host:
        notes.append(f"the host has {host} CPUs and TCG runs each virtual CPU as a host "
                     f"thread: whenever more than {host} virtual CPUs are busy at once (unmap "
                     f"with N > {host} keeps N spinning), they take turns on the host's CPUs "
                     "and the time measured is mostly the host's scheduling")
    return notes


COST_NOTE = ("the cost model counts what moves between virtual CPUs (cache-line transfers, "
             "IPIs) under single-threaded TCG with a plugin: its times are not comparable with "
             "plain TCG's (docs/costmodel.md)")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- points: describing, running, resuming --------------------------------------------------------
def point_resources(machine, accel, kind):
    """(host CPUs, MiB of host memory) one point needs: one CPU when
    emulation is single-threaded (count-only points: the cost model runs
    TCG single-threaded so its counts do not depend on the host), else one
    per virtual CPU (multi-threaded TCG and KVM run a host thread each); the
    guest's memory plus 512 MiB for QEMU and the runner, in 256 MiB steps."""
    cpus = 1 if kind == "counts" else max(1, machine.smp)
    mib = machine.mem // (1024 * 1024) + 512
    return cpus, -(-mib // 256) * 256


def describe_point(sweep, system, shape, accel, commit, run_id):
    """The descriptor of one point (points/ID/point.json, docs/bench.md):
    everything `tools/bench point` needs to run it on any host."""
    have = [b for b in sweep.benchmarks if system.name in BENCHMARKS[b].halves]
    pid = points.point_id(system.name, shape.name, accel)
    machine = dataclasses.replace(shape.machine, accel=accel)
    kind = "counts" if sweep.counts_only else "timed"
    desc = {"schema": SCHEMA, "id": pid, "system": system.name, "shape": shape.name,
            "spec": shape.spec, "machine": machine_dict(shape.machine),
            "run_options": None if shape.error else run_options(machine),
            "shape_error": shape.error, "accel": accel, "benchmarks": list(sweep.benchmarks),
            "have": have, "options": {}, "timeout": None, "kind": kind,
            "linux": ({"kernel": sweep.linux_kernel, "append": sweep.linux_append}
                      if system.name == "linux" else None),
            "atoll": ({"timescale": sweep.atoll_timescale,
                       "k": None if shape.error else timescale_for(sweep.atoll_timescale, shape.machine.smp)}
                      if system.name == "atoll" else None),
            "extra": dict(sweep.extra), "commit": commit, "run": run_id}
    if have and not shape.error:
        desc["options"] = point_options(sweep, machine, accel, have, system.name)
        desc["timeout"] = sweep.timeout or default_timeout(machine, accel, kind == "counts")
        try:
            desc["command"] = shlex.join(system.command(
                machine, have, desc["options"], **point_cost(sweep.out, pid, kind)))
        except Exception as e:   # recorded; the point fails with it when it runs
            desc["command"], desc["command_error"] = None, str(e)
    desc["cpus"], desc["mem_mb"] = point_resources(machine, accel, kind)
    desc["settings"] = points.settings_key(desc)
    desc["bench_command"] = shlex.join(["tools/bench", "point",
                                        points.point_dir(sweep.out, pid)])
    return desc


def point_cost(out, pid, kind):
    """{"cost": CostModel} for a count-only point (the plugin writes into the
    point's folder), else {} (systems that predate the cost model take no
    `cost`)."""
    if kind != "counts":
        return {}
    path = os.path.join(os.path.abspath(points.point_dir(out, pid)), points.COST_RAW)
    return {"cost": atoll_costmodel.CostModel(out=path)}


def cost_records(base, cost):
    """The plugin's regions of one point, each with where it came from (the
    results folder's costmodel.jsonl, docs/bench.md)."""
    if not os.path.exists(cost.out):
        return []
    counts = atoll_costmodel.load(cost.out)
    return [dict(base, **{k: v for k, v in r.items() if k != "type"}) for r in counts.regions]


def plan_points(sweep, systems, commit, run_id):
    """Every point of the sweep, in sweep order (shape, accelerator, system)."""
    for s in sweep.systems:
        systems[s].unavailable()      # finds Linux's kernel, for the recorded commands
    return [describe_point(sweep, systems[s], shape, accel, commit, run_id)
            for shape in sweep.shapes for accel in sweep.accels for s in sweep.systems]


@dataclasses.dataclass
class Runtime:
    """What a point's records say about the process that ran it."""
    commit: str
    source: str
    qemu: str
    host: str
    echo: bool = False
    wait_quiet: float = 0.0
    busy_limit: float = 0.5

    @classmethod
    def here(cls, **kw):
        commit = git_commit()
        return cls(commit=commit, source=points.source_id(REPO, commit), qemu=qemu_version(),
                   host=host_description(), **kw)


def machine_of(desc):
    """The Machine a descriptor describes (from its tools/run options)."""
    m = parse_shape(shlex.join(desc["run_options"])).machine
    m.accel = desc["accel"]
    return m


def prepare_point(desc, system, prepared):
    """Build what the point's system needs, once per (system, halves); None
    or the reason it cannot."""
    key = (system.name, tuple(desc["have"]))
    if key not in prepared:
        try:
            system.prepare(desc["have"])
            prepared[key] = None
        except Exception as e:   # a build failure: the reason, for every point
            prepared[key] = f"preparing {system.name} failed: {e}"
    return prepared[key]


def attempt_point(out, desc, system, prepared, rt, logname):
    """Boot the point once. Returns (results, status lines, permanent,
    booted): permanent when retrying cannot help (a bad shape, a system
    unavailable here, a build failure); booted when QEMU ran."""
    base = {"schema": SCHEMA, "system": desc["system"], "shape": desc["shape"],
            "machine": desc["machine"], "accel": desc["accel"], "commit": rt.commit,
            "run": desc.get("run"), "point": desc["id"], "kind": desc.get("kind", "timed")}
    have = desc["have"]
    lines = [dict(base, benchmark=b, status="missing", reason=system.missing_reason)
             for b in desc["benchmarks"] if b not in have]
    tag = f"{desc['system']} {desc['shape']} {desc['accel']}"
    if not have:
        log(f"{tag}: no halves for {', '.join(desc['benchmarks'])} (missing)")
        return [], lines, True, False

    def fail(reason, permanent=True):
        log(f"{tag}: FAILED: {reason.splitlines()[0]}")
        return [], lines + [dict(base, benchmark=b, status="failed", reason=reason)
                            for b in have], permanent, False

    if desc.get("shape_error"):
        return fail(f"invalid machine: {desc['shape_error']}")
    reason = system.unavailable()
    if reason:
        return fail(reason)
    if desc["accel"] == "kvm" and not atoll_run.kvm_usable():
        return fail("KVM: /dev/kvm cannot be opened read-write here")
    try:
        machine = machine_of(desc)
        machine.validate()
    except ConfigError as e:
        return fail(f"invalid machine: {e}")
    reason = prepare_point(desc, system, prepared)
    if reason:
        return fail(reason)
    opts = desc["options"]
    with_cost = point_cost(out, desc["id"], desc.get("kind", "timed"))
    cost = with_cost.get("cost")
    try:
        cmd = system.command(machine, have, opts, **with_cost)
    except Exception as e:
        return fail(f"cannot build the command: {e}")
    timeout = desc["timeout"] or default_timeout(machine, desc["accel"], cost is not None)
    busy, waited = (wait_quiet(rt.wait_quiet, rt.busy_limit) if rt.wait_quiet
                    else (host_busy(), 0.0))
    log(f"{tag}: booting ({', '.join(have)}; timeout {timeout:g} s)")
    load0 = _loadavg()
    t0 = time.monotonic()
    try:
        r = system.run(machine, have, opts, timeout, os.path.join(out, logname), echo=rt.echo,
                       **with_cost)
    except ConfigError as e:
        return fail(f"invalid machine: {e}")
    regions = cost_records(base, cost) if cost else []
    if cost:
        points.write_jsonl_atomic(os.path.join(points.point_dir(out, desc["id"]),
                                               points.COST_RECORDS), regions)
    results, info = judge(have, r.console, r.status, r.message, r.timed_out)
    wall = time.monotonic() - t0
    guest = info["guest"] or {}
    extra = {"guest_version": guest["kernel"]} if guest.get("kernel") else {}
    host = socket.gethostname()
    results = [dict(base, **res, qemu=f"{rt.qemu}, {machine.machine}, -cpu "
                    f"{atoll_run.cpu_model(machine)}", host=host, **extra) for res in results]
    notes = []
    if isinstance(guest.get("cpus"), int) and guest["cpus"] != machine.smp:
        notes.append(f"the guest saw {guest['cpus']} CPUs, the machine has {machine.smp}")
    if isinstance(guest.get("nodes"), int) and len(machine.numa) > 1 and \
            guest["nodes"] != len(machine.numa):
        notes.append(f"the guest saw {guest['nodes']} NUMA nodes, the machine has "
                     f"{len(machine.numa)}")
    tail = report.console_tail(r.console)
    if not tail and r.stderr:
        tail = report.console_tail(r.stderr)
    for b in have:
        st, why = info["benchmarks"][b]
        n = sum(1 for x in results if x["benchmark"] == b)
        p = dict(base, benchmark=b, status=st, reason=why, results=n, wall_s=round(wall, 1),
                 options=opts.get(b, {}), log=logname, command=shlex.join(cmd),
                 exit_status=r.status, host_load=[load0, _loadavg()], host_busy=busy)
        if waited:
            p["waited_s"] = waited
        if cost:
            p["cost_log"] = os.path.relpath(cost.out, os.path.abspath(out))
            p["cost_regions"] = sum(1 for x in regions if x["region"] == b)
        if notes:
            p["notes"] = notes
        if info["malformed"]:
            p["malformed"] = [ln for ln, _ in info["malformed"][:10]]
            p["malformed_count"] = len(info["malformed"])
        if st != "ok":
            p["console_tail"] = tail
        lines.append(p)
    summary = ", ".join(f"{b} {info['benchmarks'][b][0]}" for b in have)
    log(f"{tag}: {summary}; {len(results)} results in {wall:.0f} s"
        + (f"; {len(info['malformed'])} malformed lines" if info["malformed"] else "")
        + ("; " + "; ".join(notes) if notes else ""))
    for b in have:
        st, why = info["benchmarks"][b]
        if st != "ok":
            log(f"  {b}: {why}")
    return results, lines, False, True


# Set when the user interrupts a sweep: a point whose boot was killed by the
# same Ctrl-C is neither retried nor recorded (it stays "not run").
STOPPING = threading.Event()


def run_point(out, desc, systems, prepared, rt):
    """Run one point in its folder, retrying once when it fails for a reason
    that may pass (a hang, a crash, a host too busy), and write its outcome
    (done.json last). Returns the point's status."""
    pid = desc["id"]
    system = systems[desc["system"]]
    points.clear_outcome(out, pid)
    pdir = points.point_dir(out, pid)
    os.makedirs(pdir, exist_ok=True)
    logname = os.path.relpath(os.path.join(pdir, points.CONSOLE), out)
    started = time.time()
    results, lines, permanent, booted = attempt_point(out, desc, system, prepared, rt, logname)
    status = points.point_status(ln["status"] for ln in lines)
    attempts, first = 1, None
    if STOPPING.is_set():
        return "interrupted"
    if status in ("failed", "partial") and not permanent:
        first = {"status": status, "reason": next(
            (ln.get("reason") for ln in lines if ln["status"] in ("failed", "partial")), None)}
        log(f"{desc['system']} {desc['shape']} {desc['accel']}: {status}; retrying once")
        if os.path.exists(os.path.join(out, logname)):
            os.replace(os.path.join(out, logname), os.path.join(pdir, "console-attempt1.log"))
        results, lines, permanent, b2 = attempt_point(out, desc, system, prepared, rt, logname)
        if STOPPING.is_set():
            return "interrupted"
        booted = booted or b2
        status = points.point_status(ln["status"] for ln in lines)
        attempts = 2
    ended = time.time()
    host = points.host_record(rt.host)
    for ln in lines:
        ln.update(host=host["name"], attempts=attempts)
        if first:
            ln["first_attempt"] = first
    done = {"schema": SCHEMA, "id": pid, "status": status, "commit": rt.commit,
            "source": rt.source, "settings": desc["settings"], "kind": desc.get("kind", "timed"),
            "host": host, "started": round(started, 3), "ended": round(ended, 3),
            "wall_s": round(ended - started, 1), "attempts": attempts, "booted": booted,
            "results": len(results)}
    if first:
        done["first_attempt"] = first
    points.write_outcome(out, pid, results, lines, done)
    return status


def safe_run_point(out, desc, systems, prepared, rt):
    """run_point, but a bug in tools/bench fails this point, not the sweep
    (a sweep may have hours of points behind it)."""
    try:
        return run_point(out, desc, systems, prepared, rt)
    except Exception as e:
        import traceback
        log(f"{desc['id']}: internal error: {e!r}\n{traceback.format_exc()}")
        reason = f"tools/bench internal error: {e!r}"
        base = {"schema": SCHEMA, "system": desc["system"], "shape": desc["shape"],
                "machine": desc.get("machine"), "accel": desc["accel"], "commit": rt.commit,
                "run": desc.get("run"), "point": desc["id"], "kind": desc.get("kind", "timed"),
                "host": socket.gethostname(), "attempts": 1}
        lines = [dict(base, benchmark=b, status="failed", reason=reason)
                 for b in desc.get("have") or desc.get("benchmarks") or ["?"]]
        now = time.time()
        points.write_outcome(out, desc["id"], [], lines, {
            "schema": SCHEMA, "id": desc["id"], "status": "failed", "commit": rt.commit,
            "source": rt.source, "settings": desc.get("settings"),
            "kind": desc.get("kind", "timed"), "host": points.host_record(rt.host),
            "started": now, "ended": now, "attempts": 1, "booted": False, "results": 0})
        return "failed"


def run_point_command(argv):
    """`tools/bench point DIR`: run the point described by DIR/point.json
    (what a Slurm task runs). Exit 0 when it is ok, 1 otherwise."""
    ap = argparse.ArgumentParser(prog="bench point",
                                 description="Run one point of a sweep from its folder "
                                 "(points/ID under the results folder).")
    ap.add_argument("dir", help="the point's folder, holding point.json")
    ap.add_argument("--verbose", action="store_true", help="stream the guest's console")
    ns = ap.parse_args(argv)
    desc = points.read_json(os.path.join(ns.dir, points.DESCRIPTOR))
    if not desc or not isinstance(desc.get("id"), str):
        print(f"bench: error: no point descriptor {ns.dir}/{points.DESCRIPTOR}", file=sys.stderr)
        return 2
    out = os.path.dirname(os.path.dirname(os.path.abspath(ns.dir)))
    lx = desc.get("linux") or {}
    systems = make_systems(lx.get("kernel"), lx.get("append", ""),
                           (desc.get("atoll") or {}).get("timescale", "1"))
    if desc.get("system") not in systems:
        print(f"bench: error: unknown system {desc.get('system')!r}", file=sys.stderr)
        return 2
    run = points.read_json(os.path.join(out, "run.json")) or {}
    rt = Runtime.here(echo=ns.verbose, wait_quiet=float(run.get("wait_quiet") or 0),
                      busy_limit=float(run.get("busy_limit") or 0.5))
    status = safe_run_point(out, desc, systems, {}, rt)
    return 0 if status in ("ok", "missing") else 1


# -- the sweep -------------------------------------------------------------------------------------
def _write_run(out, run):
    os.makedirs(out, exist_ok=True)
    points.write_json_atomic(os.path.join(out, "run.json"), run)


def run_sweep(sweep, systems=None):
    """Plan the points, skip those done earlier with the same code and
    settings, run the rest (here, up to sweep.jobs at once, or as a Slurm
    job array), merge every point folder and write the plots and the report.
    Returns the number of points not ok (failed, partial, not run)."""
    systems = systems or make_systems(sweep.linux_kernel, sweep.linux_append, sweep.atoll_timescale)
    rt = Runtime.here(echo=sweep.echo, wait_quiet=sweep.wait_quiet,
                      busy_limit=sweep.busy_limit)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    descs = plan_points(sweep, systems, rt.commit, run_id)
    notes = list(sweep.notes)
    if sweep.jobs > 1 and not sweep.slurm:
        notes.append(f"--jobs {sweep.jobs}: " + (
            "timed points ran up to that many at once (--parallel-timed): their figures "
            "include each other's load" if sweep.parallel_timed else
            "count-only points ran in parallel; timed points one at a time"))
    run = {"schema": SCHEMA, "command": sweep.command, "commit": rt.commit, "date": run_id,
           "host": rt.host, "qemu": rt.qemu, "accels": sweep.accels, "systems": sweep.systems,
           "benchmarks": sweep.benchmarks, "notes": notes,
           "shapes": [{"name": s.name, "spec": s.spec, "machine": machine_dict(s.machine)}
                      for s in sweep.shapes],
           "points": [d["id"] for d in descs], "jobs": sweep.jobs,
           "parallel_timed": sweep.parallel_timed, "wait_quiet": sweep.wait_quiet,
           "busy_limit": sweep.busy_limit,
           "cost_model": ({"accel": atoll_costmodel.ACCEL, "plugin": atoll_costmodel.PLUGIN}
                          if sweep.counts_only else None)}
    todo = []
    for d in descs:
        if not sweep.force and points.is_done(sweep.out, d, rt.source):
            log(f"{d['system']} {d['shape']} {d['accel']}: done earlier with this commit and "
                "these settings: skipped (--force runs it again)")
            continue
        points.clear_outcome(sweep.out, d["id"])
        points.write_descriptor(sweep.out, d)
        todo.append(d)
    if len(todo) < len(descs):
        run["notes"].append(f"{len(descs) - len(todo)} of {len(descs)} points were done "
                            "earlier with the same commit and settings and were not run again")
    _write_run(sweep.out, run)
    if sweep.slurm:
        return slurm_sweep(sweep, run, todo, systems, rt)
    prepared = {}
    for d in todo:     # builds happen here, once, before points run in parallel
        if d["have"] and not d.get("shape_error") and not systems[d["system"]].unavailable():
            prepare_point(d, systems[d["system"]], prepared)
    wall0 = time.monotonic()

    def interrupted():
        STOPPING.set()
        log("interrupted: writing the report of what ran")
        run["notes"].append("the sweep was interrupted; later points did not run")
        _write_run(sweep.out, run)

    try:
        points.schedule(todo, sweep.jobs, sweep.parallel_timed,
                        lambda d: safe_run_point(sweep.out, d, systems, prepared, rt),
                        on_interrupt=interrupted)
    except KeyboardInterrupt:
        pass
    finally:
        STOPPING.clear()
    log(f"{len(todo)} points ran in {time.monotonic() - wall0:.0f} s "
        f"(--jobs {sweep.jobs})")
    return collect(sweep.out, plots=sweep.plots)


def slurm_sweep(sweep, run, todo, systems, rt):
    """Submit the points to Slurm, wait (unless --no-wait), then merge."""
    s = sweep.slurm
    prepared = {}
    # Points that boot nothing (no halves, an invalid shape) are settled here.
    for d in [d for d in todo if not d["have"] or d.get("shape_error")]:
        safe_run_point(sweep.out, d, systems, prepared, rt)
    todo = [d for d in todo if d["have"] and not d.get("shape_error")]
    for d in todo:   # build here, into the shared build/, rather than on every node
        if not systems[d["system"]].unavailable():
            why = prepare_point(d, systems[d["system"]], prepared)
            if why:
                log(f"{d['id']}: {why} (its task will fail the same way)")
    try:
        jobs = slurm.submit(todo, sweep.out, REPO, s)
    except slurm.SlurmError as e:
        log(f"Slurm: {e}")
        return 1
    run["slurm"] = {"jobs": jobs, "partition": s.partition, "constraint": s.constraint,
                    "options": s.options}
    _write_run(sweep.out, run)
    ids = [j["job"] for j in jobs]
    if not jobs:
        log("nothing to submit")
        return collect(sweep.out, plots=sweep.plots)
    for j in jobs:
        log(f"Slurm job {j['job']}: {len(j['points'])} points, {j['cpus']} CPUs and "
            f"{j['mem_mb']} MiB each ({os.path.relpath(j['script'])})")
    if s.no_wait:
        print(f"Submitted Slurm job(s) {', '.join(ids)} ({len(todo)} points).\n"
              f"Follow them:   squeue -j {','.join(ids)}\n"
              f"When they are done, write the report:\n"
              f"  tools/bench report --out {shlex.quote(sweep.out)}")
        return 0
    try:
        slurm.wait(ids, poll=s.poll, progress=lambda: _progress(sweep.out, todo),
                   max_wait=s.max_wait)
    except slurm.SlurmError as e:
        log(f"Slurm: {e}; collecting what finished")
    except KeyboardInterrupt:
        log(f"stopped waiting; the jobs go on (squeue -j {','.join(ids)}); "
            f"collect later with tools/bench report --out {sweep.out}")
    return collect(sweep.out, plots=sweep.plots)


def _progress(out, todo):
    n = sum(1 for d in todo if os.path.exists(os.path.join(points.point_dir(out, d["id"]),
                                                           points.DONE)))
    return f"{n} of {len(todo)} points done"


def collect(out, plots=True):
    """Merge whatever point folders exist (any host, any run) into
    results.jsonl and points.jsonl, then write the plots and the report.
    Returns the number of planned or present points that are not ok
    (failed, partial, not run). A folder from before points had folders
    (no points/) is reported as it is."""
    bad = 0
    if os.path.isdir(os.path.join(out, points.POINTS_DIR)):
        run = points.read_json(os.path.join(out, "run.json")) or {}
        summary = points.merge(out, planned=run.get("points") or [],
                               slurm_jobs=(run.get("slurm") or {}).get("jobs") or [])
        bad = sum(1 for st in summary["statuses"].values() if st not in ("ok", "missing"))
        if summary["not_run"]:
            log(f"{len(summary['not_run'])} points have no result: "
                f"{', '.join(summary['not_run'][:8])}" + (" ..." if len(
                    summary["not_run"]) > 8 else ""))
    write_outputs(out, plots)
    return bad


def write_outputs(out, plots=True):
    """(Re)draw the plots and write report.md from the files in out."""
    data = report.Data.load(out)
    plot_list, problem = [], None
    if plots:
        plot_dir = os.path.join(out, "plots")
        if os.path.isdir(plot_dir):
            for f in os.listdir(plot_dir):
                if f.endswith(".png"):
                    os.unlink(os.path.join(plot_dir, f))
        plot_list, problem = report.plot_all(data, plot_dir)
    else:
        problem = "--no-plots"
    path = report.write_report(data, out, plot_list, problem)
    log(f"report: {os.path.relpath(path)} ({len(data.records)} results, "
        f"{len(plot_list)} plots)")
    return path


# -- command line ----------------------------------------------------------------------------------
def _parser():
    p = argparse.ArgumentParser(
        prog="bench", description="Benchmark sweep over machine shapes, Atoll and Linux side "
        "by side. See docs/bench.md.",
        epilog="Other commands: 'bench report [--out DIR]' merges the point folders and "
               "redraws the plots and the report; 'bench point DIR' runs one point from its "
               "folder; 'bench list' shows benchmarks and systems.")
    a = p.add_argument
    a("--shapes", action="append", default=[], metavar="LIST",
      help=f"machine shapes, space or comma separated: N, NnK, NnK:MEM (default "
           f"'{DEFAULT_SHAPES}'); repeatable")
    a("--shape", action="append", default=[], metavar="OPTIONS",
      help="one shape as tools/run options, e.g. '--smp 6 --numa-node cpus=0-3,mem=1G "
           "--numa-node cpus=4-5,mem=512M --mem 1536M' (repeatable)")
    a("--systems", default="linux,atoll", help="comma-separated systems (default linux,atoll)")
    a("--benchmarks", default=",".join(BENCHMARKS),
      help=f"comma-separated benchmarks (default {','.join(BENCHMARKS)})")
    a("--accel", default="tcg", help="tcg (default), kvm, auto (KVM if usable, else TCG) or both")
    a("--out", default=DEFAULT_OUT, help=f"results folder (default {DEFAULT_OUT})")
    a("--timeout", type=float, metavar="S",
      help="seconds per boot (default TCG 180+25*CPUs, KVM 60+5*CPUs)")
    a("--set", action="append", default=[], metavar="BENCH.KEY=VALUE",
      help="a benchmark option, e.g. pingpong.samples=20 (repeatable)")
    a("--quick", action="store_true",
      help="tiny iteration counts and pingpong pairs=row: a smoke test")
    a("--linux-kernel", metavar="PATH", help="Linux kernel (default the newest /boot/vmlinuz-*)")
    a("--linux-append", default="", metavar="WORDS", help="more Linux command line words")
    a("--dry-run", action="store_true", help="print each point's QEMU command; run nothing")
    a("--wait-quiet", type=float, default=0.0, metavar="S",
      help="before each boot wait up to S seconds until the host is quiet (at most "
           "--busy-limit other runnable tasks); for shared machines")
    a("--busy-limit", type=float, default=0.5, metavar="N",
      help="what --wait-quiet calls quiet (default 0.5 runnable tasks on average)")
    a("--no-plots", action="store_true", help="write the report without plots")
    a("--verbose", action="store_true", help="stream the guests' consoles")
    a("--timescale", metavar="K|cpus",
      help="Atoll's kernel word timescale=K on every Atoll point: its clocks run K times "
           "slower, so that its bounds hold when one host thread runs every vCPU in turn "
           "(the cost model); 'cpus': K = the shape's CPU count (default: cpus with "
           "--cost-model, else 1; docs/costmodel.md)")
    a("--cost-model", action="store_true",
      help="count cache-line transfers, IPIs and instructions per operation with the cost "
           "model plugin (single-threaded TCG, count-only points; docs/costmodel.md)")
    g = p.add_argument_group("points: resuming and running in parallel")
    g.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run up to N points at once on this host (default 1); timed points "
                        "still run one at a time unless --parallel-timed")
    g.add_argument("--parallel-timed", action="store_true",
                   help="let timed points share the host with other points (the report "
                        "says which did)")
    g.add_argument("--force", action="store_true",
                   help="run every point, also those done earlier with the same commit and "
                        "settings")
    g = p.add_argument_group("Slurm")
    g.add_argument("--slurm", action="store_true",
                   help="submit the points as Slurm job arrays (sbatch --array) and wait; "
                        "the results folder and the repository must be on a folder every "
                        "node shares")
    g.add_argument("--slurm-partition", metavar="NAME", help="sbatch --partition")
    g.add_argument("--slurm-constraint", metavar="FEATURES",
                   help="sbatch --constraint, e.g. a feature your cluster gives nodes with KVM")
    g.add_argument("--slurm-opt", action="append", default=[], metavar="OPTION",
                   help="one more sbatch option, e.g. --slurm-opt=--time=2:00:00 "
                        "(repeatable)")
    g.add_argument("--slurm-max-cpus", type=int, metavar="N",
                   help="ask for at most N CPUs per point (default: one per virtual CPU; "
                        "count-only points ask for one)")
    g.add_argument("--no-wait", action="store_true",
                   help="with --slurm: submit, print how to collect the results, and return")
    g.add_argument("--slurm-max-wait", type=float, metavar="S",
                   help="stop waiting for the jobs after S seconds and report what finished "
                        "(the jobs go on; collect the rest with 'bench report')")
    g.add_argument("--slurm-poll", type=float, default=10.0, metavar="S",
                   help=argparse.SUPPRESS)
    return p


def parse_overrides(items):
    out = {}
    for it in items:
        if "=" not in it or "." not in it.split("=", 1)[0]:
            raise ConfigError(f"--set {it!r}: use BENCH.KEY=VALUE (e.g. pingpong.samples=20)")
        k, v = it.split("=", 1)
        b, key = k.split(".", 1)
        if b not in BENCHMARKS:
            raise ConfigError(f"--set {it!r}: unknown benchmark {b!r}")
        out.setdefault(b, {})[key] = v
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd_words = ["tools/bench"] + argv
    if argv and argv[0] == "list":
        return cmd_list()
    if argv and argv[0] == "report":
        ap = argparse.ArgumentParser(prog="bench report",
                                     description="Redraw plots and report.md from the JSON lines.")
        ap.add_argument("--out", default=DEFAULT_OUT)
        ap.add_argument("--no-plots", action="store_true")
        ns = ap.parse_args(argv[1:])
        if not os.path.isdir(ns.out):
            print(f"bench: error: no results folder {ns.out}", file=sys.stderr)
            return 2
        bad = collect(ns.out, plots=not ns.no_plots)
        return 1 if bad else 0
    if argv and argv[0] == "point":
        return run_point_command(argv[1:])
    if argv and argv[0] == "run":
        argv = argv[1:]
    ns = _parser().parse_args(argv)
    try:
        shapes = parse_shapes(ns.shapes or ([] if ns.shape else [DEFAULT_SHAPES]))
        shapes += parse_shapes(ns.shape)
        systems = [s.strip() for s in ns.systems.split(",") if s.strip()]
        if ns.timescale is None:
            ns.timescale = "cpus" if ns.cost_model else "1"
        timescale_for(ns.timescale, 1)   # a bad word is refused before anything runs
        if not ns.cost_model and ns.timescale != "1":
            # Atoll's times are its own clock's: K times too short beside Linux's.
            raise ConfigError("--timescale goes with --cost-model (a timed point's figures would be "
                              "in a clock K times slower than Linux's)")
        all_systems = make_systems(ns.linux_kernel, ns.linux_append, ns.timescale)
        for s in systems:
            if s not in all_systems:
                raise ConfigError(f"unknown system {s!r}: use {', '.join(all_systems)}")
        benches = [b.strip() for b in ns.benchmarks.split(",") if b.strip()]
        for b in benches:
            if b not in BENCHMARKS:
                raise ConfigError(f"unknown benchmark {b!r}: use {', '.join(BENCHMARKS)}")
        if ns.cost_model:
            if ns.accel == "kvm":
                raise ConfigError("--cost-model is a TCG plugin: it cannot run with --accel kvm")
            accels, notes = ["tcg"], [COST_NOTE]
            if ns.accel == "both":
                notes.append("--cost-model: TCG only (--accel both ignored)")
        else:
            accels, notes = resolve_accels(ns.accel)
        if not ns.slurm and not ns.cost_model:   # on a cluster each task gets a CPU per vCPU
            notes += sweep_notes(shapes, accels)
        elif ns.slurm_max_cpus and "tcg" in accels and any(
                s.machine.smp > ns.slurm_max_cpus for s in shapes):
            notes.append(f"--slurm-max-cpus {ns.slurm_max_cpus}: points with more virtual "
                         "CPUs ran on fewer host CPUs, so under TCG their times are partly "
                         "the host's scheduling")
        overrides = parse_overrides(ns.set)
    except ConfigError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    if not shapes or not systems or not benches:
        print("bench: error: nothing to run", file=sys.stderr)
        return 2
    if ns.jobs < 1:
        print("bench: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    if ns.no_wait and not ns.slurm:
        print("bench: error: --no-wait goes with --slurm", file=sys.stderr)
        return 2
    slurm_opts = None
    if ns.slurm:
        slurm_opts = slurm.Options(partition=ns.slurm_partition,
                                   constraint=ns.slurm_constraint, options=ns.slurm_opt,
                                   max_cpus=ns.slurm_max_cpus, no_wait=ns.no_wait,
                                   poll=ns.slurm_poll, max_wait=ns.slurm_max_wait)
    sweep = Sweep(shapes=shapes, systems=systems, benchmarks=benches, accels=accels,
                  out=ns.out, overrides=overrides, timeout=ns.timeout, quick=ns.quick,
                  echo=ns.verbose, plots=not ns.no_plots, notes=notes,
                  command=shlex.join(cmd_words), wait_quiet=ns.wait_quiet,
                  busy_limit=ns.busy_limit, jobs=ns.jobs, parallel_timed=ns.parallel_timed,
                  force=ns.force, linux_kernel=ns.linux_kernel, linux_append=ns.linux_append,
                  atoll_timescale=ns.timescale,
                  slurm=slurm_opts, counts_only=ns.cost_model)
    if ns.dry_run:
        return dry_run(sweep, all_systems)
    for n in notes:
        log(n)
    bad = run_sweep(sweep, all_systems)
    return 1 if bad else 0


def dry_run(sweep, systems):
    """Print every point: its system command and the command that runs it alone."""
    commit = git_commit()
    for d in plan_points(sweep, systems, commit, ""):
        tag = f"# {d['system']} {d['shape']} {d['accel']}"
        if not d["have"]:
            print(f"{tag}: no halves ({systems[d['system']].missing_reason})")
            continue
        if d.get("shape_error"):
            print(f"{tag}: invalid machine: {d['shape_error']}")
            continue
        if d.get("command_error"):
            print(f"{tag}: cannot build the command: {d['command_error']}")
            continue
        why = systems[d["system"]].unavailable()
        print(f"{tag} ({d['kind']}: {d['cpus']} CPUs, {d['mem_mb']} MiB)"
              + (f" (would fail: {why})" if why else ""))
        print(d["command"])
    return 0


def cmd_list():
    systems = make_systems()
    print("benchmark   " + "  ".join(f"{s:8}" for s in systems) + "  description")
    for b in BENCHMARKS.values():
        cells = "  ".join(f"{('yes' if s in b.halves else 'missing'):8}" for s in systems)
        print(f"{b.name:11} {cells}  {b.title}")
    for s in systems.values():
        why = s.unavailable()
        print(f"{s.name}: {'ready' if not why else why}")
    return 0
