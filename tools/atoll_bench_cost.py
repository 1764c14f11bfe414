"""The cost model in the benchmark report: what every measured region of a
`tools/bench --cost-model` sweep moved between cores, per operation,
against the number of cores, Atoll beside Linux.

tools/bench writes one line per region to costmodel.jsonl: the plugin's
region line (docs/costmodel.md) plus where it came from (system, shape,
machine, accel, commit, run). Here those lines become a table and one chart
per benchmark. Works on recorded lines only; matplotlib is passed in.
"""
import json
import math
import os
import statistics

import atoll_jsonl

COST_FILE = "costmodel.jsonl"
COUNTS = ("transfers", "transfers_weighted", "invalidations", "ipis", "instructions")
# The critical path in hops, when every region of a row has one (a region
# another began inside has none): the latency stand-in (docs/costmodel.md).
CHAIN = ("chain", "chain_weighted")
# Benchmarks whose region's `ops` are every one of `cores` clients' at once:
# their critical path runs through one client's operations, so the chain
# is divided by ops / cores (a client's), not by ops.
PARALLEL_OPS = {"store"}
# Where the x axis comes from: the machine's CPU count, or an argument of
# the region: (unmap) the cores the call had to reach, (store) the cores
# whose threads or clients ran the operations.
X_FROM_ARG = {"unmap": "cores", "store": "cores"}
X_LABEL = {"unmap": "cores the call reaches (N)", "store": "cores taking part (N)"}
# Arguments that tell apart a benchmark's regions of one protocol, which
# must not share a median: a caps region is one revoke or one delete of an
# object held on H cores; a lookup region is a lookup, a connect or a call
# to an instance on the client's core, node or another node; a mem region
# is one block size's rounds (pages per block); a store region is one
# placement (its replicas: the machine's nodes, its cores, or 1) at one
# read fraction. They join the protocol's label (a row and a line each).
SPLIT_BY = {"caps": ("op", "holders"), "unmap": ("op",), "lookup": ("relation",), "mem": ("pages",),
            "store": ("replicas", "reads")}
# Benchmarks drawn as one chart per value of an argument (a store chart per
# read fraction: its placements on every shape were too many lines for one).
CHART_BY = {"store": "reads"}

NOTE = ("Counted by the cost model (docs/costmodel.md): a plugin follows every guest memory "
        "access by physical address through a coherence directory of 64-byte lines under "
        "single-threaded TCG. *transfers*: a core got a line's data from another core's cache "
        "(a read of a line another core wrote last, or a write to a line only others held); "
        "*weighted*: each transfer times the SLIT distance between the two cores' nodes / 10; "
        "*IPIs*: writes to a local APIC's interrupt command register; *chain*: the critical "
        "path, the longest run of transfers each of which needed the one before (a read miss "
        "one hop after the later of the write it reads and the reader's own clock; writes "
        "buffered, an interrupt no hop of its own), the stand-in for latency (for the store, whose N "
        "clients run at once, per operation of one client); all per operation of the "
        "benchmark (a round trip, an unmap call, a core brought up), the median over the "
        "regions measured (every pair, every sample, every call; `range` gives the lowest and "
        "highest region). No timing, no cache "
        "capacity (lines are never evicted), no prefetching; instruction fetches and page-table "
        "walks are not followed.")


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check(obj):
    """None if obj is a valid costmodel.jsonl record, else the reason."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for k in ("system", "shape", "region"):
        if not isinstance(obj.get(k), str) or not obj[k]:
            return f"{k!r} missing or not a non-empty string"
    if not isinstance(obj.get("args", {}), dict):
        return "'args' is not an object"
    for k in COUNTS:
        if not _num(obj.get(k)) or obj[k] < 0:
            return f"{k!r} missing or not a non-negative number"
    return None


def load(out_dir):
    """costmodel.jsonl -> (records, bad) with bad as (file, line number, line, reason)."""
    rows, bad_lines = atoll_jsonl.read_lines(os.path.join(out_dir, COST_FILE))
    records, bad = [], [(COST_FILE, n, line, why) for n, line, why in bad_lines]
    for n, line, obj in rows:
        why = check(obj)
        if why:
            bad.append((COST_FILE, n, line[:200], why))
        else:
            records.append(obj)
    return records, bad


def _smp(r):
    m = r.get("machine")
    return m.get("smp") if isinstance(m, dict) and isinstance(m.get("smp"), int) else None


def _nodes(r):
    m = r.get("machine")
    return len(m.get("nodes") or []) if isinstance(m, dict) else 0


def _ops(r):
    ops = r.get("args", {}).get("ops")
    return ops if _num(ops) and ops > 0 else 1


def _chain_ops(r):
    """What a region's chain is divided by: its operations, or one
    client's where `cores` clients ran them at once (PARALLEL_OPS)."""
    cores = r.get("args", {}).get("cores")
    if r.get("region") in PARALLEL_OPS and _num(cores) and cores >= 1:
        return max(_ops(r) / cores, 1)
    return _ops(r)


def rows(records):
    """Per (system, shape, benchmark, protocol[, cores the call reached]):
    each closed region's counts divided by its operations, and the median
    of that over the group's regions (every pair of a ping-pong, every
    sample, every unmap call), so one region that caught a timer tick or a
    cold line does not move the figure. A list of dicts, in a stable order."""
    groups = {}
    for r in records:
        if r.get("unclosed"):
            continue
        bench = r["region"]
        args = r.get("args", {})
        x_arg = X_FROM_ARG.get(bench)
        x = args.get(x_arg) if x_arg else _smp(r)
        proto = " ".join([str(args.get("protocol", ""))] +
                         [f"{k}={args[k]}" for k in SPLIT_BY.get(bench, ()) if k in args]).strip()
        key = (r["system"], r["shape"], r.get("accel", "tcg"), bench, proto, x)
        g = groups.setdefault(key, {"regions": 0, "ops": 0, "smp": _smp(r), "nodes": _nodes(r),
                                    "args": {k: args[k] for k in SPLIT_BY.get(bench, ()) if k in args},
                                    "per_op": {k: [] for k in COUNTS + CHAIN}})
        g["regions"] += 1
        g["ops"] += _ops(r)
        for k in COUNTS:
            g["per_op"][k].append(r[k] / _ops(r))
        for k in CHAIN:
            if _num(r.get(k)):
                g["per_op"][k].append(r[k] / _chain_ops(r))
    out = []
    for (system, shape, accel, bench, proto, x), g in groups.items():
        row = {"system": system, "shape": shape, "accel": accel, "benchmark": bench,
               "protocol": proto, "x": x, "smp": g["smp"], "nodes": g["nodes"],
               "regions": g["regions"], "ops": g["ops"], "args": g["args"]}
        for k in COUNTS:
            row[k] = statistics.median(g["per_op"][k])
            row[k + "_range"] = (min(g["per_op"][k]), max(g["per_op"][k]))
        for k in CHAIN:   # None unless every region has one
            whole = len(g["per_op"][k]) == g["regions"]
            row[k] = statistics.median(g["per_op"][k]) if whole else None
        out.append(row)
    out.sort(key=lambda r: (r["benchmark"], r["system"] != "atoll", r["system"], r["protocol"],
                            r["x"] if isinstance(r["x"], int) else -1, r["nodes"], r["shape"]))
    return out


def _f(v):
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def section(records, md_table):
    """The report's markdown lines for the cost model (empty without records)."""
    rs = rows(records)
    if not rs:
        return []
    out = ["## Cost model: what moves between cores", "", NOTE, ""]
    body = []
    for r in rs:
        where = r["shape"] if r["benchmark"] not in X_FROM_ARG else f"{r['shape']}, N={r['x']}"
        lo, hi = r["transfers_range"]
        body.append([r["benchmark"], r["system"], r["protocol"] or "-", where,
                     _f(r["transfers"]), f"{_f(lo)}-{_f(hi)}" if lo != hi else "-",
                     _f(r["transfers_weighted"]), _f(r["invalidations"]),
                     _f(r["ipis"]), _f(r["instructions"]),
                     "-" if r["chain"] is None else f"{_f(r['chain'])} ({_f(r['chain_weighted'])})",
                     f"{r['regions']} / {r['ops']:g}"])
    out.append(md_table(["benchmark", "system", "protocol", "machine", "transfers/op", "range",
                         "weighted/op", "invalidations/op", "IPIs/op", "instructions/op",
                         "chain/op (weighted)", "regions / ops"], body))
    unclosed = sum(1 for r in records if r.get("unclosed"))
    out.append("")
    if unclosed:
        out += [f"{unclosed} region(s) never reached their end marker (the guest stopped "
                "first) and are left out.", ""]
    return out


def plot(plt, records, plot_dir, footer, commit):
    """One chart per benchmark: transfers per operation (solid) and
    distance-weighted transfers (dashed) against cores on the left, the
    chain (the critical path, solid; weighted, dashed) in the middle, IPIs
    per operation on the right; a line per system and protocol (and NUMA
    layout). Returns [(title, file name)]."""
    rs = rows(records)
    plots = []
    charts = []   # (benchmark, the chart's argument value or None, its rows)
    for bench in sorted({r["benchmark"] for r in rs}):
        mine = [r for r in rs if r["benchmark"] == bench and isinstance(r["x"], (int, float))]
        by = CHART_BY.get(bench)
        values = sorted({r["args"].get(by) for r in mine}, key=str) if by else [None]
        for v in values:
            charts.append((bench, (by, v) if by and v is not None else None,
                           [r for r in mine if not by or r["args"].get(by) == v]))
    for bench, split, mine in charts:
        if not mine:
            continue
        series = {}
        for r in mine:
            if bench in X_FROM_ARG:
                label = f"{r['system']} {r['protocol']} on {r['shape']}".replace("  ", " ")
            else:
                label = f"{r['system']} {r['protocol']}".strip() + (
                    f" ({r['nodes']} nodes)" if r["nodes"] > 1 else "")
            series.setdefault(label, []).append(r)
        # The legend goes below the three panels, three labels a row: with
        # every shape's placements it was taller than a panel.
        legend_rows = (len(series) + 2) // 3
        legend_in = 0.16 * legend_rows + 0.3
        height = 5.5 + legend_in
        fig, (ax, axc, ax2) = plt.subplots(1, 3, figsize=(17, height))
        cmap = plt.get_cmap("tab10" if len(series) <= 10 else "tab20")
        # Linux first, so Atoll's lines are drawn on top where they coincide.
        for i, (label, pts) in enumerate(sorted(series.items(), key=lambda kv: (
                kv[0].startswith("atoll"), kv[0]))):
            pts = sorted(pts, key=lambda r: r["x"])
            xs = [r["x"] for r in pts]
            color = cmap(i % cmap.N)
            marker = "o" if label.startswith("atoll") else "s"
            ax.plot(xs, [r["transfers"] for r in pts], marker=marker, color=color, label=label)
            ax.plot(xs, [r["transfers_weighted"] for r in pts], linestyle="--", color=color,
                    alpha=0.7)
            ax2.plot(xs, [r["ipis"] for r in pts], marker=marker, color=color, label=label)
            chained = [r for r in pts if r["chain"] is not None]
            if chained:
                axc.plot([r["x"] for r in chained], [r["chain"] for r in chained], marker=marker,
                         color=color, label=label)
                axc.plot([r["x"] for r in chained], [r["chain_weighted"] for r in chained],
                         linestyle="--", color=color, alpha=0.7)
        xlabel = X_LABEL.get(bench, "virtual CPUs in the machine")
        for a, what, key in ((ax, "cache-line transfers per operation\n(dashed: weighted by "
                                  "SLIT distance / 10)", "transfers_weighted"),
                             (axc, "chain: critical path in transfers per operation\n(dashed: "
                                   "weighted by SLIT distance / 10)", "chain_weighted"),
                             (ax2, "IPIs (ICR writes) per operation", "ipis")):
            a.set_xscale("log", base=2)
            a.set_xlabel(xlabel)
            a.set_ylabel(what)
            a.grid(True, which="both", alpha=0.3)
            top = max((r[key] or 0 for r in mine), default=0)
            low = min((r[k] for r in mine for k in ("transfers", "ipis") if r[k] > 0), default=1)
            if top > 50 * low and top > 10:
                a.set_yscale("symlog", linthresh=1)   # Linux's hundreds beside Atoll's few
            a.set_ylim(bottom=0)
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7,
                   bbox_to_anchor=(0.5, 0.3 / height), frameon=False)
        what = f" ({split[0]}={split[1]})" if split else ""
        title = f"Cost model: {bench}{what}, transfers, critical path and IPIs per operation (Atoll and Linux)"
        fig.suptitle(title)
        fig.text(0.01, 0.005, f"{footer}; single-threaded TCG with the cost model plugin; "
                              f"commit {commit}", fontsize=7, color="0.35", ha="left",
                 va="bottom", wrap=True)
        fig.tight_layout(rect=(0, (legend_in + 0.3) / height, 1, 1 - 0.35 / height))
        name = f"cost_{bench}.png" if not split else f"cost_{bench}_{split[0]}{split[1]}.png"
        fig.savefig(os.path.join(plot_dir, name), dpi=110)
        plt.close(fig)
        plots.append((title, name))
    return plots
