"""The cost model from the host: the QEMU options that load the plugin
(tools/costmodel/, built by make) and reading the JSON lines it writes.

    from atoll_costmodel import CostModel, qemu_options, load
    cmd += qemu_options(machine, CostModel(out="build/costmodel/run.jsonl"))
    counts = load("build/costmodel/run.jsonl")
    for r in counts.regions: print(r["region"], per_op(r)["transfers"])

docs/costmodel.md documents the plugin, its arguments, every JSON field and
what the counts mean. Standard library only; imports nothing of the other
tools (atoll_run imports this).
"""
import dataclasses
import json
import statistics
import os
from typing import List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.path.join("build", "host", "tools", "costmodel", "costmodel.so")   # relative to REPO
DEFAULT_OUT = os.path.join("build", "costmodel", "run.jsonl")
# Single-threaded TCG: one host thread runs every virtual CPU in turn, so
# the order in which accesses reach the directory is the guest's own, not
# the host scheduler's (docs/costmodel.md, Determinism).
ACCEL = "tcg,thread=single"
COUNTS = ("transfers", "transfers_weighted", "invalidations", "ipis", "instructions")
# The critical path in hops (docs/costmodel.md, The chain): only in a
# closed region no other region began inside.
CHAIN = ("chain", "chain_weighted")


class CostModelError(ValueError):
    """A cost model that cannot run: plugin not built, bad option."""


@dataclasses.dataclass
class CostModel:
    """What tools/run --cost-model asks for."""
    out: str = DEFAULT_OUT          # where the plugin writes its JSON lines
    hot: int = 0                    # name each region's N hottest lines
    pairs: bool = True              # per-pair counts in every region
    plugin: str = ""                # "" = the one make builds

    @property
    def plugin_path(self):
        return self.plugin or os.path.join(REPO, PLUGIN)


def _escape(value):
    """QEMU's option syntax: a comma inside a value is written twice."""
    return str(value).replace(",", ",,")


def plugin_args(machine, cost):
    """The plugin's arguments for this machine: the CPUs of every NUMA node
    and the distances exactly as QEMU is told them (tools/costmodel/args.h)."""
    args = [f"out={_escape(cost.out)}"]
    numa = machine.numa if isinstance(machine.numa, list) else []
    if len(numa) > 1:
        for node in numa:
            if not node.cpus:
                continue
            args.append("node=" + "+".join(node.cpu_ranges()))
        with_cpus = [i for i, n in enumerate(numa) if n.cpus]
        if len(with_cpus) > 1:
            # Nodes without CPUs take part in no transfer: leave them out.
            args.append("dist=" + ":".join(str(machine.dist[i][j])
                                           for i in with_cpus for j in with_cpus))
    if cost.hot:
        args.append(f"hot={int(cost.hot)}")
    if not cost.pairs:
        args.append("pairs=off")
    return args


def qemu_options(machine, cost):
    """What to add to a QEMU command line (whose -machine has no accel=)."""
    path = cost.plugin_path
    if not os.path.isfile(path):
        raise CostModelError(f"the cost model plugin {os.path.relpath(path, REPO)} is not built: "
                             "run make")
    return ["-accel", ACCEL,
            "-plugin", ",".join([f"file={_escape(path)}"] + plugin_args(machine, cost))]


def prepare(cost):
    """Before a run: the output's folder exists and no earlier run's lines
    remain in it."""
    os.makedirs(os.path.dirname(os.path.abspath(cost.out)), exist_ok=True)
    if os.path.exists(cost.out):
        os.unlink(cost.out)


# -- reading -------------------------------------------------------------------------------
@dataclasses.dataclass
class Counts:
    config: Optional[dict] = None
    regions: List[dict] = dataclasses.field(default_factory=list)
    total: Optional[dict] = None
    malformed: List[str] = dataclasses.field(default_factory=list)

    def named(self, name, **args):
        """Regions called `name` whose args include every given key=value."""
        return [r for r in self.regions if r.get("region") == name and
                all(r.get("args", {}).get(k) == v for k, v in args.items())]


def parse(text):
    """The plugin's JSON lines -> Counts. Lines that are not one JSON object
    with a known `type` are kept in `malformed` (a QEMU killed mid-line
    leaves at most one)."""
    c = Counts()
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError:
            c.malformed.append(line)
            continue
        t = o.get("type") if isinstance(o, dict) else None
        if t == "config":
            c.config = o
        elif t == "region":
            c.regions.append(o)
        elif t == "total":
            c.total = o
        else:
            c.malformed.append(line)
    return c


def load(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f.read())


def per_op(region):
    """The region's counts divided by its `ops` argument (1 when absent),
    and its chain so divided when it has one (where several CPUs ran the
    ops at once, the chain is one's path: tools/bench's report divides it
    by one CPU's share for the store)."""
    ops = region.get("args", {}).get("ops")
    ops = ops if isinstance(ops, (int, float)) and ops > 0 else 1
    out = {k: region.get(k, 0) / ops for k in COUNTS}
    out.update({k: region[k] / ops for k in CHAIN if k in region})
    return out


def describe(region):
    """'pingpong protocol=urpc src=0 dst=1 ops=200'"""
    args = " ".join(f"{k}={v}" for k, v in region.get("args", {}).items())
    return f"{region.get('region')} {args}".strip() + (" (unclosed)" if region.get("unclosed") else "")


def summary(counts):
    """A short table of the regions for a terminal."""
    lines = [f"{'transfers':>10} {'weighted':>10} {'inval':>10} {'IPIs':>8} {'insns':>10} {'chain':>8}  "
             "per op, region"]
    for r in counts.regions:
        p = per_op(r)
        chain = f"{p['chain']:8.3f}" if "chain" in p else f"{'-':>8}"
        lines.append(f"{p['transfers']:10.3f} {p['transfers_weighted']:10.3f} "
                     f"{p['invalidations']:10.3f} {p['ipis']:8.3f} {p['instructions']:10.0f} {chain}  "
                     f"{describe(r)}")
    if counts.total:
        t = counts.total
        lines.append(f"whole run: {t['transfers']} transfers ({t['transfers_weighted']} weighted), "
                     f"{t['invalidations']} invalidations, {t['ipis']} IPIs, "
                     f"{t['instructions']} instructions")
    return lines


# -- throughput by the busiest CPU (tools/mem-costmodel, tools/store-costmodel) -----------------

def background(idle_regions, smp):
    """Each CPU's instructions in idle regions as a multiple of the median
    CPU's (1.0 for a CPU that does what most do; more for core 0, which
    runs the name server, the starter, the shell and the fence's
    decisions). No idle region: 1.0 for every CPU."""
    if not idle_regions:
        return [1.0] * smp
    ratios = [[] for _ in range(smp)]
    for r in idle_regions:
        x = r["per_cpu"]["instructions"]
        base = statistics.median(x) or 1
        for k in range(smp):
            ratios[k].append(x[k] / base)
    return [statistics.median(v) for v in ratios]


def work_per_op(region, bg):
    """A region's instructions per operation on each CPU above its
    background: bg[k] times the region's median CPU (the CPUs the operation
    does not touch, whose ticks and polling grow with the region's length,
    not with the work)."""
    ops = region["args"].get("ops") or 1   # (a region without ops: counted as one)
    per = [x / ops for x in region["per_cpu"]["instructions"]]
    base = statistics.median(per)
    return [max(0.0, x - bg[k] * base) for k, x in enumerate(per)]


def busiest(regions, bg):
    """N clients at once, one region of each measured alone: CPU k's load
    is the sum of its work per operation over the regions; returns (load,
    the busiest CPU, its load). The modelled throughput is N operations per
    that load (the busiest CPU bounds it; latency is not modelled)."""
    load = None
    for r in regions:
        w = work_per_op(r, bg)
        load = w if load is None else [a + b for a, b in zip(load, w)]
    if not load:
        return [], None, 0.0
    top = max(load)
    return load, load.index(top), top
