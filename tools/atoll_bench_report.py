"""Benchmark results: parsing guest output, checking records, aggregating,
plotting (PNG, matplotlib) and the markdown report.

Guest programs (Linux's today, Atoll's later) print one line per result:

    @bench {"benchmark":"pingpong","metric":"round_trip","unit":"ns","value":..,
            "samples":20,"median":..,"spread":..,"params":{...}}

and event lines (`{"event":"start"|"info"|"done"|"error"|"end",...}`).
tools/bench adds where each result came from (system, shape, machine,
accel, qemu, commit, run) and writes results.jsonl; docs/bench.md lists
every field. Everything here works on recorded JSON lines, so the tests
need no guest. matplotlib is imported only to draw.
"""
import json
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_bench_cost as cost  # noqa: E402
import atoll_jsonl  # noqa: E402

BENCH_PREFIX = "@bench "
COST_FILE = cost.COST_FILE
SCHEMA = 1
# Fields every guest result line must have, and their checks.
GUEST_FIELDS = ("benchmark", "metric", "unit", "value", "samples", "median", "spread")
# Fields tools/bench adds to every record of results.jsonl.
CONTEXT_FIELDS = ("system", "shape", "accel", "commit")
TAIL_LINES = 25

PINGPONG_PROTOCOLS = ("cacheline", "pipe", "eventfd", "futex")     # Linux's (bench/linux/pingpong.c)
# Tables and charts list protocols in this order: the floor, Atoll's URPC
# (its own floor, `cacheline`, is measured on the same frame), Linux's.
PROTOCOL_ORDER = ("cacheline", "urpc", "pipe", "eventfd", "futex", "urpc_wake")


# -- parsing and checking ------------------------------------------------------------------
def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_result(obj, full=False):
    """None if obj is a valid result record, else the reason. full: also
    require the fields tools/bench adds (a results.jsonl record)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    for k in ("benchmark", "metric", "unit"):
        if not isinstance(obj.get(k), str) or not obj.get(k):
            return f"{k!r} missing or not a non-empty string"
    for k in ("value", "median", "spread"):
        if not _is_num(obj.get(k)):
            return f"{k!r} missing or not a finite number"
    if obj["spread"] < 0:
        return "'spread' is negative"
    s = obj.get("samples")
    if not isinstance(s, int) or isinstance(s, bool) or s < 1:
        return "'samples' missing or not a positive integer"
    if "params" in obj and not isinstance(obj["params"], dict):
        return "'params' is not an object"
    for k in ("p25", "p75", "min", "max", "mean"):
        if k in obj and not _is_num(obj[k]):
            return f"{k!r} is not a finite number"
    if full:
        for k in CONTEXT_FIELDS:
            if not isinstance(obj.get(k), str) or not obj.get(k):
                return f"{k!r} missing or not a non-empty string"
    return None


def parse_console(text):
    """Console text -> (results, events, malformed).

    results: valid result objects in order; events: objects with an "event"
    member; malformed: (line, reason) for lines that carry the prefix but
    are not one valid object - bad JSON, a result missing fields, or the
    prefix in the middle of a line (kernel output interleaved)."""
    results, events, malformed = [], [], []
    for line in text.splitlines():
        line = line.replace("\r", "")
        body = line.strip()
        if body.startswith(BENCH_PREFIX):
            try:
                obj = json.loads(body[len(BENCH_PREFIX):])
            except ValueError as e:
                malformed.append((line, f"bad JSON: {e}"))
                continue
            if not isinstance(obj, dict):
                malformed.append((line, "not a JSON object"))
            elif "event" in obj:
                if isinstance(obj["event"], str):
                    events.append(obj)
                else:
                    malformed.append((line, "'event' is not a string"))
            else:
                why = check_result(obj)
                if why:
                    malformed.append((line, why))
                else:
                    results.append(obj)
        elif BENCH_PREFIX + "{" in line:
            malformed.append((line, "prefix in the middle of a line (interleaved output)"))
    return results, events, malformed


def read_jsonl(path):
    """A JSON-lines file -> (objects, bad) where bad is (line number, line,
    reason). A missing file gives ([], [])."""
    rows, bad = atoll_jsonl.read_lines(path)
    return [obj for _, _, obj in rows], bad


def console_tail(text, n=TAIL_LINES):
    lines = [ln for ln in text.replace("\r", "").splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines[-n:])


# -- loading a results folder ----------------------------------------------------------------
class Data:
    """Everything in a results folder: run.json (the sweep: command,
    commit, shapes, ...), results.jsonl (valid records), points.jsonl (one
    line per system x shape x accel x benchmark with its status), and the
    lines that were skipped with the reason."""

    def __init__(self, run=None, records=(), points=(), bad=(), cost=()):
        self.run = dict(run or {})
        self.records = list(records)
        self.points = list(points)
        self.bad = list(bad)      # (file, line number, line, reason)
        self.cost = list(cost)    # costmodel.jsonl: one record per measured region

    @classmethod
    def load(cls, out_dir):
        run = {}
        try:
            with open(os.path.join(out_dir, "run.json"), encoding="utf-8") as f:
                run = json.load(f)
            if not isinstance(run, dict):
                run = {}
        except (OSError, ValueError):
            pass
        bad = []
        objs, b = read_jsonl(os.path.join(out_dir, "results.jsonl"))
        bad += [("results.jsonl",) + x for x in b]
        records = []
        for i, o in enumerate(objs):
            why = check_result(o, full=True)
            if why:
                bad.append(("results.jsonl", None, json.dumps(o)[:200], why))
            else:
                records.append(o)
        pts, b = read_jsonl(os.path.join(out_dir, "points.jsonl"))
        bad += [("points.jsonl",) + x for x in b]
        points = [p for p in pts if isinstance(p.get("status"), str)]
        bad += [("points.jsonl", None, json.dumps(p)[:200], "no 'status'")
                for p in pts if not isinstance(p.get("status"), str)]
        cost_records, b = cost.load(out_dir)
        bad += b
        return cls(run, records, points, bad, cost_records)

    # -- selections --
    def select(self, **want):
        out = []
        for r in self.records:
            ok = True
            for k, v in want.items():
                if k.startswith("param_"):
                    if (r.get("params") or {}).get(k[6:]) != v:
                        ok = False
                        break
                elif r.get(k) != v:
                    ok = False
                    break
            if ok:
                out.append(r)
        return out

    def machines(self):
        """shape name -> machine dict, in sweep order (run.json) then by CPU count."""
        found = {}
        for r in list(self.records) + list(self.points):
            if r.get("shape") and isinstance(r.get("machine"), dict):
                found.setdefault(r["shape"], r["machine"])
            elif r.get("shape"):
                found.setdefault(r["shape"], {})
        return found

    def shapes(self):
        order = [s.get("name") for s in self.run.get("shapes", []) if isinstance(s, dict)]
        found = self.machines()
        known = [s for s in order if s in found]
        rest = sorted((s for s in found if s not in known),
                      key=lambda s: (_smp(found[s], s), s))
        return known + rest

    def accels(self):
        return sorted({r["accel"] for r in self.records} |
                      {p["accel"] for p in self.points if isinstance(p.get("accel"), str)})

    def systems(self):
        names = {r["system"] for r in self.records} | {
            p["system"] for p in self.points if isinstance(p.get("system"), str)}
        return sorted(names, key=lambda s: (s != "linux", s))

    def commit(self):
        c = self.run.get("commit") or next((r["commit"] for r in self.records), None)
        return c or "unknown"


def _smp(machine, shape=""):
    if isinstance(machine, dict) and isinstance(machine.get("smp"), int):
        return machine["smp"]
    m = re.match(r"(\d+)", shape or "")
    return int(m.group(1)) if m else 0


def describe_machine(m):
    """A machine dict (as in records) -> '8 CPUs, 2 NUMA nodes (0-3 512M, 4-7 512M), 1G, q35'."""
    if not isinstance(m, dict) or not m:
        return "unknown machine"
    parts = [f"{m.get('smp', '?')} CPUs"]
    if m.get("sockets"):
        parts[0] += (f" ({m['sockets']} sockets x {m.get('cores')} cores x "
                     f"{m.get('threads')} threads)")
    nodes = m.get("nodes") or []
    if nodes:
        desc = ", ".join(f"{n.get('cpus') or 'no CPUs'} {n.get('mem')}" for n in nodes)
        parts.append(f"{len(nodes)} NUMA nodes ({desc})")
    else:
        parts.append("no NUMA")
    parts.append(f"{m.get('mem', '?')} memory")
    parts.append(str(m.get("type", "q35")))
    return ", ".join(parts)


# -- aggregation -------------------------------------------------------------------------
def median_of(values):
    values = [v for v in values if _is_num(v)]
    return statistics.median(values) if values else None


def _key(r):
    return (r["system"], r["shape"], r["accel"])


def pingpong_summary(data, unit="ns"):
    """Per (system, shape, accel, protocol): the median over pairs of each
    pair's median round trip, the fastest and slowest pair, the pair count
    and the ratio to the cache-line floor of the same point. A list of dicts."""
    groups = {}
    for r in data.select(benchmark="pingpong", metric="round_trip", unit=unit):
        p = r.get("params") or {}
        groups.setdefault(_key(r) + (p.get("protocol", "?"),), []).append(r)
    rows = []
    for k, rs in groups.items():
        vals = [r["median"] for r in rs]
        slow = max(rs, key=lambda r: r["median"])
        fast = min(rs, key=lambda r: r["median"])
        rows.append({"system": k[0], "shape": k[1], "accel": k[2], "protocol": k[3],
                     "pairs": len(rs), "median": median_of(vals),
                     "min": fast["median"], "max": slow["median"],
                     "min_pair": _pair(fast), "max_pair": _pair(slow), "unit": unit})
    floor = {(r["system"], r["shape"], r["accel"]): r["median"] for r in rows
             if r["protocol"] == "cacheline"}
    for r in rows:
        f = floor.get((r["system"], r["shape"], r["accel"]))
        r["ratio_to_cacheline"] = (r["median"] / f) if f else None
    order = {s: i for i, s in enumerate(data.shapes())}
    rows.sort(key=lambda r: (r["system"] != "linux", r["system"], r["accel"],
                             order.get(r["shape"], 999), _proto_order(r["protocol"])))
    return rows


def _pair(r):
    p = r.get("params") or {}
    return f"{p.get('src', '?')}->{p.get('dst', '?')}"


def _proto_order(p):
    return PROTOCOL_ORDER.index(p) if p in PROTOCOL_ORDER else len(PROTOCOL_ORDER)


def pingpong_matrix(data, system, shape, accel, protocol, unit="ns"):
    """(cpus, matrix): matrix[i][j] is the round trip from cpus[i] to
    cpus[j] (None where not measured); a pair measured one way only
    (pairs=half) fills both cells."""
    cells = {}
    for r in data.select(benchmark="pingpong", metric="round_trip", unit=unit, system=system,
                         shape=shape, accel=accel, param_protocol=protocol):
        p = r.get("params") or {}
        s, d = p.get("src"), p.get("dst")
        if isinstance(s, int) and isinstance(d, int):
            cells[(s, d)] = r["median"]
    for (s, d), v in list(cells.items()):
        cells.setdefault((d, s), v)
    cpus = sorted({c for k in cells for c in k})
    idx = {c: i for i, c in enumerate(cpus)}
    m = [[None] * len(cpus) for _ in cpus]
    for (s, d), v in cells.items():
        m[idx[s]][idx[d]] = v
    return cpus, m


def unmap_series(data, unit="ns"):
    """{(system, shape, accel, label): [(cores, median, spread), ...]}
    sorted by cores. label is the op, plus the protocol when a system
    reports one (Atoll's broadcast, multicast, ...)."""
    out = {}
    for r in data.select(benchmark="unmap", metric="latency", unit=unit):
        p = r.get("params") or {}
        n = p.get("cores")
        if not isinstance(n, int):
            continue
        label = str(p.get("op", "unmap"))
        if p.get("protocol"):
            label += "/" + str(p["protocol"])
        out.setdefault(_key(r) + (label,), {})[n] = (n, r["median"], r["spread"])
    return {k: [v[n] for n in sorted(v)] for k, v in out.items()}


def unmap_rows(data, unit="ns"):
    """One dict per (system, shape, accel, label, cores) with the median,
    spread and ratio to the same series' smallest core count (N=1)."""
    rows = []
    order = {s: i for i, s in enumerate(data.shapes())}
    for k, pts in unmap_series(data, unit).items():
        base = pts[0][1] if pts else None
        for n, med, spread in pts:
            rows.append({"system": k[0], "shape": k[1], "accel": k[2], "op": k[3], "cores": n,
                         "median": med, "spread": spread, "base_cores": pts[0][0],
                         "ratio": med / base if base else None, "unit": unit})
    rows.sort(key=lambda r: (r["system"] != "linux", r["system"], r["accel"], r["op"],
                             order.get(r["shape"], 999), r["cores"]))
    return rows


def store_series(data, metric="throughput"):
    """{(system, shape, accel, variant, read_pct): [(cores, median), ...]}
    sorted by cores; variant is Atoll's placement or Linux's lock."""
    out = {}
    for r in data.select(benchmark="store", metric=metric):
        p = r.get("params") or {}
        n = p.get("cores")
        if not isinstance(n, int):
            continue
        variant = str(p.get("placement") or p.get("lock") or "?")
        if p.get("fresh") is False:
            variant += " stale"
        out.setdefault(_key(r) + (variant, p.get("read_pct")), {})[n] = (n, r["median"])
    return {k: [v[n] for n in sorted(v)] for k, v in out.items()}


BOOT_METRICS = (("kernel_to_all_cores", "ns"), ("kernel_to_init", "ns"), ("smp_bringup", "ns"),
                ("boottime_at_init", "ns"), ("reset_to_init", "ns"), ("tsc_mhz", "MHz"))
# Benchmarks with their own section and plots; any other gets a generic table.
KNOWN_BENCHMARKS = ("boot", "pingpong", "unmap", "local", "store")


def local_rows(data):
    """Per (system, shape, accel, protocol): the median over cores of the
    same-core round trip in ns and cycles, and the ratio (by cycles) to
    Linux's pipe round trip on the same machine and accelerator."""
    groups = {}
    for r in data.select(benchmark="local", metric="round_trip"):
        p = r.get("params") or {}
        g = groups.setdefault(_key(r) + (str(p.get("protocol", "?")),), {"cores": set()})
        g.setdefault(r["unit"], []).append(r["median"])
        g["cores"].add(p.get("core"))
    rows = []
    for k, g in groups.items():
        rows.append({"system": k[0], "shape": k[1], "accel": k[2], "protocol": k[3],
                     "cores": len(g["cores"]), "ns": median_of(g.get("ns", [])),
                     "cycles": median_of(g.get("cycles", []))})
    base = {(r["shape"], r["accel"]): r["cycles"] for r in rows
            if r["system"] == "linux" and r["protocol"] == "pipe"}
    for r in rows:
        b = base.get((r["shape"], r["accel"]))
        r["ratio_to_linux_pipe"] = (r["cycles"] / b) if (b and r["cycles"] is not None) else None
    order = {s: i for i, s in enumerate(data.shapes())}
    rows.sort(key=lambda r: (r["accel"], order.get(r["shape"], 999), r["system"] != "linux",
                             r["system"], r["protocol"]))
    return rows


def boot_rows(data):
    rows = {}
    for r in data.select(benchmark="boot"):
        if (r["metric"], r["unit"]) in BOOT_METRICS:
            rows.setdefault(_key(r), {})[r["metric"]] = r["median"]
    order = {s: i for i, s in enumerate(data.shapes())}
    out = [{"system": k[0], "shape": k[1], "accel": k[2], **v} for k, v in rows.items()]
    out.sort(key=lambda r: (r["system"] != "linux", r["system"], r["accel"],
                            order.get(r["shape"], 999)))
    return out


# -- formatting ----------------------------------------------------------------------------
def fmt_time(ns):
    """ns -> '850 ns', '12.3 us', '4.56 ms', '1.23 s'."""
    if ns is None or not _is_num(ns):
        return "-"
    a = abs(ns)
    if a < 1e3:
        return f"{ns:.0f} ns"
    if a < 1e6:
        return f"{ns / 1e3:.3g} us"
    if a < 1e9:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def fmt_ratio(x):
    if x is None or not _is_num(x):
        return "-"
    return f"{x:.3g}x"


def _md_escape(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(header, rows):
    out = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
    return "\n".join(out)


def qemu_desc(data, accel=None):
    q = data.run.get("qemu") or next((r.get("qemu") for r in data.records if r.get("qemu")), "")
    q = q or "QEMU"
    if accel:
        return f"{q}, accel {accel}"
    return q


# -- plots -------------------------------------------------------------------------------------
def _slug(s):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s)).strip("_") or "x"


def _footer(fig, text):
    fig.text(0.01, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)


def plot_all(data, plot_dir):
    """Draw every plot the data allows into plot_dir. Returns (plots,
    problem): plots is a list of (title, file name); problem is None or why
    no plots were drawn (matplotlib missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return [], f"matplotlib is not installed ({e}); install python3-matplotlib"
    os.makedirs(plot_dir, exist_ok=True)
    plots = []
    commit = data.commit()
    for accel in data.accels():
        tcg = accel != "kvm"
        p = _plot_unmap(plt, data, accel, tcg, commit, plot_dir)
        if p:
            plots.append(p)
        p = _plot_protocols(plt, data, accel, tcg, commit, plot_dir)
        if p:
            plots.append(p)
        p = _plot_boot(plt, data, accel, tcg, commit, plot_dir)
        if p:
            plots.append(p)
        p = _plot_local(plt, data, accel, tcg, commit, plot_dir)
        if p:
            plots.append(p)
        p = _plot_store(plt, data, accel, tcg, commit, plot_dir)
        if p:
            plots.append(p)
        for system in data.systems():
            for shape in data.shapes():
                p = _plot_matrix(plt, data, system, shape, accel, tcg, commit, plot_dir)
                if p:
                    plots.append(p)
        for shape in data.shapes():
            p = _plot_caps(plt, data, shape, accel, tcg, commit, plot_dir)
            if p:
                plots.append(p)
            p = _plot_mem(plt, data, shape, accel, tcg, commit, plot_dir)
            if p:
                plots.append(p)
    if data.cost:
        plots += cost.plot(plt, data.cost, plot_dir, qemu_desc(data), commit)
    return plots, None


def _save(plt, fig, plot_dir, name):
    fig.savefig(os.path.join(plot_dir, name), dpi=110)
    plt.close(fig)
    return name


def _plot_unmap(plt, data, accel, tcg, commit, plot_dir):
    series = {k: v for k, v in unmap_series(data).items() if k[2] == accel}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(9, 5.5))
    markers = "osd^v<>pP*hX"
    shapes = data.shapes()
    # One colour and marker per system and shape, one line style per op.
    curves = sorted({(k[0], k[1]) for k in series}, key=lambda c: (
        c[0] != "linux", c[0], shapes.index(c[1]) if c[1] in shapes else 99))
    cmap = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    styles = {}
    for k, pts in sorted(series.items(), key=lambda kv: (
            kv[0][0], kv[0][3], shapes.index(kv[0][1]) if kv[0][1] in shapes else 99)):
        system, shape, _, label = k
        i = curves.index((system, shape))
        style = styles.setdefault(label, ["-", "--", ":", "-."][len(styles) % 4])
        xs = [p[0] for p in pts]
        if tcg:
            base = pts[0][1]
            ys = [p[1] / base for p in pts] if base else [p[1] for p in pts]
        else:
            ys = [p[1] / 1e3 for p in pts]
        ax.plot(xs, ys, marker=markers[i % len(markers)], linestyle=style, color=cmap(i % cmap.N),
                label=f"{system} {label} on {shape}")
    ax.set_xlabel("cores in the address space (N)")
    if tcg:
        ax.set_ylabel("latency / latency at the smallest N (ratio)")
        title = f"Unmap latency vs cores ({accel.upper()}: scaling, not absolute time)"
    else:
        ax.set_ylabel("latency of the call (us, median)")
        title = f"Unmap latency vs cores ({accel.upper()})"
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _footer(fig, f"{qemu_desc(data, accel)}; machines: see legend and the report; "
                 f"commit {commit}")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"unmap_latency_{accel}.png"))


def _plot_store(plt, data, accel, tcg, commit, plot_dir):
    """Throughput against cores, one panel per read fraction; under TCG as
    a ratio to the same series' smallest N (scaling, not absolute)."""
    series = {k: v for k, v in store_series(data).items() if k[2] == accel}
    if not series:
        return None
    reads = sorted({k[4] for k in series}, key=lambda x: -(x or 0))
    fig, axes = plt.subplots(1, len(reads), figsize=(5 * len(reads), 5), squeeze=False)
    curves = sorted({(k[0], k[1], k[3]) for k in series})
    cmap = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for ax, rp in zip(axes[0], reads):
        for k, pts in sorted(series.items()):
            if k[4] != rp:
                continue
            i = curves.index((k[0], k[1], k[3]))
            xs = [p[0] for p in pts]
            base = pts[0][1]
            ys = [p[1] / base for p in pts] if tcg and base else [p[1] for p in pts]
            ax.plot(xs, ys, marker="o", color=cmap(i % cmap.N), label=f"{k[0]} {k[3]} on {k[1]}")
        ax.set_title(f"{rp}% reads")
        ax.set_xlabel("cores (N)")
        ax.set_ylabel("throughput / throughput at the smallest N" if tcg else "throughput (ops/s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    title = f"Store throughput vs cores ({accel.upper()}{': scaling, not absolute' if tcg else ''})"
    fig.suptitle(title)
    _footer(fig, f"{qemu_desc(data, accel)}; commit {commit}")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return (title, _save(plt, fig, plot_dir, f"store_throughput_{accel}.png"))


def _plot_protocols(plt, data, accel, tcg, commit, plot_dir):
    rows = [r for r in pingpong_summary(data) if r["accel"] == accel]
    if not rows:
        return None
    shapes = [s for s in data.shapes() if any(r["shape"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    lines = {}
    for r in rows:
        lines.setdefault((r["system"], r["protocol"]), {})[r["shape"]] = r
    for (system, proto), by_shape in sorted(lines.items(), key=lambda kv: (
            kv[0][0], _proto_order(kv[0][1]))):
        xs, ys = [], []
        for i, s in enumerate(shapes):
            r = by_shape.get(s)
            if not r:
                continue
            y = r["ratio_to_cacheline"] if tcg else r["median"] / 1e3
            if y is None:
                continue
            xs.append(i)
            ys.append(y)
        if xs:
            ax.plot(xs, ys, marker="o", label=f"{system} {proto}")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels(shapes, rotation=20, fontsize=8)
    ax.set_xlabel("machine shape")
    ax.set_yscale("log")
    if tcg:
        ax.set_ylabel("round trip / cache-line round trip (median over pairs)")
        title = f"Ping-pong by protocol ({accel.upper()}: ratio to the cache-line floor)"
    else:
        ax.set_ylabel("round trip (us, median over pairs)")
        title = f"Ping-pong by protocol ({accel.upper()})"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _footer(fig, f"{qemu_desc(data, accel)}; machines: " + "; ".join(
        f"{s} = {describe_machine(data.machines().get(s))}" for s in shapes)[:400]
        + f"; commit {commit}")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"pingpong_protocols_{accel}.png"))


def _plot_boot(plt, data, accel, tcg, commit, plot_dir):
    rows = [r for r in boot_rows(data) if r["accel"] == accel and (
        r.get("kernel_to_init") or r.get("kernel_to_all_cores"))]
    if not rows:
        return None
    shapes = [s for s in data.shapes() if any(r["shape"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(9, 5))
    for system in sorted({r["system"] for r in rows}):
        for metric, style in (("kernel_to_all_cores", "-."), ("kernel_to_init", "-"),
                              ("smp_bringup", "--"), ("reset_to_init", ":")):
            xs, ys = [], []
            for i, s in enumerate(shapes):
                r = next((r for r in rows if r["system"] == system and r["shape"] == s), None)
                if r and _is_num(r.get(metric)):
                    xs.append(i)
                    ys.append(r[metric])
            if not xs:
                continue
            if tcg:
                base = ys[0]
                ys = [y / base for y in ys] if base else ys
            else:
                ys = [y / 1e6 for y in ys]
            ax.plot(xs, ys, marker="o", linestyle=style, label=f"{system} {metric}")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels(shapes, rotation=20, fontsize=8)
    ax.set_xlabel("machine shape")
    if tcg:
        ax.set_ylabel(f"time / time on {shapes[0]} (ratio)")
        title = f"Boot: time to the first user program ({accel.upper()}: ratios)"
    else:
        ax.set_ylabel("ms")
        title = f"Boot: time to the first user program ({accel.upper()})"
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _footer(fig, f"{qemu_desc(data, accel)}; machines: see the report; commit {commit}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"boot_{accel}.png"))


def _plot_local(plt, data, accel, tcg, commit, plot_dir):
    rows = [r for r in local_rows(data) if r["accel"] == accel]
    if tcg:
        rows = [r for r in rows if r["ratio_to_linux_pipe"] is not None]
    else:
        rows = [r for r in rows if r["ns"] is not None]
    if not rows:
        return None
    shapes = [s for s in data.shapes() if any(r["shape"] == s for r in rows)]
    series = sorted({(r["system"], r["protocol"]) for r in rows},
                    key=lambda k: (k[0] != "linux", k))
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / len(series)
    for i, (system, proto) in enumerate(series):
        xs, ys = [], []
        for j, s in enumerate(shapes):
            r = next((r for r in rows if (r["system"], r["protocol"], r["shape"]) ==
                      (system, proto, s)), None)
            if r:
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(r["ratio_to_linux_pipe"] if tcg else r["ns"] / 1e3)
        ax.bar(xs, ys, width=width, label=f"{system} {proto}")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels(shapes, rotation=20, fontsize=8)
    ax.set_xlabel("machine shape")
    if tcg:
        ax.set_ylabel("round trip / Linux pipe round trip (cycles)")
        title = f"Same-core round trip between two address spaces ({accel.upper()}: ratios)"
    else:
        ax.set_ylabel("round trip (us, median over cores)")
        title = f"Same-core round trip between two address spaces ({accel.upper()})"
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _footer(fig, f"{qemu_desc(data, accel)}; machines: see the report; commit {commit}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"local_{accel}.png"))


def caps_series(data, shape, accel):
    """caps: (op, protocol) -> [(holders, median ns, min ns, max ns)] on one
    machine shape, by holders."""
    out = {}
    for r in data.select(benchmark="caps", shape=shape, accel=accel):
        p = r.get("params") or {}
        if not _is_num(p.get("holders")):
            continue
        op = r["metric"].replace("_latency", "")
        out.setdefault((op, p.get("protocol")), []).append(
            (p["holders"], r["median"], r.get("min", r["median"]), r.get("max", r["median"])))
    return {k: sorted(v) for k, v in out.items()}


def _plot_caps(plt, data, shape, accel, tcg, commit, plot_dir):
    """One chart per machine: revoke and delete latency against the number
    of cores holding copies, holders-only beside the broadcast baseline."""
    series = caps_series(data, shape, accel)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {"holders": "tab:blue", "broadcast": "tab:red"}
    for (op, proto), pts in sorted(series.items()):
        xs = [p[0] for p in pts]
        ys = [p[1] / 1e3 for p in pts]
        err = [[(p[1] - p[2]) / 1e3 for p in pts], [(p[3] - p[1]) / 1e3 for p in pts]]
        ax.errorbar(xs, ys, yerr=err, marker="o" if op == "revoke" else "s",
                    linestyle="-" if op == "revoke" else "--", color=colours.get(proto, "tab:gray"),
                    capsize=3, label=f"{op}, {proto}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")   # one descheduled vCPU makes a maximum 1000 times the median
    ax.set_xlabel("cores holding copies (H)")
    ax.set_ylabel("latency (us, median; bars: min to max)")
    title = f"Capability revoke/delete vs holder cores on {shape} ({accel.upper()})"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    note = "TCG on a shared host: compare the two protocols, not absolute times; " if tcg else ""
    _footer(fig, f"{note}{qemu_desc(data, accel)}; commit {commit}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"caps_{_slug(shape)}_{accel}.png"))


def mem_series(data, shape, accel):
    """mem: (system, design, bytes) -> [(cores, ops/s)] on one machine
    shape, by cores (Linux's rows have no design: "linux")."""
    out = {}
    for r in data.select(benchmark="mem", metric="throughput", shape=shape, accel=accel):
        p = r.get("params") or {}
        if not _is_num(p.get("cores")) or not _is_num(p.get("bytes")):
            continue
        out.setdefault((r.get("system"), p.get("design", "linux"), p["bytes"]), []).append((p["cores"], r["median"]))
    return {k: sorted(v) for k, v in out.items()}


def _plot_mem(plt, data, shape, accel, tcg, commit, plot_dir):
    """One chart per machine: alloc+free throughput against the cores
    allocating at once, one line per design (and Linux), 4 KiB solid and
    2 MiB dashed."""
    series = mem_series(data, shape, accel)
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {"central": "tab:red", "per-node": "tab:blue", "cache": "tab:green", "linux": "tab:gray"}
    for (system, design, size), pts in sorted(series.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                linestyle="-" if size <= 4096 else "--", color=colours.get(design, "tab:purple"),
                label=f"{design if system != 'linux' else 'Linux'}, {size // 1024} KiB")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("cores allocating at once")
    ax.set_ylabel("alloc+free per second (sum over cores)")
    title = f"Memory allocation throughput vs cores on {shape} ({accel.upper()})"
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    note = "TCG on a shared host: compare the designs, not absolute rates; " if tcg else ""
    _footer(fig, f"{note}{qemu_desc(data, accel)}; commit {commit}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return (title, _save(plt, fig, plot_dir, f"mem_{_slug(shape)}_{accel}.png"))


def _plot_matrix(plt, data, system, shape, accel, tcg, commit, plot_dir):
    protos = sorted({(r.get("params") or {}).get("protocol") for r in data.select(
        benchmark="pingpong", metric="round_trip", unit="ns", system=system, shape=shape,
        accel=accel)} - {None}, key=_proto_order)
    if not protos:
        return None
    n = len(protos)
    cols = min(n, 2)
    rows_n = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 5 * rows_n + 0.6), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, proto in zip(axes.flat, protos):
        cpus, m = pingpong_matrix(data, system, shape, accel, proto)
        vals = [v for row in m for v in row if v is not None]
        med = median_of(vals) or 1.0
        scale = (1.0 / med) if tcg else 1e-3
        grid = [[(v * scale if v is not None else float("nan")) for v in row] for row in m]
        norm = None
        if vals and min(vals) > 0 and max(vals) / min(vals) > 20:
            from matplotlib.colors import LogNorm
            norm = LogNorm(vmin=min(vals) * scale, vmax=max(vals) * scale)
        im = ax.imshow(grid, cmap="viridis", interpolation="nearest", norm=norm)
        ax.set_xticks(range(len(cpus)))
        ax.set_yticks(range(len(cpus)))
        fs = 8 if len(cpus) <= 16 else 5
        ax.set_xticklabels(cpus, fontsize=fs)
        ax.set_yticklabels(cpus, fontsize=fs)
        ax.set_xlabel("to core")
        ax.set_ylabel("from core")
        ax.set_title(f"{proto}: median {fmt_time(med)}")
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("round trip / median of all pairs" if tcg else "round trip (us)")
        if len(cpus) <= 8:
            lo, hi = im.get_clim()
            for i in range(len(cpus)):
                for j in range(len(cpus)):
                    if m[i][j] is not None:
                        light = hi > lo and im.norm(grid[i][j]) > 0.6
                        ax.text(j, i, f"{grid[i][j]:.2g}", ha="center", va="center",
                                fontsize=7, color="k" if light else "w")
    title = (f"Core-to-core round trip, {system} on {shape} ({accel.upper()}"
             + (": relative to the median pair)" if tcg else ")"))
    fig.suptitle(title, fontsize=11)
    _footer(fig, f"{describe_machine(data.machines().get(shape))}; {qemu_desc(data, accel)}; "
                 f"commit {commit}")
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    name = f"pingpong_matrix_{_slug(system)}_{_slug(shape)}_{accel}.png"
    return (title, _save(plt, fig, plot_dir, name))


# -- the report ----------------------------------------------------------------------------------
TCG_NOTE = ("Under TCG (QEMU's software emulation) cycle counts and times are not hardware "
            "truth: every virtual CPU is a host thread, here sharing the host's cores. Read TCG "
            "figures as ratios and scaling curves (the plots show them that way); only KVM or "
            "real hardware gives absolute numbers.")


def write_report(data, out_dir, plots=None, plot_problem=None):
    """Write out_dir/report.md; returns its path."""
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_report(data, plots or [], plot_problem))
    return path


def render_report(data, plots, plot_problem=None):
    run = data.run
    out = ["# Atoll benchmark report", ""]
    out.append(f"- commit: `{data.commit()}`")
    if run.get("date"):
        out.append(f"- date: {run['date']}")
    if run.get("host"):
        out.append(f"- host: {run['host']}")
    out.append(f"- QEMU: {qemu_desc(data)}")
    accels = data.accels() or run.get("accels") or []
    out.append(f"- accelerators: {', '.join(accels) or '-'}")
    for note in run.get("notes", []):
        out.append(f"- note: {note}")
    out += _provenance_notes(data)
    out.append("- host load: the 1-minute load average before and after each boot, and how "
               "many other tasks were runnable just before it (busy), are in [Points](#points); "
               "anything else running on the host shows up in the numbers")
    out.append("")
    if any(a != "kvm" for a in accels):
        out += [f"> {TCG_NOTE}", ""]

    out += ["## Commands", ""]
    if run.get("command"):
        out += ["The sweep:", "", "```sh", run["command"], "```", ""]
    out += ["Redraw the plots and this report from the JSON lines: "
            "`tools/bench report --out DIR`. The QEMU command of every point is in "
            "[Points](#points).", ""]

    out += _coverage_section(data)
    out += _machines_section(data)
    out += _pingpong_section(data)
    out += _unmap_section(data)
    out += _boot_section(data)
    out += _local_section(data)
    out += _store_section(data)
    out += cost.section(data.cost, md_table)
    out += _other_section(data)

    out += ["## Plots", ""]
    if plot_problem:
        out += [f"No plots: {plot_problem}.", ""]
    elif not plots:
        out += ["No plots (no results).", ""]
    for title, name in plots:
        out += [f"### {title}", "", f"![{title}](plots/{name})", ""]

    out += _points_section(data)
    if data.bad:
        out += ["## Skipped lines", "",
                f"{len(data.bad)} recorded line(s) were not valid records and were skipped:", ""]
        for file, n, line, why in data.bad[:50]:
            where = f"{file}:{n}" if n else file
            out.append(f"- `{where}`: {why}: `{_code(line[:160])}`")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _code(s):
    return str(s).replace("`", "'")


def _coverage_section(data):
    out = ["## Systems and benchmarks", ""]
    cov = {}
    for p in data.points:
        k = (p.get("benchmark", "?"), p.get("system", "?"))
        cov.setdefault(k, {}).setdefault(p["status"], []).append(p)
    if not cov:
        return out + ["No points were run.", ""]
    benches = sorted({k[0] for k in cov})
    systems = sorted({k[1] for k in cov}, key=lambda s: (s != "linux", s))
    rows = []
    for b in benches:
        row = [b]
        for s in systems:
            st = cov.get((b, s), {})
            if not st:
                row.append("-")
                continue
            parts = [f"{len(v)} {k}" for k, v in sorted(st.items())]
            if set(st) == {"missing"}:
                reason = st["missing"][0].get("reason") or "not written yet"
                row.append(f"missing: {reason}")
            else:
                row.append(", ".join(parts))
        rows.append(row)
    out.append(md_table(["benchmark"] + systems, rows))
    out.append("")
    if any(set(v) == {"missing"} for k, v in cov.items()):
        out += ["Systems whose half of a benchmark is missing show no numbers for it; "
                "they appear here as soon as their half is registered in "
                "`tools/atoll_bench.py` (see docs/bench.md).", ""]
    return out


def _machines_section(data):
    out = ["## Machines", ""]
    ms = data.machines()
    if not ms:
        return out + ["None.", ""]
    rows = [[s, describe_machine(ms[s])] for s in data.shapes()]
    out += [md_table(["shape", "machine"], rows), ""]
    return out


def _pingpong_section(data):
    rows = pingpong_summary(data)
    if not rows:
        return []
    out = ["## Ping-pong: core-to-core round trip", "",
           "Median over all core pairs of each pair's median round trip (one message each "
           "way), and in brackets that value divided by the cache-line round trip of the "
           "same machine (the physical floor). `range` is the fastest and slowest pair.", ""]
    protos = sorted({r["protocol"] for r in rows}, key=_proto_order)
    table = {}
    for r in rows:
        table.setdefault((r["system"], r["shape"], r["accel"]), {})[r["protocol"]] = r
    body = []
    for (system, shape, accel), by in table.items():
        pairs = max(r["pairs"] for r in by.values())
        row = [system, shape, accel, str(pairs)]
        for p in protos:
            r = by.get(p)
            row.append(f"{fmt_time(r['median'])} ({fmt_ratio(r['ratio_to_cacheline'])})"
                       if r else "-")
        body.append(row)
    out += [md_table(["system", "shape", "accel", "pairs"] + protos, body), ""]
    body = []
    for (system, shape, accel), by in table.items():
        row = [system, shape, accel]
        for p in protos:
            r = by.get(p)
            row.append(f"{fmt_time(r['min'])} ({r['min_pair']}) - {fmt_time(r['max'])} "
                       f"({r['max_pair']})" if r else "-")
        body.append(row)
    out += ["Range over pairs (fastest pair - slowest pair):", "",
            md_table(["system", "shape", "accel"] + [f"{p} range" for p in protos], body), ""]
    cyc = {(r["system"], r["shape"], r["accel"], r["protocol"]): r
           for r in pingpong_summary(data, unit="cycles")}
    if cyc:
        body = []
        for (system, shape, accel), by in table.items():
            row = [system, shape, accel]
            for p in protos:
                r = cyc.get((system, shape, accel, p))
                row.append(f"{r['median']:.0f}" if r else "-")
            body.append(row)
        out += ["The same medians in TSC cycles:", "",
                md_table(["system", "shape", "accel"] + protos, body), ""]
    return out


def _unmap_section(data):
    rows = unmap_rows(data)
    if not rows:
        return []
    out = ["## Unmap: TLB shootdown latency", "",
           "Median latency of one call with a thread pinned to each of N cores, all having "
           "touched the page, and in brackets that value divided by the same series' value "
           "at its smallest N (N=1: no other core to interrupt).", ""]
    series = {}
    for r in rows:
        series.setdefault((r["system"], r["accel"], r["op"]), {}).setdefault(r["shape"], {})[
            r["cores"]] = r
    for (system, accel, op), by_shape in series.items():
        shapes = [s for s in data.shapes() if s in by_shape]
        cores = sorted({n for v in by_shape.values() for n in v})
        body = []
        for n in cores:
            row = [str(n)]
            for s in shapes:
                r = by_shape[s].get(n)
                row.append(f"{fmt_time(r['median'])} ({fmt_ratio(r['ratio'])})" if r else "")
            body.append(row)
        out += [f"### {system} `{op}`, {accel}", "",
                md_table(["N"] + shapes, body), ""]
    return out


def _store_section(data):
    tput = store_series(data)
    if not tput:
        return []
    lat = store_series(data, "latency")
    out = ["## Store: throughput and latency against cores", "",
           "Operations per second (every thread's or client's) and, in brackets, the median "
           "latency of one operation, by read fraction; Atoll: the replicated store by placement "
           "(docs/store.md), Linux: one process's hash map by lock. See docs/bench.md.", ""]
    groups = {}
    for k, pts in tput.items():
        groups.setdefault(k[:3], {})[(k[3], k[4])] = dict(pts)
    for (system, shape, accel), cols in groups.items():
        names = sorted(cols, key=lambda c: (c[0], -(c[1] or 0)))
        cores = sorted({n for v in cols.values() for n in v})
        body = []
        for n in cores:
            row = [str(n)]
            for c in names:
                v = cols[c].get(n)
                la = dict(lat.get((system, shape, accel) + c, [])).get(n)
                row.append(f"{v:,.0f} ({fmt_time(la)})" if v is not None else "")
            body.append(row)
        out += [f"### {system} on {shape}, {accel}", "",
                md_table(["N"] + [f"{c[0]} {c[1]}%" for c in names], body), ""]
    return out


def _boot_section(data):
    rows = boot_rows(data)
    if not rows:
        return []
    out = ["## Boot: time to the first user program", "",
           "`kernel_to_all_cores`: from the kernel's first instruction (Linux: the start of its "
           "clock, after the bzImage decompressed itself) to every core up - the one span both "
           "systems report; `kernel_to_init`: Linux's clock when it starts /init; "
           "`smp_bringup`: Linux starting the other cores; `reset_to_init`: TSC at /init (QEMU "
           "starts it at 0 at reset, so this includes firmware and kernel loading). See "
           "docs/bench.md.", ""]
    body = []
    for r in rows:
        body.append([r["system"], r["shape"], r["accel"], fmt_time(r.get("kernel_to_all_cores")),
                     fmt_time(r.get("kernel_to_init")),
                     fmt_time(r.get("smp_bringup")), fmt_time(r.get("boottime_at_init")),
                     fmt_time(r.get("reset_to_init")),
                     f"{r['tsc_mhz']:.0f}" if _is_num(r.get("tsc_mhz")) else "-"])
    out += [md_table(["system", "shape", "accel", "kernel_to_all_cores", "kernel_to_init",
                      "smp_bringup", "boottime_at_init", "reset_to_init", "TSC MHz"], body), ""]
    return out


def _local_section(data):
    rows = local_rows(data)
    if not rows:
        return []
    out = ["## Local: same-core round trip between two address spaces", "",
           "Atoll: a local message (LMP) between two domains on one core (`lmp`; `lmp_cap` "
           "carries a capability), from user/lmpbench, whose spread is median - min. Linux: "
           "two processes pinned to one core (pipe, eventfd, futex). Median over the cores "
           "measured, and that value in cycles divided by Linux's pipe round trip on the same "
           "machine.", ""]
    body = [[r["system"], r["shape"], r["accel"], r["protocol"], str(r["cores"]),
             fmt_time(r["ns"]), f"{r['cycles']:.0f}" if r["cycles"] is not None else "-",
             fmt_ratio(r["ratio_to_linux_pipe"])] for r in rows]
    out += [md_table(["system", "shape", "accel", "protocol", "cores", "round trip", "cycles",
                      "x Linux pipe"], body), ""]
    return out


def _fmt_params(p):
    if not isinstance(p, dict) or not p:
        return ""
    return " ".join(f"{k}={v}" for k, v in sorted(p.items()))


def _other_section(data):
    """A generic table for benchmarks without their own section (new halves)."""
    recs = [r for r in data.records if r["benchmark"] not in KNOWN_BENCHMARKS]
    if not recs:
        return []
    out = ["## Other results", ""]
    body = []
    for r in recs:
        v = fmt_time(r["median"]) if r["unit"] == "ns" else f"{r['median']:.6g} {r['unit']}"
        sp = fmt_time(r["spread"]) if r["unit"] == "ns" else f"{r['spread']:.6g}"
        body.append([r["benchmark"], r["system"], r["shape"], r["accel"], r["metric"],
                     _fmt_params(r.get("params")), v, sp, str(r["samples"])])
    out += [md_table(["benchmark", "system", "shape", "accel", "metric", "params", "median",
                      "spread", "samples"], body), ""]
    return out


def _load(p):
    v, out = p.get("host_load"), ""
    if isinstance(v, list) and all(_is_num(x) for x in v) and v:
        out = " -> ".join(f"{x:.1f}" for x in v)
    if _is_num(p.get("host_busy")):
        out += f" (busy {p['host_busy']:g})"
    return out.strip()


def _point_key(p):
    return p.get("point") or f"{p.get('system')}-{p.get('shape')}-{p.get('accel')}"


def point_hosts(data):
    """{host: number of points} over the points that ran (status lines with a host)."""
    seen = {}
    for p in data.points:
        if isinstance(p.get("host"), str):
            seen.setdefault(_point_key(p), p["host"])
    out = {}
    for h in seen.values():
        out[h] = out.get(h, 0) + 1
    return out


def shared_points(data):
    """{timed point: [points that ran on its host at the same time]}."""
    out = {}
    for p in data.points:
        if isinstance(p.get("shared_host_with"), list) and p["shared_host_with"]:
            out.setdefault(_point_key(p), p["shared_host_with"])
    return out


def _provenance_notes(data):
    """Where the points ran, from which commits, and whether timed points had
    the host to themselves: the report may merge points from many hosts
    and runs (tools/bench --slurm, resumed sweeps)."""
    out = []
    hosts = point_hosts(data)
    if len(hosts) > 1:
        out.append(f"- hosts: the points ran on {len(hosts)} hosts ("
                   + ", ".join(f"{h}: {n}" for h, n in sorted(hosts.items()))
                   + "); the host of each point is in [Points](#points). Compare absolute "
                   "figures only between points of the same host")
    elif hosts:
        out.append(f"- points ran on: {next(iter(hosts))}")
    commits = {}
    for r in list(data.records) + [p for p in data.points if p.get("status") != "not_run"]:
        c = r.get("commit")
        if isinstance(c, str):
            commits.setdefault(c, set()).add(_point_key(r) if "point" in r or "status" in r
                                             else (r.get("system"), r.get("shape"),
                                                   r.get("accel")))
    if len(commits) > 1:
        out.append("- note: the points come from " + str(len(commits)) + " commits ("
                   + ", ".join(f"`{c}`: {len(v)} points" for c, v in sorted(commits.items()))
                   + ")")
    shared = shared_points(data)
    if shared:
        out.append("- note: timed points shared their host with other points while they ran "
                   "(their figures include that load): " + "; ".join(
                       f"{p} with {', '.join(o)}" for p, o in sorted(shared.items())))
    retried = sorted({_point_key(p) for p in data.points if p.get("attempts", 1) > 1})
    if retried:
        out.append(f"- note: {len(retried)} point(s) failed once and were retried: "
                   + ", ".join(retried))
    missing = sorted({_point_key(p) for p in data.points if p.get("status") == "not_run"})
    if missing:
        out.append(f"- note: {len(missing)} point(s) have no result yet: "
                   + ", ".join(missing) + " (see [Points](#points))")
    return out


def _points_section(data):
    out = ["## Points", ""]
    if not data.points:
        return out + ["None.", ""]
    body = []
    many_hosts = len(point_hosts(data)) > 1
    shared = shared_points(data)
    for p in data.points:
        if p["status"] == "missing":      # listed under "Systems and benchmarks"
            continue
        reason = p.get("reason") or ""
        status = p["status"]
        if p.get("attempts", 1) > 1:
            status += " (retried)"
        if _point_key(p) in shared:
            status += " (shared host)"
        row = [p.get("system", "?"), p.get("shape", "?"), p.get("accel", "?"),
               p.get("benchmark", "?"), status, str(p.get("results", "")),
               f"{p['wall_s']:.0f} s" if _is_num(p.get("wall_s")) else "", _load(p)]
        if many_hosts:
            row.append(str(p.get("host", "")))
        body.append(row + [reason.splitlines()[0][:120] if reason else ""])
    out += [md_table(["system", "shape", "accel", "benchmark", "status", "results",
                      "boot wall", "host load"] + (["host"] if many_hosts else [])
                     + ["reason"], body), ""]
    failed = [p for p in data.points if p["status"] == "failed"]
    if failed:
        out += ["### Failed points", ""]
        seen = set()
        for p in failed:
            k = (p.get("system"), p.get("shape"), p.get("accel"), p.get("reason"),
                 p.get("console_tail"))
            names = [q.get("benchmark", "?") for q in failed if (
                q.get("system"), q.get("shape"), q.get("accel"), q.get("reason"),
                q.get("console_tail")) == k]
            if k in seen:
                continue
            seen.add(k)
            out.append(f"**{p.get('system')} on {p.get('shape')}, {p.get('accel')}** "
                       f"({', '.join(names)}): {p.get('reason') or 'no reason recorded'}")
            out.append("")
            if p.get("log"):
                out += [f"Console log: `{p['log']}`", ""]
            if p.get("console_tail"):
                out += ["Console tail:", "", "```", p["console_tail"].replace("```", "'''"),
                        "```", ""]
    cmds = {}
    for p in data.points:
        if p.get("command"):
            cmds.setdefault(p["command"], []).append(
                f"{p.get('system')} {p.get('shape')} {p.get('accel')}")
    if cmds:
        out += ["### The command of each point", "",
                "Linux: the QEMU command. Atoll: the `tools/run` command; the words after "
                "`--` are typed at the shell's prompts.", ""]
        for cmd, who in cmds.items():
            out += [f"{sorted(set(who))[0]}:", "", "```sh", cmd, "```", ""]
    return out
