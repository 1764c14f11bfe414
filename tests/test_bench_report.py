"""tools/bench: parsing the guests' @bench lines, judging points, aggregating,
plotting, the report, machine shapes, the initramfs and the Linux QEMU
command - all on recorded JSON lines and canned consoles, so nothing here
needs Debian's Linux kernel or boots anything. The single end-to-end test
(2 CPUs, Linux, ping-pong, tiny counts) runs only when linux-image-amd64 is
installed (tools/install-deps --bench).
"""
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import atoll_bench as ab  # noqa: E402
import atoll_bench_linux as abl  # noqa: E402
import atoll_bench_report as rep  # noqa: E402
import atoll_costmodel  # noqa: E402
import atoll_run  # noqa: E402
from atoll_run import ConfigError, GiB, Machine, MiB, NumaNode  # noqa: E402


# -- recorded guest output --------------------------------------------------------------------
def res(bench, metric, unit, median, spread=1.0, samples=5, **params):
    return {"benchmark": bench, "metric": metric, "unit": unit, "value": median,
            "samples": samples, "median": median, "spread": spread, "p25": median,
            "p75": median + spread, "min": median, "max": median + spread, "mean": median,
            "params": params}


def line(obj):
    return "@bench " + json.dumps(obj, separators=(",", ":"))


# Real lines from a 2-CPU TCG boot (Linux 6.1), shortened to the interesting ones.
RECORDED = """\
SeaBIOS (version 1.16.2-debian-1.16.2-1)
Booting from ROM..
@bench {"event":"start","benchmark":"init","system":"linux","kernel":"6.1.0-56-amd64","cpus":2,"nodes":1,"benchmarks":"boot,pingpong,unmap"}
@bench {"benchmark":"boot","metric":"kernel_to_init","unit":"ns","value":1.878375e+09,"samples":1,"median":1.878375e+09,"spread":0,"p25":1.878375e+09,"p75":1.878375e+09,"min":1.878375e+09,"max":1.878375e+09,"mean":1.878375e+09,"params":{}}
@bench {"benchmark":"boot","metric":"smp_bringup","unit":"ns","value":101664000,"samples":1,"median":101664000,"spread":0,"p25":101664000,"p75":101664000,"min":101664000,"max":101664000,"mean":101664000,"params":{}}
@bench {"benchmark":"boot","metric":"tsc_mhz","unit":"MHz","value":2091.14508,"samples":1,"median":2091.14508,"spread":0,"p25":2091.14508,"p75":2091.14508,"min":2091.14508,"max":2091.14508,"mean":2091.14508,"params":{}}
@bench {"event":"done","benchmark":"boot","status":0,"wall_ns":51000000}
@bench {"event":"info","benchmark":"pingpong","cpus":2,"pairs":"half","protocols":"cacheline,pipe,eventfd,futex","samples":5,"batch":10}
@bench {"benchmark":"pingpong","metric":"round_trip","unit":"cycles","value":273,"samples":5,"median":273,"spread":8.4,"p25":266.7,"p75":275.1,"min":266.7,"max":16846.2,"mean":3585.54,"params":{"protocol":"cacheline","src":0,"dst":1,"batch":10}}
@bench {"benchmark":"pingpong","metric":"round_trip","unit":"ns","value":220,"samples":5,"median":220,"spread":36,"p25":219,"p75":255,"min":218,"max":11882,"mean":2558.8,"params":{"protocol":"cacheline","src":0,"dst":1,"batch":10}}
@bench {"benchmark":"pingpong","metric":"round_trip","unit":"ns","value":51651,"samples":5,"median":51651,"spread":8269,"p25":48281,"p75":56550,"min":46512,"max":87253,"mean":58049.4,"params":{"protocol":"pipe","src":0,"dst":1,"batch":10}}
@bench {"benchmark":"pingpong","metric":"round_trip","unit":"ns","value":46688,"samples":5,"median":46688,"spread":4688,"p25":43065,"p75":47753,"min":41980,"max":66016,"mean":49100.4,"params":{"protocol":"eventfd","src":0,"dst":1,"batch":10}}
@bench {"event":"done","benchmark":"pingpong","status":0,"wall_ns":2000000000}
@bench {"event":"info","benchmark":"unmap","cpus":2,"ops":"munmap,mprotect","iters":10,"pages":1}
@bench {"benchmark":"unmap","metric":"latency","unit":"ns","value":56900,"samples":10,"median":56900,"spread":17567.5,"p25":51925,"p75":69492.5,"min":47460,"max":267860,"mean":83310,"params":{"op":"munmap","cores":1,"pages":1}}
@bench {"benchmark":"unmap","metric":"latency","unit":"ns","value":26595,"samples":10,"median":26595,"spread":4580,"p25":24832.5,"p75":29412.5,"min":24010,"max":96330,"mean":33613,"params":{"op":"munmap","cores":2,"pages":1}}
@bench {"event":"done","benchmark":"unmap","status":0,"wall_ns":900000000}
@bench {"event":"end","benchmark":"init","status":0}
"""


# -- parsing ------------------------------------------------------------------------------------
def test_parse_recorded_console():
    results, events, malformed = rep.parse_console(RECORDED)
    assert malformed == []
    assert len(results) == 9
    assert [e["event"] for e in events] == ["start", "done", "info", "done", "info", "done",
                                            "end"]
    assert results[0]["metric"] == "kernel_to_init"
    assert results[0]["median"] == pytest.approx(1.878375e9)


@pytest.mark.parametrize("bad, why", [
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":1,"samples":1,"median":1',
     "bad JSON"),
    ("@bench [1, 2, 3]", "not a JSON object"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":1,"samples":1,"median":1}',
     "'spread'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":"1","samples":1,"median":1,'
     '"spread":0}', "'value'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":true,"samples":1,"median":1,'
     '"spread":0}', "'value'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":1,"samples":0,"median":1,'
     '"spread":0}', "'samples'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":1,"samples":1,"median":1,'
     '"spread":-2}', "negative"),
    ('@bench {"benchmark":"","metric":"m","unit":"ns","value":1,"samples":1,"median":1,'
     '"spread":0}', "'benchmark'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":1,"samples":1,"median":1,'
     '"spread":0,"params":[1]}', "'params'"),
    ('@bench {"benchmark":"x","metric":"m","unit":"ns","value":NaN,"samples":1,"median":1,'
     '"spread":0}', "'value'"),
    ('@bench {"event":5}', "'event'"),
    ('[   12.345] random: crng init done@bench {"benchmark":"x"}', "middle of a line"),
])
def test_parse_malformed_lines(bad, why):
    good = line(res("pingpong", "round_trip", "ns", 10.0, protocol="pipe", src=0, dst=1))
    results, events, malformed = rep.parse_console(f"noise\n{bad}\n{good}\n")
    assert len(results) == 1, "the good line after a bad one still counts"
    assert len(malformed) == 1
    assert malformed[0][0] == bad
    assert why in malformed[0][1]


def test_parse_strips_carriage_returns_and_indentation():
    text = "  " + line(res("boot", "kernel_to_init", "ns", 5.0)) + "\r\n"
    results, _, malformed = rep.parse_console(text)
    assert malformed == [] and results[0]["median"] == 5.0


def test_check_result_full_needs_context():
    r = res("unmap", "latency", "ns", 3.0, op="munmap", cores=2)
    assert rep.check_result(r) is None
    assert "'system'" in rep.check_result(r, full=True)
    r.update(system="linux", shape="2cpu", accel="tcg", commit="abc")
    assert rep.check_result(r, full=True) is None


def test_console_tail():
    text = "\n".join(f"line {i}" for i in range(100)) + "\n\n\n"
    tail = rep.console_tail(text, 5)
    assert tail.splitlines() == [f"line {i}" for i in range(95, 100)]


# -- judging one boot ----------------------------------------------------------------------------
ALL = ["boot", "pingpong", "unmap"]


def test_judge_all_ok():
    results, info = ab.judge(ALL, RECORDED, 0)
    assert {b: s for b, (s, _) in info["benchmarks"].items()} == {b: "ok" for b in ALL}
    assert info["point_reason"] is None
    assert info["guest"]["kernel"] == "6.1.0-56-amd64"
    assert len(results) == 9


def test_judge_timeout_keeps_partial_results():
    lines = RECORDED.splitlines()
    cut = next(i for i, ln in enumerate(lines) if '"protocol":"pipe"' in ln)
    console = "\n".join(lines[:cut + 1]) + "\n[  200.1] watchdog: BUG: soft lockup - CPU#1 stuck\n"
    results, info = ab.judge(ALL, console, atoll_run.EXIT_TIMEOUT,
                             "timed out after 30 s: QEMU killed", timed_out=True)
    st = info["benchmarks"]
    assert st["boot"] == ("ok", None)
    assert st["pingpong"][0] == "partial"
    assert "timed out after 30 s" in st["pingpong"][1]
    assert st["unmap"][0] == "failed" and "timed out" in st["unmap"][1]
    assert any(r["params"].get("protocol") == "pipe" for r in results)


def test_judge_guest_error_event():
    console = "\n".join([
        line({"event": "start", "benchmark": "init", "system": "linux", "cpus": 2}),
        line({"event": "error", "benchmark": "unmap", "reason": "mmap: Cannot allocate memory"}),
        line({"event": "error", "benchmark": "unmap", "reason": "exited with status 1"}),
        line({"event": "done", "benchmark": "unmap", "status": 1}),
        line(res("pingpong", "round_trip", "ns", 10.0, protocol="pipe", src=0, dst=1)),
        line({"event": "done", "benchmark": "pingpong", "status": 0}),
        line({"event": "end", "benchmark": "init", "status": 1}),
    ])
    _, info = ab.judge(["pingpong", "unmap"], console, 1)
    assert info["benchmarks"]["pingpong"] == ("ok", None)
    st, why = info["benchmarks"]["unmap"]
    assert st == "failed"
    assert "Cannot allocate memory" in why and "exited with status 1" in why


def test_judge_garbage_console():
    console = "\x1b[2J garbage \ufffd\ufffd\nKernel panic - not syncing: Attempted to kill init!\n"
    results, info = ab.judge(ALL, console, atoll_run.EXIT_NO_STATUS)
    assert results == []
    for b in ALL:
        st, why = info["benchmarks"][b]
        assert st == "failed"
        assert "without reporting a status" in why
        assert "no @bench line" in why


def test_judge_only_malformed_lines():
    console = '@bench {"benchmark":"pingpong","metric":\n@bench nonsense\n'
    _, info = ab.judge(["pingpong"], console, 0)
    st, why = info["benchmarks"]["pingpong"]
    assert st == "failed" and "2 malformed" in why
    assert len(info["malformed"]) == 2


def test_judge_failure_status_without_errors_is_partial():
    """Atoll's shell ends with status 1 when a command failed: what came
    before still counts, but the benchmark is not ok."""
    console = line(res("local", "round_trip", "cycles", 2e4, protocol="lmp", core=0)) + \
        "\nrun: ERR_TIMEOUT (timed out)\n"
    _, info = ab.judge(["local"], console, 1)
    assert info["benchmarks"]["local"] == ("partial", "the guest reported failure (exit status 1)")


def test_judge_qemu_failed_to_start():
    _, info = ab.judge(["boot"], "", atoll_run.EXIT_USAGE,
                       "QEMU failed to start:\nqemu-system-x86_64: -smp 999: too many")
    st, why = info["benchmarks"]["boot"]
    assert st == "failed" and "too many" in why


def test_judge_missing_program_reported_by_init():
    console = "\n".join([
        line({"event": "error", "benchmark": "frobnicate",
              "reason": "no such benchmark program /bin/frobnicate in the initramfs"}),
        line({"event": "end", "benchmark": "init", "status": 1}),
    ])
    _, info = ab.judge(["frobnicate"], console, 1)
    st, why = info["benchmarks"]["frobnicate"]
    assert st == "failed" and "no such benchmark program" in why


# -- recorded results folders ----------------------------------------------------------------------
CTX = {"schema": 1, "commit": "0123456789ab", "run": "2025-01-01T00:00:00Z",
       "qemu": "QEMU 7.2.22, q35, -cpu max"}


def machine_of(smp, nodes=0):
    m = Machine(smp=smp, numa=nodes, accel="tcg").validate()
    return ab.machine_dict(m)


def shape_records(system, shape, smp, accel="tcg", nodes=0, scale=1.0, pairs="half"):
    """A plausible full set of records for one point."""
    base = dict(CTX, system=system, shape=shape, machine=machine_of(smp, nodes), accel=accel)
    out = []
    protos = {"cacheline": 200.0, "pipe": 50000.0, "eventfd": 45000.0, "futex": 40000.0}
    for proto, v in protos.items():
        for s in range(smp):
            for d in range(smp):
                if s == d or (pairs == "half" and d < s):
                    continue
                cross = nodes and (s < smp // 2) != (d < smp // 2)
                val = v * scale * (1.5 if cross else 1.0)
                for unit, f in (("ns", 1.0), ("cycles", 2.1)):
                    out.append(dict(base, **res("pingpong", "round_trip", unit, val * f,
                                                protocol=proto, src=s, dst=d, batch=10)))
    for op in ("munmap", "mprotect"):
        for n in range(1, smp + 1):
            out.append(dict(base, **res("unmap", "latency", "ns", 5000.0 * n * scale,
                                        op=op, cores=n, pages=1)))
    for metric, unit, v in (("kernel_to_init", "ns", 2e9 * smp ** 0.5),
                            ("smp_bringup", "ns", 5e7 * smp), ("tsc_mhz", "MHz", 2100.0),
                            ("reset_to_init", "ns", 5e9), ("boottime_at_init", "ns", 2.1e9)):
        out.append(dict(base, **res("boot", metric, unit, v * scale, samples=1, spread=0.0)))
    return out


def point(system, shape, smp, bench, status, accel="tcg", **kw):
    return dict(CTX, system=system, shape=shape, machine=machine_of(smp), accel=accel,
                benchmark=bench, status=status, **kw)


@pytest.fixture
def results_dir(tmp_path):
    """A results folder as a sweep over 2cpu, 4cpu-2node and a failed 8cpu writes it,
    with malformed lines mixed in."""
    d = tmp_path / "bench"
    d.mkdir()
    recs = shape_records("linux", "2cpu", 2) + shape_records("linux", "4cpu-2node", 4, nodes=2)
    with open(d / "results.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
        f.write('{"benchmark": "pingpong", "metric": \n')                 # truncated
        f.write("[1, 2]\n")                                                # not an object
        f.write(json.dumps(res("unmap", "latency", "ns", 1.0)) + "\n")    # no context
        f.write("\n")
    pts = []
    for shape, smp in (("2cpu", 2), ("4cpu-2node", 4)):
        for b in ALL:
            pts.append(point("linux", shape, smp, b, "ok", results=10, wall_s=12.0,
                             command=f"qemu-system-x86_64 -smp {smp} -kernel /boot/vmlinuz",
                             host_load=[0.5, 1.2]))
            pts.append(point("atoll", shape, smp, b, "missing",
                             reason="Atoll's half is not written yet"))
    for b in ALL:
        pts.append(point("linux", "8cpu", 8, b, "failed",
                         reason="timed out after 380 s: QEMU killed (the guest hung)",
                         console_tail="[    3.1] smpboot: CPU 7 is stuck\nSTUCK-MARKER",
                         log="logs/linux-8cpu-tcg.log", wall_s=380.0,
                         command="qemu-system-x86_64 -smp 8 -kernel /boot/vmlinuz"))
    with open(d / "points.jsonl", "w") as f:
        for p in pts:
            f.write(json.dumps(p) + "\n")
        f.write("not json at all\n")
    run = {"schema": 1, "command": "tools/bench --shapes '2 4n2 8' --accel tcg",
           "commit": "0123456789ab", "date": "2025-01-01T00:00:00Z", "host": "test host",
           "qemu": "QEMU 7.2.22", "accels": ["tcg"],
           "notes": ["the host has 2 CPUs"],
           "shapes": [{"name": "2cpu"}, {"name": "4cpu-2node"}, {"name": "8cpu"}]}
    (d / "run.json").write_text(json.dumps(run))
    return d


def test_load_skips_malformed_lines(results_dir):
    data = rep.Data.load(str(results_dir))
    assert len(data.records) == len(shape_records("linux", "2cpu", 2)) + len(
        shape_records("linux", "4cpu-2node", 4, nodes=2))
    reasons = [b[3] for b in data.bad]
    assert any("bad JSON" in r for r in reasons)
    assert any("not a JSON object" in r for r in reasons)
    assert any("'system'" in r for r in reasons)
    assert len(data.bad) == 4
    assert data.shapes() == ["2cpu", "4cpu-2node", "8cpu"]
    assert data.systems() == ["linux", "atoll"]
    assert data.accels() == ["tcg"]
    assert data.commit() == "0123456789ab"


def test_load_missing_folder_is_empty(tmp_path):
    data = rep.Data.load(str(tmp_path / "nothing"))
    assert data.records == [] and data.points == [] and data.bad == []


def test_pingpong_summary(results_dir):
    data = rep.Data.load(str(results_dir))
    rows = {(r["shape"], r["protocol"]): r for r in rep.pingpong_summary(data)}
    r = rows[("2cpu", "cacheline")]
    assert r["pairs"] == 1 and r["median"] == 200.0 and r["ratio_to_cacheline"] == 1.0
    assert rows[("2cpu", "pipe")]["ratio_to_cacheline"] == pytest.approx(250.0)
    r = rows[("4cpu-2node", "cacheline")]
    assert r["pairs"] == 6                         # 4 choose 2 (pairs=half)
    assert r["min"] == 200.0 and r["max"] == 300.0  # the cross-node pairs cost 1.5x
    assert r["max_pair"] in ("0->2", "0->3", "1->2", "1->3")
    assert r["median"] == pytest.approx(300.0)      # 4 of 6 pairs cross the nodes
    cyc = {(r["shape"], r["protocol"]): r for r in rep.pingpong_summary(data, unit="cycles")}
    assert cyc[("2cpu", "cacheline")]["median"] == pytest.approx(420.0)
    # Order: shapes in sweep order, protocols cache line first.
    order = [(r["shape"], r["protocol"]) for r in rep.pingpong_summary(data)]
    assert order[:4] == [("2cpu", p) for p in rep.PINGPONG_PROTOCOLS]


def test_pingpong_matrix_mirrors_half_pairs(results_dir):
    data = rep.Data.load(str(results_dir))
    cpus, m = rep.pingpong_matrix(data, "linux", "4cpu-2node", "tcg", "pipe")
    assert cpus == [0, 1, 2, 3]
    assert m[0][0] is None
    assert m[0][1] == m[1][0] == 50000.0
    assert m[3][0] == m[0][3] == 75000.0
    assert rep.pingpong_matrix(data, "linux", "4cpu-2node", "tcg", "nope") == ([], [])


def test_pingpong_matrix_all_pairs_keeps_direction():
    recs = [dict(CTX, system="linux", shape="2cpu", accel="tcg",
                 **res("pingpong", "round_trip", "ns", v, protocol="pipe", src=s, dst=d))
            for s, d, v in ((0, 1, 10.0), (1, 0, 30.0))]
    cpus, m = rep.pingpong_matrix(rep.Data(records=recs), "linux", "2cpu", "tcg", "pipe")
    assert m == [[None, 10.0], [30.0, None]]


def test_unmap_rows_and_series(results_dir):
    data = rep.Data.load(str(results_dir))
    rows = [r for r in rep.unmap_rows(data) if r["shape"] == "4cpu-2node" and r["op"] == "munmap"]
    assert [r["cores"] for r in rows] == [1, 2, 3, 4]
    assert [r["ratio"] for r in rows] == [1.0, 2.0, 3.0, 4.0]
    series = rep.unmap_series(data)
    assert ("linux", "2cpu", "tcg", "mprotect") in series
    # A system that reports a protocol gets it in the label.
    recs = [dict(CTX, system="atoll", shape="2cpu", accel="tcg",
                 **res("unmap", "latency", "ns", 9.0, op="unmap", protocol="multicast",
                       cores=2))]
    assert list(rep.unmap_series(rep.Data(records=recs))) == [
        ("atoll", "2cpu", "tcg", "unmap/multicast")]


def test_boot_rows(results_dir):
    data = rep.Data.load(str(results_dir))
    rows = rep.boot_rows(data)
    assert [r["shape"] for r in rows] == ["2cpu", "4cpu-2node"]
    assert rows[1]["smp_bringup"] == pytest.approx(2e8)
    assert rows[0]["tsc_mhz"] == 2100.0


def test_formatting():
    assert rep.fmt_time(850) == "850 ns"
    assert rep.fmt_time(12345) == "12.3 us"
    assert rep.fmt_time(4.56e6) == "4.56 ms"
    assert rep.fmt_time(1.234e9) == "1.23 s"
    assert rep.fmt_time(None) == "-"
    assert rep.fmt_ratio(2.5) == "2.5x" and rep.fmt_ratio(None) == "-"
    assert rep.md_table(["a", "b"], [["1|2", "x\ny"]]).splitlines()[2] == "| 1\\|2 | x y |"
    m = machine_of(8, 2)
    assert rep.describe_machine(m) == ("8 CPUs, 2 NUMA nodes (0-3 512M, 4-7 512M), 1G memory, "
                                       "q35")
    assert rep.describe_machine({}) == "unknown machine"


# -- plots and the report ------------------------------------------------------------------------------
def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_plots(results_dir, tmp_path):
    data = rep.Data.load(str(results_dir))
    plot_dir = tmp_path / "plots"
    plots, problem = rep.plot_all(data, str(plot_dir))
    assert problem is None
    names = sorted(n for _, n in plots)
    assert names == sorted([
        "unmap_latency_tcg.png", "pingpong_protocols_tcg.png", "boot_tcg.png",
        "pingpong_matrix_linux_2cpu_tcg.png", "pingpong_matrix_linux_4cpu-2node_tcg.png"])
    for n in names:
        assert _is_png(plot_dir / n)
    # TCG figures are ratios: their titles say so.
    titles = dict((n, t) for t, n in plots)
    assert "scaling" in titles["unmap_latency_tcg.png"]
    assert "ratio" in titles["pingpong_protocols_tcg.png"]


def test_plots_kvm_absolute(tmp_path):
    recs = shape_records("linux", "2cpu", 2, accel="kvm")
    plots, problem = rep.plot_all(rep.Data(records=recs), str(tmp_path))
    titles = {n: t for t, n in plots}
    assert "unmap_latency_kvm.png" in titles
    assert "ratio" not in titles["pingpong_protocols_kvm.png"]


def test_plots_without_matplotlib(results_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plots, problem = rep.plot_all(rep.Data.load(str(results_dir)), str(tmp_path))
    assert plots == [] and "python3-matplotlib" in problem
    text = rep.render_report(rep.Data.load(str(results_dir)), plots, problem)
    assert "No plots: matplotlib is not installed" in text


def test_plots_nothing_to_draw(tmp_path):
    plots, problem = rep.plot_all(rep.Data(), str(tmp_path))
    assert plots == [] and problem is None


def test_report(results_dir):
    out = str(results_dir)
    ab.write_outputs(out)
    text = (results_dir / "report.md").read_text()
    # The machine, the commit, the commands, the TCG caveat.
    assert "`0123456789ab`" in text
    assert "tools/bench --shapes '2 4n2 8' --accel tcg" in text
    assert "qemu-system-x86_64 -smp 4 -kernel /boot/vmlinuz" in text
    assert "4 CPUs, 2 NUMA nodes (0-1 512M, 2-3 512M), 1G memory, q35" in text
    assert "not hardware truth" in text
    assert "the host has 2 CPUs" in text
    # Tables.
    assert "## Ping-pong" in text and "## Unmap" in text and "## Boot" in text
    assert "| linux | 4cpu-2node | tcg | 6 | 300 ns (1x) | 75 us (250x)" in text
    assert "| 4 |  | 20 us (4x) |" in text
    # Atoll is missing and says so; the failed point has its reason and console tail.
    assert "missing: Atoll's half is not written yet" in text
    assert "timed out after 380 s" in text and "STUCK-MARKER" in text
    assert "logs/linux-8cpu-tcg.log" in text
    # Skipped lines are listed, and every plot it links exists.
    assert "## Skipped lines" in text and "not json at all" in text
    links = [ln.split("](")[1].rstrip(")") for ln in text.splitlines() if ln.startswith("![")]
    assert len(links) == 5
    for link in links:
        assert _is_png(results_dir / link)


def test_report_empty_folder(tmp_path):
    path = ab.write_outputs(str(tmp_path), plots=True)
    text = open(path).read()
    assert text.startswith("# Atoll benchmark report")
    assert "No points were run." in text and "No plots (no results)." in text


def test_bench_report_command(results_dir, capsys):
    assert ab.main(["report", "--out", str(results_dir), "--no-plots"]) == 0
    assert "No plots: --no-plots" in (results_dir / "report.md").read_text()
    assert ab.main(["report", "--out", str(results_dir / "none")]) == 2


# -- shapes, options, accelerators ---------------------------------------------------------------
@pytest.mark.parametrize("spec, name, smp, nodes, mem", [
    ("2", "2cpu", 2, 0, GiB),
    ("8n2", "8cpu-2node", 8, 2, GiB),
    ("32n4:2G", "32cpu-4node-2G", 32, 4, 2 * GiB),
    ("--smp 6 --mem 1536M --numa-node cpus=0-3,mem=1G --numa-node cpus=4-5,mem=512M",
     "6cpu-2node-uneven-1536M", 6, 2, 1536 * MiB),
    ("--smp 4 --numa 2 --numa-dist 0-1=30", "4cpu-2node-dist", 4, 2, GiB),
    ("--smp 8 --sockets 2 --machine pc", "8cpu-2s4c1t-pc", 8, 0, GiB),
])
def test_parse_shape(spec, name, smp, nodes, mem):
    s = ab.parse_shape(spec)
    assert s.error is None
    assert (s.name, s.machine.smp, len(s.machine.numa), s.machine.mem) == (name, smp, nodes, mem)


def test_parse_shape_invalid_machine_is_a_failed_point_not_an_error():
    s = ab.parse_shape("300")
    assert s.error and "288" in s.error
    s = ab.parse_shape("4n3")
    assert s.error and "does not split" in s.error


@pytest.mark.parametrize("spec", ["x", "8n", "n2", "8:2Q", "--smp 4 --bogus"])
def test_parse_shape_bad_syntax(spec):
    with pytest.raises(ConfigError):
        ab.parse_shape(spec)


def test_parse_shapes_lists_and_unique_names():
    shapes = ab.parse_shapes(["2 4,8n2", "2"])
    assert [s.name for s in shapes] == ["2cpu", "4cpu", "8cpu-2node", "2cpu-2"]


def test_tcg_core_counts():
    assert ab.tcg_core_counts(2) == "1,2"
    assert ab.tcg_core_counts(8) == "1,2,3,4,5,6,7,8"
    assert ab.tcg_core_counts(32) == "1,2,3,4,5,6,7,8,12,16,20,24,28,32"
    assert ab.tcg_core_counts(10) == "1,2,3,4,5,6,7,8,10"


def test_options_defaults_quick_and_overrides():
    m = Machine(smp=16).validate()
    sw = ab.Sweep(shapes=[], systems=[], benchmarks=ALL, accels=["tcg"], out="",
                  overrides=ab.parse_overrides(["pingpong.samples=3", "unmap.ops=munmap"]))
    o = ab.point_options(sw, m, "tcg", ALL)
    assert o["pingpong"]["samples"] == "3" and o["pingpong"]["batch"] == 10
    assert o["unmap"]["ops"] == "munmap" and o["unmap"]["n"].endswith(",12,16")
    assert ab.point_options(sw, m, "kvm", ["unmap"])["unmap"]["iters"] > 50
    sw.quick = True
    o = ab.point_options(sw, m, "tcg", ALL)
    assert o["pingpong"]["pairs"] == "row" and o["unmap"]["n"] == "1,2,16"
    for bad in ("samples=3", "nope.samples=3", "pingpong"):
        with pytest.raises(ConfigError):
            ab.parse_overrides([bad])


def test_resolve_accels(monkeypatch):
    monkeypatch.setattr(atoll_run, "kvm_usable", lambda: False)
    assert ab.resolve_accels("auto") == (["tcg"], [])
    accels, notes = ab.resolve_accels("both")
    assert accels == ["tcg"] and "KVM skipped" in notes[0]
    assert ab.resolve_accels("kvm") == (["kvm"], [])
    monkeypatch.setattr(atoll_run, "kvm_usable", lambda: True)
    assert ab.resolve_accels("auto") == (["kvm"], [])
    assert ab.resolve_accels("both") == (["tcg", "kvm"], [])
    with pytest.raises(ConfigError):
        ab.resolve_accels("hvf")


# -- the sweep, with a fake system plugged in ------------------------------------------------------
class FakeResult:
    def __init__(self, console, status, message=None, timed_out=False):
        self.console, self.status, self.message, self.timed_out = console, status, message, \
            timed_out
        self.stderr = ""


class FakeSystem(ab.System):
    """Answers each shape with a canned console: 2 CPUs fine, 4 CPUs hang."""
    name = "fake"

    def command(self, machine, benchmarks, options):
        return ["fake-qemu", "-smp", str(machine.smp)]

    def run(self, machine, benchmarks, options, timeout, log, echo=False):
        with open(log, "w") as f:
            f.write("log\n")
        if machine.smp == 4:
            return FakeResult("booting...\n[ 9.9] rcu: INFO: rcu_preempt self-detected stall\n",
                              atoll_run.EXIT_TIMEOUT, f"timed out after {timeout:g} s: QEMU "
                              "killed", True)
        lines = [line({"event": "start", "benchmark": "init", "system": "fake",
                       "kernel": "fake-1.0", "cpus": machine.smp})]
        for s in range(machine.smp):
            for d in range(s + 1, machine.smp):
                lines.append(line(res("pingpong", "round_trip", "ns", 100.0,
                                      protocol="cacheline", src=s, dst=d)))
        lines.append('@bench {"benchmark":"pingpong", "garbage')
        lines.append(line({"event": "done", "benchmark": "pingpong", "status": 0}))
        lines.append(line({"event": "end", "benchmark": "init", "status": 0}))
        return FakeResult("\n".join(lines) + "\n", 0)


def test_sweep_with_a_plugged_in_system(tmp_path, monkeypatch):
    monkeypatch.setitem(ab.BENCHMARKS["pingpong"].halves, "fake", ab.Half("pingpong"))
    out = tmp_path / "out"
    sweep = ab.Sweep(shapes=ab.parse_shapes(["2 4 300"]), systems=["fake"],
                     benchmarks=["pingpong", "unmap"], accels=["tcg"], out=str(out),
                     timeout=5, command="tools/bench --systems fake")
    bad = ab.run_sweep(sweep, {"fake": FakeSystem()})
    assert bad == 2           # the 4-CPU hang and the 300-CPU machine
    points = [json.loads(ln) for ln in open(out / "points.jsonl")]
    by = {(p["shape"], p["benchmark"]): p for p in points}
    assert by[("2cpu", "pingpong")]["status"] == "ok"
    assert by[("2cpu", "pingpong")]["malformed_count"] == 1
    assert by[("2cpu", "unmap")]["status"] == "missing"
    hang = by[("4cpu", "pingpong")]
    assert hang["status"] == "failed" and "timed out after 5 s" in hang["reason"]
    assert "self-detected stall" in hang["console_tail"]
    assert "288" in by[("300cpu", "pingpong")]["reason"]
    results = [json.loads(ln) for ln in open(out / "results.jsonl")]
    assert len(results) == 1
    r = results[0]
    for k in ("schema", "system", "shape", "machine", "accel", "commit", "run", "qemu",
              "benchmark", "metric", "value", "unit", "samples", "median", "spread"):
        assert k in r, k
    assert (r["system"], r["shape"], r["guest_version"]) == ("fake", "2cpu", "fake-1.0")
    text = (out / "report.md").read_text()
    assert "self-detected stall" in text and "tools/bench --systems fake" in text
    assert (out / "plots" / "pingpong_matrix_fake_2cpu_tcg.png").exists()
    assert (out / "points" / "fake-2cpu-tcg" / "console.log").exists()
    assert (out / "points" / "fake-4cpu-tcg" / "console-attempt1.log").exists()


def test_sweep_linux_without_kernel(tmp_path, monkeypatch):
    monkeypatch.setattr(abl, "KERNEL_GLOB", str(tmp_path / "vmlinuz-*"))
    monkeypatch.setattr(abl.find_kernel, "__defaults__", (str(tmp_path / "vmlinuz-*"),))
    out = tmp_path / "out"
    sweep = ab.Sweep(shapes=ab.parse_shapes(["2"]), systems=["linux", "atoll"],
                     benchmarks=["pingpong", "unmap"], accels=["tcg"], out=str(out))
    assert ab.run_sweep(sweep, ab.make_systems()) == 1
    points = [json.loads(ln) for ln in open(out / "points.jsonl")]
    linux = [p for p in points if p["system"] == "linux"]
    assert {p["status"] for p in linux} == {"failed"}
    assert all("tools/install-deps --bench" in p["reason"] for p in linux)
    atoll = {p["benchmark"]: p["status"] for p in points if p["system"] == "atoll"}
    assert atoll == {"pingpong": "ok", "unmap": "ok"}
    text = (out / "report.md").read_text()
    assert "tools/install-deps --bench" in text


# -- Atoll's halves: adapters of its own events ------------------------------------------------
ATOLL_CONSOLE = """\
atoll: CPU driver starting on the boot core
@atoll {"event":"boot_summary","cores_up":2,"cores_found":2,"nodes":1,"boot_ms":21.532,"warnings":0}
atoll> run 0 lmpbench 300
lmpbench on core 0: round trip median 20349 cycles (min 20055), with a capability 24717 (min 24423), 300 rounds
@atoll {"event":"lmp_bench","core":0,"rounds":300,"null_median":20349,"null_min":20055,"cap_median":24717,"cap_min":24423,"tsc_hz":2000000000}
atoll> poweroff
"""


def test_atoll_boot_adapter():
    ev, _ = atoll_run.parse_events(ATOLL_CONSOLE)
    out = [x for e in ev for x in ab.atoll_boot_adapt(e, {})]
    assert len(out) == 1
    r = out[0]
    assert rep.check_result(r) is None
    assert (r["benchmark"], r["metric"], r["unit"]) == ("boot", "kernel_to_all_cores", "ns")
    assert r["median"] == pytest.approx(21.532e6)
    bad = ab.atoll_boot_adapt({"event": "boot_summary", "cores_up": 3, "cores_found": 4,
                               "boot_ms": 5.0}, {})
    assert bad[0]["event"] == "error" and "3 of 4 cores" in bad[0]["reason"]


def test_atoll_local_adapter():
    ev, _ = atoll_run.parse_events(ATOLL_CONSOLE)
    out = [x for e in ev for x in ab.atoll_local_adapt(e, {})]
    assert all(rep.check_result(r) is None for r in out)
    got = {(r["params"]["protocol"], r["unit"]): r for r in out}
    assert sorted(got) == [("lmp", "cycles"), ("lmp", "ns"), ("lmp_cap", "cycles"),
                           ("lmp_cap", "ns")]
    assert got[("lmp", "cycles")]["median"] == 20349
    assert got[("lmp", "cycles")]["spread"] == 20349 - 20055
    assert got[("lmp", "ns")]["median"] == pytest.approx(20349 / 2.0)
    assert got[("lmp_cap", "cycles")]["samples"] == 300
    assert ab.atoll_local_commands(Machine(smp=4).validate(), {"rounds": 10, "cpus": "0-1,7"}) \
        == ["run 0 lmpbench 10", "wait", "run 1 lmpbench 10", "wait"]


def test_atoll_system_run(monkeypatch, tmp_path):
    """AtollSystem types its halves' commands and turns their events into results."""
    seen = {}

    def fake_boot(machine, timeout=None, log=None, echo=False, shell_commands=None, **kw):
        seen["commands"], seen["modules"] = shell_commands, machine.modules
        events, _ = atoll_run.parse_events(ATOLL_CONSOLE)
        return atoll_run.BootResult(status=0, console=ATOLL_CONSOLE, events=events, wall_s=1.0,
                                    timed_out=False)

    monkeypatch.setattr(atoll_run, "boot", fake_boot)
    m = Machine(smp=2, accel="tcg").validate()
    sys_ = ab.AtollSystem()
    opts = {"local": {"rounds": 300, "cpus": "0"}}
    r = sys_.run(m, ["boot", "local"], opts, 60, str(tmp_path / "log"))
    assert seen["commands"] == ["run 0 lmpbench 300", "wait"]
    results, info = ab.judge(["boot", "local"], r.console, r.status)
    assert {b: st for b, (st, _) in info["benchmarks"].items()} == {"boot": "ok", "local": "ok"}
    assert len(results) == 5
    assert sys_.command(m, ["boot", "local"], opts) == [
        "tools/run", "--smp", "2", "--mem", "1G", "--accel", "tcg", "--", "run 0 lmpbench 300",
        "wait"]


def test_atoll_system_keeps_every_boots_cost_regions(monkeypatch, tmp_path):
    """A point whose benchmarks need two boots (store's manifest apart)
    keeps both boots' cost-model regions: each boot's plugin writes a file
    of its own, put together after (one shared file kept only the last
    boot's: a sweep drew Atoll's boot and store alone)."""
    boots = []

    def fake_boot(machine, timeout=None, log=None, echo=False, shell_commands=None, cost=None, **kw):
        boots.append(cost.out)
        atoll_costmodel.prepare(cost)   # as atoll_run.boot does: the file starts afresh
        name = "store" if any("store" in c for c in shell_commands) else "lookup"
        with open(cost.out, "w") as f:
            f.write(json.dumps({"type": "config", "cpus": machine.smp}) + "\n")
            f.write(json.dumps(region("boot", 2, 100, cores=2)) + "\n")
            f.write(json.dumps(region(name, 1, 4, protocol="x")) + "\n")
            f.write(json.dumps({"type": "total", "transfers": 104}) + "\n")
        return atoll_run.BootResult(status=0, console="", events=[], wall_s=1.0, timed_out=False)

    monkeypatch.setattr(atoll_run, "boot", fake_boot)
    m = Machine(smp=2, accel="tcg").validate()
    out = str(tmp_path / "point" / "costmodel.raw.jsonl")
    cost = atoll_costmodel.CostModel(out=out)
    ab.AtollSystem().run(m, ["boot", "lookup", "store"], {"lookup": {"rounds": 2}, "store": {"ops": 2, "placements": "kvn"}}, 60,
                         str(tmp_path / "log"), cost=cost)
    assert len(boots) == 2 and boots[0] == out and boots[1] != out
    got = atoll_costmodel.load(out)
    assert sorted(r["region"] for r in got.regions) == ["boot", "boot", "lookup", "store"]
    assert not os.path.exists(boots[1])


def test_cost_model_runs_mem_with_one_client_only():
    """Under --cost-model mem runs a client alone (N = 1), the only run
    either half marks as a region, with 5 rounds: the runs with more
    clients at once took most of a sweep's time and counted nothing."""
    m = Machine(smp=8, accel="tcg").validate()
    full = ab.atoll_mem_commands(m, {"rounds": 20})
    assert "run 7 mem bench central 4096 20 8" in full
    opts = ab.point_options(ab.Sweep(shapes=[], systems=[], benchmarks=["mem"], accels=["tcg"], out="", counts_only=True), m, "tcg", ["mem"], "atoll")
    assert opts["mem"]["rounds"] == 5 and str(opts["mem"]["n"]) == "1"
    cmds = ab.atoll_mem_commands(m, opts["mem"])
    assert all(c.startswith("run 0 mem bench ") and c.endswith(" 5 1") or c.startswith("wait") for c in cmds), cmds
    assert len([c for c in cmds if c.startswith("run")]) == len(ab.MEM_DESIGNS) * len(ab.MEM_SIZES)
    lopts = ab.point_options(ab.Sweep(shapes=[], systems=[], benchmarks=["mem"], accels=["tcg"], out="", counts_only=True), m, "tcg", ["mem"], "linux")
    assert lopts["mem"]["rounds"] == 5 and str(lopts["mem"]["n"]) == "1"


def test_cost_model_runs_store_at_powers_of_two_and_every_core():
    """Under --cost-model the store's N is 1, 2, 4 ... and every core, in
    both halves (7 values at 64 CPUs, not 15: Atoll's rounds are placements x
    read fractions x N, most of a 64-CPU sweep's time); the machine decides."""
    sw = ab.Sweep(shapes=[], systems=[], benchmarks=["store"], accels=["tcg"], out="", counts_only=True)
    for smp, want in ((64, "1,2,4,8,16,32,64"), (12, "1,2,4,8,12"), (1, "1")):
        m = Machine(smp=smp, accel="tcg").validate()
        for system in ("atoll", "linux"):
            assert str(ab.point_options(sw, m, "tcg", ["store"], system)["store"]["n"]) == want, (smp, system)
    m = Machine(smp=12, accel="tcg").validate()
    opts = ab.point_options(sw, m, "tcg", ["store"], "atoll")["store"]
    runs = [c for c in ab.atoll_store_commands(m, opts) if c.startswith("run")]
    assert len(runs) == len(ab.STORE_PLACEMENTS) * 3 * (1 + 2 + 4 + 8 + 12)   # a client per core per round
    plain = ab.point_options(dataclasses.replace(sw, counts_only=False), m, "tcg", ["store"], "atoll")["store"]
    plain_runs = [c for c in ab.atoll_store_commands(m, plain) if c.startswith("run")]
    ns = [int(n) for n in ab.tcg_core_counts(12).split(",")]      # timed: every N up to 8, then steps
    assert len(plain_runs) == len(ab.STORE_PLACEMENTS) * 3 * sum(ns) and sum(ns) > 1 + 2 + 4 + 8 + 12


def test_a_store_point_boots_only_the_placements_it_measures():
    """A store not measured would still start its replicas (64 for kvc at
    64 CPUs): the manifest the point boots with keeps the other services
    and the chosen stores only, and the command that reproduces it says so."""
    base = os.path.join("servers", "store", "bench.services")
    assert ab.store_manifest(base, {}) == base
    assert ab.store_manifest(base, {"placements": "kv1,kvc,kvn"}) == base
    path = ab.store_manifest(base, {"placements": "kvn,kv1"})
    assert path != base and path.startswith("build" + os.sep)
    words = [ln.split()[0] for ln in open(os.path.join(ab.REPO, path)) if ln.split() and not ln.startswith("#")]
    full = [ln.split()[0] for ln in open(os.path.join(ab.REPO, base)) if ln.split() and not ln.startswith("#")]
    assert "kvc" in full and words == [w for w in full if w != "kvc"]
    with pytest.raises(ValueError):
        ab.store_manifest(base, {"placements": "kvn,nope"})
    m = Machine(smp=4, accel="tcg").validate()
    cmd = ab.AtollSystem().command(m, ["store"], {"store": {"placements": "kvn,kv1"}})
    assert cmd[cmd.index("--services") + 1] == ab.store_manifest(base, {"placements": "kvn"})
    assert any(" kvn " in c for c in cmd) and not any(" kv1 " in c or " kvc " in c for c in cmd)


def test_each_store_placement_boots_alone(monkeypatch, tmp_path):
    """Each placement's rounds run in a boot of their own, with only that
    store's replicas (at 64 CPUs the idle stores' replicas were judged silent
    while the measured store's clients kept every core busy, and the next
    placement's group had lost its leader); the other benchmarks boot as
    before, and the rounds of every boot are adapted."""
    boots = []

    def fake_boot(machine, timeout=None, log=None, echo=False, shell_commands=None, cost=None, **kw):
        names = sorted({c.split()[4] for c in shell_commands if c.startswith("run ") and " store bench " in c})
        manifest = [ln.split()[0] for ln in open(machine.modules[-1].path) if ln.split() and ln[0] != "#"] \
            if names else []
        boots.append((names, [w for w in manifest if w in ab.STORE_PLACEMENTS], shell_commands))
        events = [{"event": "store_bench", "name": names[0], "round": 1, "n": 1, "ops": 10, "errors": 0,
                   "t0": 0, "t1": 1000, "lat_med_ns": 50, "read_pct": 95, "fresh": 1}] if names else []
        return atoll_run.BootResult(status=0, console="", events=events, wall_s=1.0, timed_out=False)

    monkeypatch.setattr(atoll_run, "boot", fake_boot)
    m = Machine(smp=2, accel="tcg").validate()
    r = ab.AtollSystem().run(m, ["lookup", "store"], {"lookup": {"rounds": 2},
                                                     "store": {"ops": 2, "reads": "95", "n": "1"}},
                             60, str(tmp_path / "log"))
    assert [b[0] for b in boots] == [[], ["kvn"], ["kvc"], ["kv1"]], [b[0] for b in boots]
    assert [b[1] for b in boots[1:]] == [["kvn"], ["kvc"], ["kv1"]]
    assert any("echo" in c for c in boots[0][2]) and not any("store" in c for c in boots[0][2])
    got = [json.loads(ln[len(rep.BENCH_PREFIX):]) for ln in r.console.splitlines()
           if ln.startswith(rep.BENCH_PREFIX)]
    assert sorted(g["params"]["placement"] for g in got if g.get("metric") == "throughput") == \
        ["central", "per-core", "per-node"]


def test_run_options_describe_the_same_machine():
    m = Machine(smp=6, mem=1536 * MiB, accel="tcg", sockets=2,
                numa=[NumaNode(cpus=[0, 1, 4, 5], mem=GiB), NumaNode(cpus=[2, 3], mem=512 * MiB)],
                dist=[[10, 30], [31, 10]]).validate()
    back, _ = atoll_run.parse_args(ab.run_options(m))
    assert atoll_run.qemu_command(back, "x.iso") == atoll_run.qemu_command(m, "x.iso")


def test_local_section_and_plot(tmp_path):
    recs = []
    for system, proto, cyc in (("linux", "pipe", 100000.0), ("linux", "futex", 60000.0),
                               ("atoll", "lmp", 20000.0)):
        for core in (0, 1):
            for unit, f in (("cycles", 1.0), ("ns", 0.5)):
                recs.append(dict(CTX, system=system, shape="2cpu", accel="tcg",
                                 **res("local", "round_trip", unit, cyc * f, protocol=proto,
                                       core=core)))
    data = rep.Data(records=recs)
    rows = {(r["system"], r["protocol"]): r for r in rep.local_rows(data)}
    assert rows[("atoll", "lmp")]["ratio_to_linux_pipe"] == pytest.approx(0.2)
    assert rows[("linux", "pipe")]["cores"] == 2 and rows[("linux", "pipe")]["ns"] == 50000.0
    text = rep.render_report(data, [])
    assert "| atoll | 2cpu | tcg | lmp | 2 | 10 us | 20000 | 0.2x |" in text
    plots, _ = rep.plot_all(data, str(tmp_path))
    assert "local_tcg.png" in [n for _, n in plots]


def test_other_benchmarks_get_a_generic_table():
    recs = [dict(CTX, system="atoll", shape="4cpu", accel="tcg",
                 **res("spawn", "latency", "ns", 123456.0, spread=10.0, core=3))]
    text = rep.render_report(rep.Data(records=recs), [])
    assert "## Other results" in text
    assert "| spawn | atoll | 4cpu | tcg | latency | core=3 | 123 us | 10 ns | 5 |" in text


# -- command line ----------------------------------------------------------------------------------
def test_cli_list(capsys):
    assert ab.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "pingpong" in out and "missing" in out


def test_cli_dry_run(capsys, tmp_path):
    kernel = tmp_path / "vmlinuz-9.9"
    kernel.write_bytes(b"k")
    assert ab.main(["--dry-run", "--accel", "tcg", "--shapes", "2 8n2 300",
                    "--linux-kernel", str(kernel), "--set", "pingpong.samples=9"]) == 0
    out = capsys.readouterr().out
    assert "# linux 8cpu-2node tcg" in out
    assert "-numa node,nodeid=1,cpus=4-7,memdev=m1" in out
    assert f"-kernel {kernel}" in out and "pingpong.samples=9" in out
    assert "# linux 300cpu tcg: invalid machine" in out
    assert ("\ntools/run --smp 8 --mem 1G --numa-node cpus=0-3,mem=512M --numa-node "
            "cpus=4-7,mem=512M --accel tcg -- 'bench urpc 200 8' 'run 0 threads bench 11 3 1,2,3,4,5,6,7,8 "
            "unmap,protect unicast,broadcast,multicast,numa-multicast,ipi' 'wait 1800000' 'run 0 lmpbench 300' wait "
            "'run 1 lmpbench 300' wait 'run 1 echo serve bench.lookup.same_core 100' "
            "'run 1 echo call bench.lookup.same_core 100 21' wait") in out


@pytest.mark.parametrize("args", [["--shapes", "zz"], ["--systems", "windows"],
                                  ["--benchmarks", "nope"], ["--accel", "hvf"],
                                  ["--set", "x"]])
def test_cli_errors(args, capsys):
    assert ab.main(["--dry-run"] + args) == 2
    assert "bench: error:" in capsys.readouterr().err


# -- the Linux guest: initramfs, command line, QEMU command ---------------------------------------
def test_cpio_newc_roundtrip():
    entries = [("bin", stat.S_IFDIR | 0o755, b"", None),
               ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
               ("init", stat.S_IFREG | 0o755, b"\x7fELF" + b"x" * 13, None),
               ("bin/a", stat.S_IFREG | 0o644, b"", None)]
    blob = abl.cpio_newc(entries)
    assert blob.startswith(b"070701") and len(blob) % 4 == 0
    assert b"TRAILER!!!\0" in blob
    back = abl.parse_cpio_newc(blob)
    assert [(n, m, d, r) for n, m, d, r in back] == [
        ("bin", stat.S_IFDIR | 0o755, b"", (0, 0)),
        ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),
        ("init", stat.S_IFREG | 0o755, b"\x7fELF" + b"x" * 13, (0, 0)),
        ("bin/a", stat.S_IFREG | 0o644, b"", (0, 0))]
    assert abl.cpio_newc(entries) == blob            # deterministic
    with pytest.raises(ValueError):
        abl.cpio_newc([("/", stat.S_IFDIR, b"", None)])


def test_cpio_matches_the_cpio_tool(tmp_path):
    """If Debian's cpio is here, it must list what we wrote."""
    if not shutil.which("cpio"):
        pytest.skip("cpio not installed")
    blob = abl.cpio_newc([("d", stat.S_IFDIR | 0o755, b"", None),
                          ("d/f", stat.S_IFREG | 0o644, b"hello", None)])
    r = subprocess.run(["cpio", "-t"], input=blob, capture_output=True)
    assert r.stdout.decode().split() == ["d", "d/f"]


def test_initramfs(tmp_path):
    progs = {}
    for name in ("init", "pingpong"):
        p = tmp_path / name
        p.write_bytes(name.encode() * 3)
        progs[name] = str(p)
    path = abl.build_initramfs(progs, str(tmp_path / "out" / "initramfs.cpio"))
    got = {n: (m, d) for n, m, d, _ in abl.parse_cpio_newc(open(path, "rb").read())}
    assert got["init"] == (stat.S_IFREG | 0o755, b"initinitinit")
    assert got["bin/pingpong"][1] == b"pingpongpingpongpingpong"
    for d in ("bin", "dev", "proc", "sys"):
        assert stat.S_ISDIR(got[d][0])
    assert stat.S_ISCHR(got["dev/console"][0])
    mtime = os.path.getmtime(path)
    assert abl.build_initramfs(progs, path) == path and os.path.getmtime(path) == mtime
    with pytest.raises(abl.LinuxError):
        abl.initramfs_entries({"pingpong": progs["pingpong"]})


def test_kernel_cmdline():
    s = abl.kernel_cmdline(["boot", "pingpong"], {"pingpong": {"samples": 5, "pairs": "half"}},
                           "mitigations=off")
    assert s == ("console=ttyS0 panic=-1 quiet bench=boot,pingpong pingpong.pairs=half "
                 "pingpong.samples=5 mitigations=off")
    for bad in ({"pingpong": {"samples": "5 6"}}, {"pingpong": {"x y": 1}},
                {"pingpong": {"n": "1;reboot"}}):
        with pytest.raises(abl.LinuxError):
            abl.kernel_cmdline(["pingpong"], bad)
    with pytest.raises(abl.LinuxError):
        abl.kernel_cmdline(["../init"], {})


def test_linux_command_is_the_atoll_machine():
    m = Machine(smp=6, mem=1536 * MiB, accel="tcg",
                numa=[NumaNode(cpus=[0, 1, 4, 5], mem=GiB), NumaNode(cpus=[2, 3], mem=512 * MiB)],
                dist=[[10, 30], [30, 10]])
    atoll = atoll_run.qemu_command(m, "x.iso")
    cmd = abl.linux_command(m, "/boot/vmlinuz-1", "/tmp/initrd", "console=ttyS0 bench=boot")
    assert "-cdrom" not in cmd and "-boot" not in cmd
    i = atoll.index("-cdrom")
    assert cmd[:i] == atoll[:i]          # machine, cpu, smp, memory, NUMA, devices: identical
    assert cmd[i:] == ["-kernel", "/boot/vmlinuz-1", "-initrd", "/tmp/initrd",
                       "-append", "console=ttyS0 bench=boot"]
    assert "isa-debug-exit,iobase=0xf4,iosize=0x04" in cmd and "-no-reboot" in cmd


def test_find_kernel(tmp_path):
    with pytest.raises(abl.LinuxError, match="install-deps --bench"):
        abl.find_kernel(str(tmp_path / "vmlinuz-*"))
    for v in ("6.1.0-9-amd64", "6.1.0-10-amd64", "5.10.0-30-amd64"):
        (tmp_path / f"vmlinuz-{v}").write_bytes(b"k")
    assert abl.find_kernel(str(tmp_path / "vmlinuz-*")).endswith("vmlinuz-6.1.0-10-amd64")


def _static_cc_works():
    if not shutil.which(abl.CC):
        return False
    r = subprocess.run([abl.CC, "-static", "-x", "c", "-o", os.devnull, "-"],
                       input="int main(void){return 0;}", capture_output=True, text=True)
    return r.returncode == 0


@pytest.mark.skipif(not _static_cc_works(), reason="no static C library (libc6-dev)")
def test_guest_programs_build(tmp_path):
    """The C programs build cleanly (-Wall -Wextra -Werror, static) and
    reject unknown arguments with an @bench error line."""
    progs = abl.build_programs(out_dir=str(tmp_path))
    assert sorted(progs) == sorted(abl.PROGRAMS)
    r = subprocess.run([progs["pingpong"], "bogus=1"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2
    results, events, malformed = rep.parse_console(r.stdout)
    assert malformed == [] and events[0]["event"] == "error"
    assert "bogus" in events[0]["reason"]
    # One real measurement on the host: a valid result line per unit.
    r = subprocess.run([progs["unmap"], "iters=3", "warmup=1", "n=1", "ops=mprotect"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    results, _, malformed = rep.parse_console(r.stdout)
    assert malformed == []
    assert sorted(x["unit"] for x in results) == ["cycles", "ns"]
    assert results[0]["params"] == {"op": "mprotect", "cores": 1, "pages": 1}


# -- end to end: Linux in QEMU (only with linux-image-amd64) -------------------------------------
def _linux_ready():
    try:
        abl.find_kernel()
    except abl.LinuxError:
        return False
    return shutil.which(atoll_run.QEMU) is not None and _static_cc_works()


@pytest.mark.skipif(not _linux_ready(),
                    reason="needs linux-image-amd64 (tools/install-deps --bench) and QEMU")
def test_linux_pingpong_end_to_end(tmp_path):
    out = tmp_path / "bench"
    rc = ab.main(["--shapes", "2", "--systems", "linux", "--benchmarks", "pingpong",
                  "--accel", "tcg", "--quick", "--out", str(out), "--no-plots",
                  "--timeout", "120"])
    points = [json.loads(ln) for ln in open(out / "points.jsonl")]
    assert rc == 0, points
    data = rep.Data.load(str(out))
    protos = {r["params"]["protocol"] for r in data.select(benchmark="pingpong", unit="ns")}
    assert protos == set(rep.PINGPONG_PROTOCOLS)
    assert all(r["params"]["src"] == 0 and r["params"]["dst"] == 1 for r in data.records)
    assert data.records[0]["guest_version"]
    assert "## Ping-pong" in (out / "report.md").read_text()


def test_atoll_pingpong_adapter():
    ev = {"event": "urpc_bench", "from": 1, "to": 3, "rounds": 200, "rt_median_ns": 900, "rt_p10_ns": 850,
          "rt_p90_ns": 1000, "rt_min_ns": 800, "oneway_median_ns": 450, "tput_msgs_per_s": 4000000,
          "wake_rt_median_ns": 28000, "tput8_msgs_per_s": 5000000, "tput56_msgs_per_s": 3000000,
          "tput8_batch_msgs_per_s": 20000000}
    out = ab.atoll_pingpong_adapt(ev, {})
    by = {(r["metric"], r["params"]["protocol"]): r for r in out}
    rt = by[("round_trip", "urpc")]
    assert (rt["value"], rt["unit"], rt["spread"], rt["min"]) == (900, "ns", 150, 800)
    assert rt["params"] == {"protocol": "urpc", "src": 1, "dst": 3}
    assert by[("round_trip", "urpc_wake")]["value"] == 28000
    assert by[("one_way", "urpc")]["value"] == 450
    assert by[("throughput", "urpc")]["unit"] == "msgs/s"
    assert [by[("throughput", p)]["value"] for p in ("urpc_8", "urpc_56", "urpc_batch_8")] == \
        [5000000, 3000000, 20000000]
    assert ("round_trip", "cacheline") not in by      # the monitors' benchmark has no bare line
    # The user-space pair (user/urpcbench) measures a bare cache line on the
    # same frame: Atoll's own floor, as Linux's `cacheline`.
    user = dict(ev, where="user", error="ERR_OK", bare_rt_median_ns=400, bare_rt_p10_ns=380,
                bare_rt_p90_ns=450, bare_rt_min_ns=350)
    by = {(r["metric"], r["params"]["protocol"]): r for r in ab.atoll_pingpong_adapt(user, {})}
    bare = by[("round_trip", "cacheline")]
    assert (bare["value"], bare["spread"], bare["min"], bare["samples"]) == (400, 70, 350, 200)
    assert bare["params"] == {"protocol": "cacheline", "src": 1, "dst": 3}
    assert by[("round_trip", "urpc")]["value"] == 900
    failed = ab.atoll_pingpong_adapt(dict(user, error="ERR_TIMEOUT"), {})
    assert len(failed) == 1 and failed[0]["event"] == "error" and "ERR_TIMEOUT" in failed[0]["reason"]
    assert ab.atoll_pingpong_adapt({"event": "lmp_bench"}, {}) == []
    # A pair the shell could not run at all: only its cores and the error.
    gap = ab.atoll_pingpong_adapt({"event": "urpc_bench", "from": 1, "to": 0, "rounds": 20,
                                   "error": "ERR_TIMEOUT"}, {})
    assert len(gap) == 1 and gap[0]["event"] == "error" and "1->0: ERR_TIMEOUT" in gap[0]["reason"]
    bad = ab.atoll_pingpong_adapt({"event": "urpc_bench", "from": 1}, {})
    assert bad and bad[0]["event"] == "error" and bad[0]["benchmark"] == "pingpong"
    assert ab.atoll_pingpong_commands(ab.Machine(smp=4), {"rounds": 50}) == ["bench urpc 50 4"]


def test_atoll_lookup_pairs_and_adapter():
    # 4 CPUs in 2 nodes: the instance on core 1, clients on 1, 0 and 2.
    m = ab.Machine(smp=4, numa=2).validate()
    assert ab.lookup_pairs(m) == [("same_core", 1, 1), ("same_node", 1, 0), ("remote_node", 1, 2)]
    assert ab.lookup_pairs(ab.Machine(smp=1).validate()) == [("same_core", 0, 0)]
    assert ab.lookup_pairs(ab.Machine(smp=2).validate()) == [("same_core", 1, 1), ("same_node", 1, 0)]
    cmds = ab.atoll_lookup_commands(m, {"rounds": 7})
    assert cmds[:3] == ["run 1 echo serve bench.lookup.same_core 7", "run 1 echo call bench.lookup.same_core 7 21",
                        "wait"] and len(cmds) == 9
    ev = {"event": "echo_call", "core": 2, "node": 1, "name": "bench.lookup.remote_node", "server_core": 1,
          "server_node": 0, "server": 5, "rounds": 7, "lookups": 21, "lookup_ns": 1500, "lookup_min_ns": 1400,
          "connect_ns": 90000, "rt_median_ns": 2000, "rt_min_ns": 1800}
    by = {r["metric"]: r for r in ab.atoll_lookup_adapt(ev, {})}
    assert set(by) == {"name_lookup", "connect", "call"}
    assert by["name_lookup"]["params"] == {"relation": "remote_node", "client": 2, "server": 1}
    assert (by["name_lookup"]["value"], by["name_lookup"]["spread"], by["name_lookup"]["samples"]) == (1500, 100, 21)
    assert (by["call"]["value"], by["call"]["min"], by["call"]["samples"]) == (2000, 1800, 7)
    assert ab.atoll_lookup_adapt(dict(ev, server_core=2, node=1, server_node=1), {})[0]["params"]["relation"] == \
        "same_core"
    assert ab.atoll_lookup_adapt(dict(ev, name="echo.x"), {}) == []    # not the benchmark's
    bad = ab.atoll_lookup_adapt({"event": "echo_call", "name": "bench.lookup.x", "core": 1}, {})
    assert bad and bad[0]["event"] == "error" and bad[0]["benchmark"] == "lookup"


# -- the cost model in the sweep and the report (docs/costmodel.md) -------------------------------
import atoll_bench_cost as abc  # noqa: E402
import atoll_costmodel  # noqa: E402


def region(name, ops, transfers, ipis=0, weighted=None, unclosed=False, chain=None, **args):
    r = {"type": "region", "region": name, "seq": 1, "cpu": 0, "args": dict(args, ops=ops),
         "transfers": transfers, "transfers_weighted": weighted if weighted is not None else transfers,
         "by_distance": {"10": transfers}, "invalidations": transfers, "ipis": ipis,
         "instructions": 100 * ops, "reads": 1, "writes": 1,
         "per_cpu": {"instructions": [100 * ops], "ipis": [ipis]}, "pairs": []}
    if unclosed:
        r["unclosed"] = True
    else:
        r["end_cpu"] = 0
    if chain is not None:
        r["chain"], r["chain_weighted"] = chain, r["transfers_weighted"]
    return r


def cost_record(system, shape, smp, nodes, reg):
    m = {"smp": smp, "nodes": [{"cpus": "x", "mem": "1G"}] * nodes}
    return dict({"schema": 1, "system": system, "shape": shape, "machine": m, "accel": "tcg",
                 "commit": "c", "run": "r"}, **{k: v for k, v in reg.items() if k != "type"})


COST_RECORDS = [
    # Atoll: 2.0 per round trip everywhere; one region per pair.
    cost_record("atoll", "2cpu", 2, 0, region("pingpong", 40, 80, protocol="urpc", src=0, dst=1)),
    cost_record("atoll", "4cpu-2node", 4, 2, region("pingpong", 40, 80, protocol="urpc", src=0, dst=1,
                                                    chain=80)),
    cost_record("atoll", "4cpu-2node", 4, 2, region("pingpong", 40, 80, weighted=160,
                                                    protocol="urpc", src=0, dst=2, chain=80)),
    cost_record("atoll", "4cpu-2node", 4, 2, region("pingpong", 40, 80, weighted=160,
                                                    protocol="urpc", src=0, dst=3, chain=80)),
    # Linux: five samples of 8, one caught a timer tick.
    *[cost_record("linux", "2cpu", 2, 0, region("pingpong", 8, t, protocol="cacheline",
                                                  src=0, dst=1)) for t in (16, 16, 17, 16, 130)],
    # Linux unmap at N = 1, 2: the median keeps the odd call out.
    # The chain of every N = 1 call, of only two of N = 2's (a region began inside the third).
    *[cost_record("linux", "4cpu-2node", 4, 2, region("unmap", 1, t, ipis=i, protocol="munmap",
                                                        cores=n, chain=c))
      for n, t, i, c in ((1, 0, 0, 0), (1, 0, 0, 0), (1, 40, 0, 9), (2, 7, 1, 3), (2, 7, 1, 3),
                         (2, 8, 1, None))],
    # Linux's store at N = 1 and 2: a row per N, not one median over both.
    cost_record("linux", "2cpu", 2, 0, region("store", 100, 0, protocol="rwlock", cores=1)),
    cost_record("linux", "2cpu", 2, 0, region("store", 200, 300, protocol="rwlock", cores=2)),
    # Atoll's store: a row per placement (replicas) and read fraction, a chart per read fraction.
    *[cost_record("atoll", "4cpu-2node", 4, 2, region("store", 10, t, protocol="store_fresh", cores=4,
                                                        replicas=rep, reads=rd, chain=c))
      for rep, rd, t, c in ((2, 95, 300, 40), (4, 95, 500, 60), (1, 95, 100, 20), (2, 50, 700, 80))],
    # Atoll's caps: a revoke and a delete, with 1 and 2 holders, kept apart.
    *[cost_record("atoll", "4cpu", 4, 0, region("caps", 1, t, protocol="holders_only", op=op, holders=h,
                                                  cores=4))
      for op, h, t in (("revoke", 1, 10), ("revoke", 1, 12), ("revoke", 2, 20), ("delete", 2, 30))],
    # Atoll's lookups: a row per relation, not one median over all three.
    *[cost_record("atoll", "4cpu-2node", 4, 2, region("lookup", 1, t, protocol="name_lookup", relation=rel,
                                                        src=s, dst=0))
      for rel, s, t in (("same_core", 1, 4), ("same_core", 1, 4), ("same_node", 0, 30), ("remote_node", 2, 4))],
    # mem: 4 KiB and 2 MiB blocks (pages 1 and 512) apart, Atoll's per design, Linux's mmap.
    *[cost_record(s, "2cpu", 2, 0, region("mem", 5, t, protocol=proto, src=0, pages=p))
      for s, proto, p, t in (("atoll", "per_node", 1, 50), ("atoll", "per_node", 512, 500),
                             ("linux", "mmap_local", 1, 10), ("linux", "mmap_local", 512, 2000))],
    # Boot: per core, and a region that never closed.
    cost_record("atoll", "2cpu", 2, 0, region("boot", 2, 132, ipis=6, cores=2)),
    cost_record("linux", "2cpu", 2, 0, region("boot", 1, 99999, unclosed=True)),
]


def test_cost_rows_are_medians_per_operation():
    rows = {(r["system"], r["shape"], r["benchmark"], r["protocol"], r["x"]): r
            for r in abc.rows(COST_RECORDS)}
    a = rows[("atoll", "4cpu-2node", "pingpong", "urpc", 4)]
    assert (a["transfers"], a["transfers_weighted"], a["regions"], a["ops"]) == (2.0, 4.0, 3, 120)
    assert a["nodes"] == 2 and (a["chain"], a["chain_weighted"]) == (2.0, 4.0)
    lc = rows[("linux", "2cpu", "pingpong", "cacheline", 2)]
    assert lc["transfers"] == 2.0 and lc["transfers_range"] == (2.0, 130 / 8)
    u1 = rows[("linux", "4cpu-2node", "unmap", "munmap", 1)]
    assert u1["transfers"] == 0 and u1["chain"] == 0
    u2 = rows[("linux", "4cpu-2node", "unmap", "munmap", 2)]
    assert (u2["transfers"], u2["ipis"], u2["chain"]) == (7, 1, None)   # not every region has one
    assert lc["chain"] is None
    boot = rows[("atoll", "2cpu", "boot", "", 2)]
    assert (boot["transfers"], boot["ipis"]) == (66, 3)
    assert not any(k[0] == "linux" and k[2] == "boot" for k in rows)   # unclosed: left out
    assert rows[("linux", "2cpu", "store", "rwlock", 1)]["transfers"] == 0
    assert rows[("linux", "2cpu", "store", "rwlock", 2)]["transfers"] == 1.5
    caps = {k[3]: r for k, r in rows.items() if k[2] == "caps"}
    assert sorted(caps) == ["holders_only op=delete holders=2", "holders_only op=revoke holders=1",
                            "holders_only op=revoke holders=2"], caps
    assert caps["holders_only op=revoke holders=1"]["transfers"] == 11
    assert caps["holders_only op=revoke holders=2"]["transfers"] == 20
    look = {k[3]: r for k, r in rows.items() if k[2] == "lookup"}
    assert sorted(look) == ["name_lookup relation=remote_node", "name_lookup relation=same_core",
                            "name_lookup relation=same_node"], look
    assert look["name_lookup relation=same_node"]["transfers"] == 30
    mem = {(k[0], k[3]): r["transfers"] for k, r in rows.items() if k[2] == "mem"}
    # The chain of 4 clients at once runs through one client's 10 / 4 operations.
    assert rows[("atoll", "4cpu-2node", "store", "store_fresh replicas=2 reads=95", 4)]["chain"] == 40 / 2.5
    store = {k[3]: r["transfers"] for k, r in rows.items() if k[0] == "atoll" and k[2] == "store"}
    assert store == {"store_fresh replicas=2 reads=95": 30, "store_fresh replicas=4 reads=95": 50,
                     "store_fresh replicas=1 reads=95": 10, "store_fresh replicas=2 reads=50": 70}, store
    assert mem == {("atoll", "per_node pages=1"): 10, ("atoll", "per_node pages=512"): 100,
                   ("linux", "mmap_local pages=1"): 2, ("linux", "mmap_local pages=512"): 400}, mem


def test_cost_report_section_and_charts(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / abc.COST_FILE, "w") as f:
        for r in COST_RECORDS:
            f.write(json.dumps(r) + "\n")
        f.write('{"system": "atoll"}\n')            # no region, no counts
        f.write("not json\n")
    data = rep.Data.load(str(out))
    assert len(data.cost) == len(COST_RECORDS)
    assert sum(1 for b in data.bad if b[0] == abc.COST_FILE) == 2
    plots, problem = rep.plot_all(data, str(out / "plots"))
    assert problem is None
    names = [p[1] for p in plots]
    for b in ("pingpong", "unmap", "boot", "store", "caps", "lookup", "mem", "store_reads95", "store_reads50"):
        assert f"cost_{b}.png" in names and (out / "plots" / f"cost_{b}.png").stat().st_size > 5000
    text = rep.render_report(data, plots)
    assert "## Cost model: what moves between cores" in text
    assert "| pingpong | atoll | urpc | 4cpu-2node | 2.00 | - | 4.00 | 2.00 | 0.00 | 100 | 2.00 (4.00) | 3 / 120 |" \
        in text
    assert "| unmap | linux | munmap | 4cpu-2node, N=1 | 0.00 | 0.00-40.0 | 0.00 | 0.00 | 0.00 | 100 | 0.00 (0.00) |" \
        in text
    assert "| pingpong | linux | cacheline | 2cpu | 2.00 | 2.00-16.2 |" in text
    assert "| unmap | linux | munmap | 4cpu-2node, N=2 | 7.00 | 7.00-8.00 |" in text
    assert "| store | linux | rwlock | 2cpu, N=2 | 1.50 |" in text
    assert "| caps | atoll | holders_only op=revoke holders=2 | 4cpu | 20.0 |" in text
    assert "| lookup | atoll | name_lookup relation=same_node | 4cpu-2node | 30.0 |" in text
    assert "| mem | linux | mmap_local pages=512 | 2cpu | 400 |" in text
    assert "1 region(s) never reached their end marker" in text


class FakeCostSystem(ab.System):
    """Writes what the plugin would, as a guest with one ping-pong region."""
    name = "fake"

    def command(self, machine, benchmarks, options, cost=None):
        return ["fake-qemu"] + (["-plugin", cost.out] if cost else [])

    def run(self, machine, benchmarks, options, timeout, log, echo=False, cost=None):
        with open(log, "w") as f:
            f.write("log\n")
        assert cost is not None and options["pingpong"]["batch"] == 8
        with open(cost.out, "w") as f:
            f.write(json.dumps({"type": "config", "cpus": machine.smp}) + "\n")
            f.write(json.dumps(region("pingpong", 8, 16, protocol="cacheline", src=0, dst=1)) + "\n")
            f.write(json.dumps({"type": "total", "transfers": 16}) + "\n")
        lines = [line(res("pingpong", "round_trip", "ns", 100.0, protocol="cacheline", src=0,
                          dst=1)),
                 line({"event": "done", "benchmark": "pingpong", "status": 0})]
        return FakeResult("\n".join(lines) + "\n", 0)


def test_cost_model_sweep(tmp_path, monkeypatch):
    monkeypatch.setitem(ab.BENCHMARKS["pingpong"].halves, "fake",
                        ab.Half("pingpong", ab._pingpong_options, cost=ab.COST_PINGPONG_LINUX))
    out = tmp_path / "out"
    sweep = ab.Sweep(shapes=ab.parse_shapes(["2"]), systems=["fake"], benchmarks=["pingpong"],
                     accels=["tcg"], out=str(out), timeout=5, counts_only=True)
    assert ab.run_sweep(sweep, {"fake": FakeCostSystem()}) == 0
    recs = [json.loads(ln) for ln in open(out / abc.COST_FILE)]
    assert len(recs) == 1
    r = recs[0]
    assert (r["system"], r["shape"], r["region"], r["transfers"]) == ("fake", "2cpu", "pingpong", 16)
    assert r["machine"]["smp"] == 2 and r["point"] == "fake-2cpu-tcg" and r["kind"] == "counts"
    assert "type" not in r
    pdir = out / "points" / "fake-2cpu-tcg"
    assert (pdir / "costmodel-plugin.jsonl").exists() and (pdir / "costmodel.jsonl").exists()
    p = json.loads(open(out / "points.jsonl").readline())
    assert p["cost_log"] == os.path.join("points", "fake-2cpu-tcg", "costmodel-plugin.jsonl")
    assert p["cost_regions"] == 1 and p["kind"] == "counts"
    assert json.load(open(out / "run.json"))["cost_model"]["accel"] == "tcg,thread=single"
    assert (out / "plots" / "cost_pingpong.png").exists()
    assert "## Cost model" in (out / "report.md").read_text()


def test_cost_model_options_and_commands(tmp_path):
    m = Machine(smp=4, numa=2, accel="tcg").validate()
    sweep = ab.Sweep(shapes=[], systems=[], benchmarks=[], accels=["tcg"], out=str(tmp_path),
                     counts_only=True, overrides={"pingpong": {"batch": "3"}})
    lo = ab.point_options(sweep, m, "tcg", ["pingpong", "unmap"], "linux")
    assert lo["pingpong"] == dict(ab._pingpong_options(m, "tcg"), samples=5, batch="3",
                                  warmup=16, pairs="row")
    assert lo["unmap"]["iters"] == 7
    ao = ab.point_options(sweep, m, "tcg", ["pingpong"], "atoll")
    assert ab.atoll_pingpong_commands(m, ao["pingpong"]) == ["bench urpc 40 4 row"]
    cost = atoll_costmodel.CostModel(out=str(tmp_path / "c.jsonl"))
    cmd = ab.AtollSystem().command(m, ["pingpong"], ao, cost)
    assert cmd[cmd.index("--cost-model") + 1:cmd.index("--")] == ["--cost-out", cost.out]
    linux_cmd = abl.linux_command(m, "/boot/vmlinuz-x", "initrd", "console=ttyS0", cost=cost)
    assert linux_cmd[linux_cmd.index("-machine") + 1] == "q35"
    assert linux_cmd[linux_cmd.index("-accel") + 1] == "tcg,thread=single"
    plugin = linux_cmd[linux_cmd.index("-plugin") + 1].split(",")
    assert plugin[1:] == [f"out={cost.out}", "node=0-1", "node=2-3", "dist=10:20:20:10"]
    assert ab.default_timeout(m, "tcg", True) == 4 * ab.default_timeout(m, "tcg")


def test_cost_model_cli(capsys, tmp_path):
    kernel = tmp_path / "vmlinuz-9.9"
    kernel.write_bytes(b"k")
    assert ab.main(["--dry-run", "--cost-model", "--shapes", "2", "--benchmarks", "pingpong",
                    "--linux-kernel", str(kernel), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "-accel tcg,thread=single -plugin file=" in out and "pingpong.pairs=row" in out
    assert "--cost-model --cost-out" in out and "'bench urpc 40 2 row'" in out
    assert not (tmp_path / "o").exists()            # a dry run writes nothing
    assert ab.main(["--dry-run", "--cost-model", "--accel", "kvm"]) == 2
    assert "cannot run with --accel kvm" in capsys.readouterr().err


def test_timescale_reaches_atolls_command_line_and_the_points_settings(capsys, tmp_path):
    """--timescale K|cpus: Atoll's kernel word timescale=K on every Atoll
    point (K = the shape's CPUs for `cpus`), none at K = 1, Linux untouched;
    a point's settings follow it (a sweep at another K is not a resume)."""
    assert ab.timescale_for("cpus", 64) == 64 and ab.timescale_for("8", 64) == 8
    assert ab.timescale_for("cpus", 2000) == 1000           # the kernel's bound
    for bad in ("0", "-2", "x", "", "1001", "1.5"):
        with pytest.raises(atoll_run.ConfigError):
            ab.timescale_for(bad, 4)
    m = Machine(smp=8, numa=2, accel="tcg").validate()
    cmd = ab.AtollSystem("cpus").command(m, ["pingpong"], {"pingpong": {}})
    assert cmd[cmd.index("--cmdline") + 1] == "timescale=8"
    assert "--cmdline" not in ab.AtollSystem("1").command(m, ["pingpong"], {"pingpong": {}})
    assert ab.AtollSystem("4")._machine(m).cmdline == "timescale=4"
    kernel = tmp_path / "vmlinuz-9.9"
    kernel.write_bytes(b"k")
    assert ab.main(["--dry-run", "--shapes", "2", "--timescale", "4"]) == 2   # timed points: refused
    assert "--timescale goes with --cost-model" in capsys.readouterr().err
    assert ab.main(["--dry-run", "--cost-model", "--shapes", "2 4", "--benchmarks", "pingpong",
                    "--timescale", "cpus", "--linux-kernel", str(kernel)]) == 0
    out = capsys.readouterr().out
    assert "--cmdline timescale=2" in out and "--cmdline timescale=4" in out
    assert "timescale=" not in "".join(ln for ln in out.splitlines() if "-kernel" in ln)
    assert ab.main(["--dry-run", "--timescale", "0"]) == 2
    assert "--timescale" in capsys.readouterr().err
    # The default: the shape's CPUs under the cost model (one host thread runs them all), else 1.
    assert ab.main(["--dry-run", "--cost-model", "--shapes", "4", "--benchmarks", "pingpong", "--systems", "atoll"]) == 0
    assert "--cmdline timescale=4" in capsys.readouterr().out
    assert ab.main(["--dry-run", "--accel", "tcg", "--shapes", "4", "--benchmarks", "pingpong", "--systems",
                    "atoll"]) == 0
    assert "timescale=" not in capsys.readouterr().out
    keys = {}
    for k in ("1", "cpus"):
        sw = ab.Sweep(shapes=ab.parse_shapes(["4"]), systems=["atoll"], benchmarks=["pingpong"],
                      accels=["tcg"], out=str(tmp_path / k), atoll_timescale=k)
        d = ab.plan_points(sw, {"atoll": ab.AtollSystem(k)}, "c", "r")[0]
        assert d["atoll"] == {"timescale": k, "k": 1 if k == "1" else 4}
        keys[k] = d["settings"]
    assert keys["1"] != keys["cpus"]


def test_atoll_urpc_beside_linux_in_the_pingpong_summary_and_chart(tmp_path, monkeypatch):
    """With its bare cache line, Atoll's URPC gets a ratio to its own floor
    and a line in the ping-pong chart beside Linux's protocols (under TCG
    the chart draws ratios, and a system without a floor drew nothing)."""
    base = dict(CTX, system="atoll", shape="2cpu", machine=machine_of(2), accel="tcg")
    recs = list(shape_records("linux", "2cpu", 2))
    for src, dst in ((0, 1), (1, 0)):
        ev = {"event": "urpc_bench", "where": "user", "error": "ERR_OK", "from": src, "to": dst, "rounds": 100,
              "rt_median_ns": 1000 + src * 100, "rt_p10_ns": 900, "rt_p90_ns": 1300, "rt_min_ns": 850,
              "wake_rt_median_ns": 30000, "bare_rt_median_ns": 500, "bare_rt_p10_ns": 400,
              "bare_rt_p90_ns": 600, "bare_rt_min_ns": 380}
        recs += [dict(base, **r) for r in ab.atoll_pingpong_adapt(ev, {})]
    data = rep.Data(records=recs)
    rows = {(r["system"], r["protocol"]): r for r in rep.pingpong_summary(data)}
    assert rows[("atoll", "cacheline")]["median"] == 500
    assert rows[("atoll", "urpc")]["ratio_to_cacheline"] == pytest.approx(1050 / 500)
    assert rows[("linux", "pipe")]["ratio_to_cacheline"] == pytest.approx(250.0)
    order = [(r["system"], r["protocol"]) for r in rep.pingpong_summary(data)]
    assert order.index(("atoll", "cacheline")) < order.index(("atoll", "urpc")) < order.index(
        ("atoll", "urpc_wake"))
    text = "\n".join(rep._pingpong_section(data))
    assert "| atoll | 2cpu | tcg | 2 | 500 ns (1x) | 1.05 us (2.1x) |" in text, text
    pytest.importorskip("matplotlib")
    labels = {}

    def keep_labels(plt, fig, plot_dir, name):
        labels[name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        plt.close(fig)
        return name

    monkeypatch.setattr(rep, "_save", keep_labels)
    plots, problem = rep.plot_all(data, str(tmp_path))
    assert problem is None
    got = labels["pingpong_protocols_tcg.png"]
    for want in ("atoll urpc", "atoll cacheline", "atoll urpc_wake", "linux cacheline", "linux pipe",
                 "linux eventfd", "linux futex"):
        assert want in got, got


def test_atoll_caps_adapter_and_chart(tmp_path):
    m = ab.Machine(smp=8, numa=2).validate()
    assert ab.atoll_caps_commands(m, {"rounds": 5}) == ["run 0 capxfer bench 5 0", "wait 1800000"]
    ev = {"event": "caps_bench", "op": "revoke", "protocol": "holders", "holders": 2, "cores": 8, "rounds": 5,
          "median_ns": 400000, "min_ns": 300000, "max_ns": 900000, "failed": 0}
    (r,) = ab.atoll_caps_adapt(ev, {})
    assert (r["benchmark"], r["metric"], r["unit"], r["value"], r["samples"]) == \
        ("caps", "revoke_latency", "ns", 400000, 5)
    assert (r["spread"], r["min"], r["max"]) == (600000, 300000, 900000)
    assert r["params"] == {"protocol": "holders", "holders": 2, "cores": 8}
    assert rep.check_result(r) is None
    assert ab.atoll_caps_adapt({"event": "lmp_bench"}, {}) == []
    for bad_ev in (dict(ev, failed=1), dict(ev, op="move"), dict(ev, median_ns=None)):
        bad = ab.atoll_caps_adapt(bad_ev, {})
        assert bad and bad[0]["event"] == "error" and bad[0]["benchmark"] == "caps", bad_ev
    # One chart per machine, both protocols and both operations on it.
    recs = []
    for op in ("revoke", "delete"):
        for proto in ("holders", "broadcast"):
            for h in (1, 2, 4, 7):
                (x,) = ab.atoll_caps_adapt(dict(ev, op=op, protocol=proto, holders=h), {})
                x.update(CTX, system="atoll", shape="8cpu-2node", accel="tcg", machine=machine_of(8, 2))
                recs.append(x)
    data = rep.Data(records=recs)
    assert sorted(rep.caps_series(data, "8cpu-2node", "tcg")) == [
        ("delete", "broadcast"), ("delete", "holders"), ("revoke", "broadcast"), ("revoke", "holders")]
    plots, problem = rep.plot_all(data, str(tmp_path))
    assert problem is None
    assert [n for _, n in plots] == ["caps_8cpu-2node_tcg.png"]
    assert _is_png(tmp_path / "caps_8cpu-2node_tcg.png")


def test_atoll_unmap_adapter_commands_and_series():
    """threads' unmap_bench events become unmap latency rows shaped like
    Linux's (op, cores, pages) plus the protocol; the report keeps a series
    per op/protocol beside Linux's munmap; a failed or malformed event is
    an error; the command carries the options (munmap/mprotect mean
    unmap/protect)."""
    ev = {"event": "unmap_bench", "op": "unmap", "protocol": "numa-multicast", "cores": 4, "iters": 11,
          "median_ns": 5000, "min_ns": 4000, "max_ns": 9000, "failed": 0}
    (r,) = ab.atoll_unmap_adapt(ev, {})
    assert r["benchmark"] == "unmap" and r["metric"] == "latency" and r["unit"] == "ns"
    assert r["median"] == 5000 and r["spread"] == 5000 and r["samples"] == 11
    assert r["params"] == {"op": "unmap", "protocol": "numa-multicast", "cores": 4, "pages": 1}
    assert ab.atoll_unmap_adapt({"event": "span_threads"}, {}) == []
    for bad_ev in (dict(ev, failed=2), dict(ev, op="remap"), dict(ev, median_ns="x")):
        (bad,) = ab.atoll_unmap_adapt(bad_ev, {})
        assert bad["event"] == "error" and bad["benchmark"] == "unmap", bad
    cmds = ab.atoll_unmap_commands(None, {"iters": 3, "warmup": 1, "n": "1,2,4", "ops": "munmap,mprotect",
                                         "protocols": "ipi,broadcast"})
    assert cmds[0] == "run 0 threads bench 3 1 1,2,4 unmap,protect ipi,broadcast", cmds
    assert "atoll" in ab.BENCHMARKS["unmap"].halves and ab.BENCHMARKS["unmap"].halves["atoll"].program == "threads"
    linux = dict(res("unmap", "latency", "ns", 7000.0, op="munmap", cores=4), system="linux", shape="4cpu",
                 accel="tcg")
    atoll = dict(r, system="atoll", shape="4cpu", accel="tcg")
    keys = sorted(k[3] for k in rep.unmap_series(rep.Data(records=[linux, atoll])))
    assert keys == ["munmap", "unmap/numa-multicast"], keys
