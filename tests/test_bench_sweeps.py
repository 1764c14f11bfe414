"""tools/bench's points: splitting a sweep, resuming, retrying, scheduling with
--jobs, merging point folders (failed, missing, from several hosts), and the
Slurm batch scripts and submission - with fake systems and fake sbatch and
squeue, so nothing here boots a guest or needs Slurm. The real one-node
cluster is tests/test_bench_cluster.py.
"""
import json
import os
import stat
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import atoll_bench as ab  # noqa: E402
import atoll_bench_points as pts  # noqa: E402
import atoll_bench_report as rep  # noqa: E402
import atoll_bench_slurm as slurm  # noqa: E402
import atoll_run  # noqa: E402


def line(obj):
    return "@bench " + json.dumps(obj)


def res(bench, metric, unit, median, **params):
    return {"benchmark": bench, "metric": metric, "unit": unit, "value": median,
            "samples": 3, "median": median, "spread": 1.0, "params": params}


class FakeResult:
    def __init__(self, console, status, message=None, timed_out=False):
        self.console, self.status, self.message, self.timed_out = console, status, message, \
            timed_out
        self.stderr = ""


def good_console(smp, value=100.0):
    lines = [line({"event": "start", "benchmark": "init", "system": "fake",
                   "kernel": "fake-1.0", "cpus": smp})]
    lines += [line(res("pingpong", "round_trip", "ns", value, protocol="cacheline", src=0,
                       dst=d)) for d in range(1, smp)]
    lines += [line({"event": "done", "benchmark": "pingpong", "status": 0}),
              line({"event": "end", "benchmark": "init", "status": 0})]
    return "\n".join(lines) + "\n"


class FakeSystem(ab.System):
    """Counts its boots; `script` maps a CPU count to a list of outcomes
    ("ok", "hang", "crash"), one per boot of that shape (then "ok")."""
    name = "fake"

    def __init__(self, script=None, delay=0.0):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.boots = []
        self.delay = delay
        self.lock = threading.Lock()
        self.prepared = 0

    def prepare(self, benchmarks):
        self.prepared += 1

    def command(self, machine, benchmarks, options, cost=None):
        return ["fake-qemu", "-smp", str(machine.smp)]

    def run(self, machine, benchmarks, options, timeout, log, echo=False, cost=None):
        with self.lock:
            self.boots.append(machine.smp)
            todo = self.script.get(machine.smp) or ["ok"]
            what = todo.pop(0) if self.script.get(machine.smp) else "ok"
        with open(log, "w") as f:
            f.write(f"boot {len(self.boots)}: {what}\n")
        time.sleep(self.delay)
        if what == "hang":
            return FakeResult("booting...\nstuck\n", atoll_run.EXIT_TIMEOUT,
                              f"timed out after {timeout:g} s", True)
        if what == "crash":
            return FakeResult("Kernel panic\n", atoll_run.EXIT_NO_STATUS)
        return FakeResult(good_console(machine.smp), 0)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(ab.BENCHMARKS["pingpong"].halves, "fake", ab.Half("pingpong"))
    monkeypatch.setattr(ab, "host_busy", lambda *a, **k: 0.0)   # no 1 s sampling per boot
    monkeypatch.setattr(ab, "git_commit", lambda: "abc123def456")
    monkeypatch.setattr(ab, "qemu_version", lambda: "QEMU 7.2.0")


def sweep(out, shapes="2 4", **kw):
    kw.setdefault("benchmarks", ["pingpong", "unmap"])
    return ab.Sweep(shapes=ab.parse_shapes([shapes]), systems=["fake"], accels=["tcg"],
                    out=str(out), timeout=5, command="tools/bench --systems fake", plots=False,
                    **kw)


def load_points(out):
    return [json.loads(ln) for ln in open(os.path.join(out, "points.jsonl"))]


def by_point(out):
    return {(p["shape"], p["benchmark"]): p for p in load_points(out)}


# -- splitting ------------------------------------------------------------------------------------
def test_plan_splits_shapes_accels_systems(fake, tmp_path):
    s = sweep(tmp_path, "2 8n2:2G 300")
    s.accels = ["tcg", "kvm"]
    systems = {"fake": FakeSystem()}
    descs = ab.plan_points(s, systems, "abc", "2026-01-01T00:00:00Z")
    assert [d["id"] for d in descs] == [
        "fake-2cpu-tcg", "fake-2cpu-kvm", "fake-8cpu-2node-2G-tcg", "fake-8cpu-2node-2G-kvm",
        "fake-300cpu-tcg", "fake-300cpu-kvm"]
    d = descs[2]
    assert d["have"] == ["pingpong"] and d["benchmarks"] == ["pingpong", "unmap"]
    assert d["kind"] == "timed" and d["cpus"] == 8 and d["mem_mb"] == 2048 + 512
    assert d["command"] == "fake-qemu -smp 8"
    assert d["bench_command"] == f"tools/bench point {tmp_path}/points/fake-8cpu-2node-2G-tcg"
    assert "288" in descs[4]["shape_error"] and descs[4]["run_options"] is None
    # The machine comes back from the descriptor's tools/run options.
    m = ab.machine_of(d)
    assert (m.smp, len(m.numa), m.mem, m.accel) == (8, 2, 2 * atoll_run.GiB, "tcg")


def test_descriptor_round_trips_unusual_machines(fake, tmp_path):
    spec = ("--smp 6 --sockets 2 --cores 3 --threads 1 --numa-node cpus=0-3,mem=1G "
            "--numa-node cpus=4-5,mem=512M --mem 1536M --numa-dist 10,31;31,10 --machine pc")
    s = sweep(tmp_path, "2")
    s.shapes = ab.parse_shapes([spec])
    d = ab.plan_points(s, {"fake": FakeSystem()}, "abc", "r")[0]
    m = ab.machine_of(json.loads(json.dumps(d)))
    assert ab.machine_dict(m) == d["machine"]
    assert m.dist == [[10, 31], [31, 10]] and m.machine == "pc"


def test_settings_key_follows_what_is_measured(fake, tmp_path):
    systems = {"fake": FakeSystem()}

    def key(**kw):
        return ab.plan_points(sweep(tmp_path / "x", "2", **kw), systems, "c", "r")[0]["settings"]

    base = key()
    assert base == key()                                  # stable
    assert ab.plan_points(sweep(tmp_path / "elsewhere", "2"), systems, "other-commit",
                          "another-run")[0]["settings"] == base   # not where or when
    assert key(overrides={"pingpong": {"samples": "9"}}) != base
    s = sweep(tmp_path / "x", "2")
    s.timeout = 99
    assert ab.plan_points(s, systems, "c", "r")[0]["settings"] != base
    assert key(benchmarks=["pingpong"]) != base
    assert key(counts_only=True) != base
    assert key(extra={"cost_model": "on"}) != base


def test_count_only_points_need_one_cpu(fake, tmp_path):
    d = ab.plan_points(sweep(tmp_path, "16n2", counts_only=True), {"fake": FakeSystem()},
                       "c", "r")[0]
    assert d["kind"] == "counts" and d["cpus"] == 1
    assert ab.point_resources(atoll_run.Machine(smp=4, mem=3 * atoll_run.GiB), "tcg",
                              "timed") == (4, 3584)
    assert ab.point_resources(atoll_run.Machine(smp=4, mem=100 * atoll_run.MiB), "kvm",
                              "timed") == (4, 768)


# -- resuming --------------------------------------------------------------------------------------
def test_rerun_skips_points_done_with_the_same_commit_and_settings(fake, tmp_path, monkeypatch):
    out = tmp_path / "out"
    sysobj = FakeSystem({4: ["hang", "hang"]})
    assert ab.run_sweep(sweep(out), {"fake": sysobj}) == 1
    assert sysobj.boots == [2, 4, 4]                 # the hang was retried once
    first = by_point(out)
    assert first[("2cpu", "pingpong")]["status"] == "ok"
    assert first[("4cpu", "pingpong")]["status"] == "failed"

    # Again: the ok point is skipped; the failed one runs again (and passes now).
    sysobj.boots.clear()
    assert ab.run_sweep(sweep(out), {"fake": sysobj}) == 0
    assert sysobj.boots == [4]
    again = by_point(out)
    assert again[("2cpu", "pingpong")] == first[("2cpu", "pingpong")]   # kept as it was
    assert again[("4cpu", "pingpong")]["status"] == "ok"
    run = json.load(open(out / "run.json"))
    assert any("1 of 2 points were done earlier" in n for n in run["notes"])

    sysobj.boots.clear()
    ab.run_sweep(sweep(out), {"fake": sysobj})
    assert sysobj.boots == []                          # all done
    ab.run_sweep(sweep(out, force=True), {"fake": sysobj})
    assert sorted(sysobj.boots) == [2, 4]             # --force

    sysobj.boots.clear()
    ab.run_sweep(sweep(out, overrides={"pingpong": {"samples": "3"}}), {"fake": sysobj})
    assert sorted(sysobj.boots) == [2, 4]             # other settings

    sysobj.boots.clear()
    monkeypatch.setattr(ab, "git_commit", lambda: "fedcba987654")
    ab.run_sweep(sweep(out, overrides={"pingpong": {"samples": "3"}}), {"fake": sysobj})
    assert sorted(sysobj.boots) == [2, 4]             # another commit
    assert {p["commit"] for p in load_points(out)} == {"fedcba987654"}


def test_dirty_tree_source_includes_the_diff(tmp_path):
    assert pts.source_id(ROOT, "abc") == "abc"
    s = pts.source_id(ROOT, "abc-dirty")
    assert s.startswith("abc-dirty-") and len(s) == len("abc-dirty-") + 12


def test_interrupted_point_without_done_runs_again(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem()
    ab.run_sweep(sweep(out), {"fake": sysobj})
    os.unlink(out / "points" / "fake-4cpu-tcg" / "done.json")   # as if killed mid-boot
    sysobj.boots.clear()
    ab.run_sweep(sweep(out), {"fake": sysobj})
    assert sysobj.boots == [4]


# -- retrying ---------------------------------------------------------------------------------------
def test_failed_point_is_retried_once_and_recovers(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem({2: ["crash"]})
    assert ab.run_sweep(sweep(out, "2"), {"fake": sysobj}) == 0
    assert sysobj.boots == [2, 2]
    p = by_point(out)[("2cpu", "pingpong")]
    assert p["status"] == "ok" and p["attempts"] == 2
    assert "without reporting a status" in p["first_attempt"]["reason"]
    d = out / "points" / "fake-2cpu-tcg"
    assert "crash" in (d / "console-attempt1.log").read_text()
    assert "ok" in (d / "console.log").read_text()
    done = json.load(open(d / "done.json"))
    assert done["attempts"] == 2 and done["status"] == "ok"
    assert "retried" in (out / "report.md").read_text()


def test_point_failing_twice_is_reported_failed(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem({2: ["hang", "crash"]})
    assert ab.run_sweep(sweep(out, "2"), {"fake": sysobj}) == 1
    p = by_point(out)[("2cpu", "pingpong")]
    assert p["status"] == "failed" and p["attempts"] == 2
    assert "without reporting a status" in p["reason"]
    assert "timed out" in p["first_attempt"]["reason"]
    assert "Kernel panic" in p["console_tail"]
    text = (out / "report.md").read_text()
    assert "### Failed points" in text and "failed (retried)" in text


def test_permanent_failures_are_not_retried(fake, tmp_path):
    out = tmp_path / "out"

    class Unavailable(FakeSystem):
        def unavailable(self):
            return "no fake kernel here"

    sysobj = Unavailable()
    assert ab.run_sweep(sweep(out, "2 300"), {"fake": sysobj}) == 2
    assert sysobj.boots == []
    for p in load_points(out):
        if p["benchmark"] == "pingpong":
            assert p["status"] == "failed" and p["attempts"] == 1


def test_prepare_failure_fails_every_point_once(fake, tmp_path):
    class Broken(FakeSystem):
        def prepare(self, benchmarks):
            self.prepared += 1
            raise RuntimeError("gcc exploded")

    sysobj = Broken()
    out = tmp_path / "out"
    assert ab.run_sweep(sweep(out, "2 4"), {"fake": sysobj}) == 2
    assert sysobj.prepared == 1 and sysobj.boots == []
    assert all("gcc exploded" in p["reason"] for p in load_points(out)
               if p["benchmark"] == "pingpong")


# -- local parallelism ------------------------------------------------------------------------------
def _record_concurrency(points, jobs, parallel_timed):
    lock = threading.Lock()
    live, log = set(), []

    def run_one(p):
        with lock:
            live.add(p["id"])
            log.append(set(live))
        time.sleep(0.05)
        with lock:
            live.discard(p["id"])
        return p["id"]

    out = pts.schedule(points, jobs, parallel_timed, run_one)
    return out, log


def test_schedule_counts_in_parallel_timed_alone():
    ps = [{"id": f"c{i}", "kind": "counts"} for i in range(4)] + \
         [{"id": f"t{i}", "kind": "timed"} for i in range(3)] + [{"id": "c9", "kind": "counts"}]
    out, log = _record_concurrency(ps, 2, False)
    assert out == [p["id"] for p in ps]                    # every point, in order
    assert max(len(s) for s in log) == 2                   # count-only points shared
    for s in log:
        if any(x.startswith("t") for x in s):
            assert len(s) == 1, s                          # a timed point ran alone


def test_schedule_parallel_timed_and_jobs_one():
    ps = [{"id": f"t{i}", "kind": "timed"} for i in range(4)]
    _, log = _record_concurrency(ps, 2, True)
    assert max(len(s) for s in log) == 2
    _, log = _record_concurrency(ps + [{"id": "c", "kind": "counts"}], 1, True)
    assert max(len(s) for s in log) == 1


def test_jobs_2_runs_timed_points_one_at_a_time(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem(delay=0.2)
    assert ab.run_sweep(sweep(out, "2 3 4", jobs=2), {"fake": sysobj}) == 0
    spans = sorted((d["started"], d["ended"]) for d in (
        json.load(open(out / "points" / f"fake-{n}cpu-tcg" / "done.json")) for n in (2, 3, 4)))
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans
    assert "shared their host" not in (out / "report.md").read_text()
    run = json.load(open(out / "run.json"))
    assert any("timed points one at a time" in n for n in run["notes"])


def test_parallel_timed_points_are_reported_as_sharing_the_host(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem(delay=0.3)
    ab.run_sweep(sweep(out, "2 3", jobs=2, parallel_timed=True), {"fake": sysobj})
    p = by_point(out)
    assert p[("2cpu", "pingpong")]["shared_host_with"] == ["fake-3cpu-tcg"]
    assert p[("3cpu", "pingpong")]["shared_host_with"] == ["fake-2cpu-tcg"]
    text = (out / "report.md").read_text()
    assert "shared their host with other points" in text
    assert "fake-2cpu-tcg with fake-3cpu-tcg" in text and "ok (shared host)" in text


def test_count_only_sweep_runs_in_parallel(fake, tmp_path):
    out = tmp_path / "out"
    sysobj = FakeSystem(delay=0.3)
    ab.run_sweep(sweep(out, "2 3", jobs=2, counts_only=True), {"fake": sysobj})
    d2, d3 = (json.load(open(out / "points" / f"fake-{n}cpu-tcg" / "done.json")) for n in (2, 3))
    assert d2["kind"] == d3["kind"] == "counts"
    assert d2["started"] < d3["ended"] and d3["started"] < d2["ended"]    # overlapped
    assert "shared their host" not in (out / "report.md").read_text()   # counts do not care


# -- merging -------------------------------------------------------------------------------------------
def _fake_point(out, pid, host, started, ended, status="ok", kind="timed", value=1.0,
                commit="abc"):
    system, shape, accel = pid.split("-", 1)[0], pid.split("-")[1], pid.rsplit("-", 1)[1]
    d = {"id": pid, "system": system, "shape": shape, "accel": accel, "kind": kind,
         "benchmarks": ["pingpong"], "have": ["pingpong"], "machine": {"smp": 2}}
    pts.write_descriptor(str(out), d)
    base = {"schema": 1, "system": system, "shape": shape, "accel": accel, "commit": commit,
            "point": pid, "kind": kind, "host": host}
    results = [] if status == "failed" else [
        dict(base, **res("pingpong", "round_trip", "ns", value, protocol="pipe", src=0, dst=1))]
    lines = [dict(base, benchmark="pingpong", status=status, results=len(results),
                  reason=None if status == "ok" else "timed out", attempts=1)]
    pts.write_outcome(str(out), pid, results, lines,
                      {"id": pid, "status": status, "commit": commit, "kind": kind,
                       "host": {"name": host}, "started": started, "ended": ended,
                       "booted": True})


def test_merge_points_from_several_hosts_failed_and_missing(tmp_path):
    out = tmp_path
    _fake_point(out, "linux-2cpu-tcg", "node1", 100, 200, value=5.0)
    _fake_point(out, "atoll-2cpu-tcg", "node2", 150, 250, value=7.0)   # another host: fine
    _fake_point(out, "linux-4cpu-tcg", "node1", 190, 300, status="failed")  # overlaps node1
    _fake_point(out, "atoll-4cpu-tcg", "node1", 400, 500, kind="counts")
    pts.write_descriptor(str(out), {"id": "atoll-8cpu-tcg", "system": "atoll",
                                    "shape": "8cpu", "accel": "tcg",
                                    "benchmarks": ["pingpong", "boot"]})    # never finished
    planned = ["linux-2cpu-tcg", "atoll-2cpu-tcg", "linux-4cpu-tcg", "atoll-4cpu-tcg",
               "atoll-8cpu-tcg", "linux-8cpu-tcg"]
    jobs = [{"job": "77", "points": ["atoll-8cpu-tcg", "linux-8cpu-tcg"]}]
    summary = pts.merge(str(out), planned, jobs)
    assert summary["hosts"] == {"node1": 3, "node2": 1}
    assert summary["not_run"] == ["atoll-8cpu-tcg", "linux-8cpu-tcg"]
    assert summary["statuses"]["linux-4cpu-tcg"] == "failed"
    assert summary["shared"] == {"linux-2cpu-tcg": ["linux-4cpu-tcg"],
                                 "linux-4cpu-tcg": ["linux-2cpu-tcg"]}
    data = rep.Data.load(str(out))
    assert sorted(r["median"] for r in data.records) == [1.0, 5.0, 7.0]
    nr = [p for p in data.points if p["status"] == "not_run"]
    assert [(p["point"], p["benchmark"]) for p in nr] == [
        ("atoll-8cpu-tcg", "pingpong"), ("atoll-8cpu-tcg", "boot"), ("linux-8cpu-tcg", "?")]
    assert "slurm/77_0.out" in nr[0]["reason"] and "slurm/77_1.out" in nr[2]["reason"]
    text = rep.render_report(data, [])
    assert "the points ran on 2 hosts (node1: 3, node2: 1)" in text
    assert "| node2 |" in text                                 # a host column
    assert "2 point(s) have no result yet" in text
    assert "linux-2cpu-tcg with linux-4cpu-tcg" in text


def test_merge_reports_points_from_several_commits_and_skips_bad_lines(tmp_path):
    _fake_point(tmp_path, "linux-2cpu-tcg", "h", 1, 2, commit="aaa")
    _fake_point(tmp_path, "linux-4cpu-tcg", "h", 3, 4, commit="bbb")
    with open(tmp_path / "points" / "linux-4cpu-tcg" / "results.jsonl", "a") as f:
        f.write("{not json\n[1]\n")
    pts.merge(str(tmp_path))
    data = rep.Data.load(str(tmp_path))
    assert len(data.records) == 2
    assert "the points come from 2 commits" in rep.render_report(data, [])


def test_report_command_merges_whatever_exists(tmp_path):
    _fake_point(tmp_path, "linux-2cpu-tcg", "h", 1, 2)
    with open(tmp_path / "run.json", "w") as f:
        json.dump({"points": ["linux-2cpu-tcg", "linux-4cpu-tcg"], "command": "tools/bench"}, f)
    assert ab.main(["report", "--out", str(tmp_path), "--no-plots"]) == 1   # one not run
    text = (tmp_path / "report.md").read_text()
    assert "not_run" in text and "## Ping-pong" in text
    os.makedirs(tmp_path / "points" / "linux-4cpu-tcg")
    _fake_point(tmp_path, "linux-4cpu-tcg", "h", 3, 4)
    assert ab.main(["report", "--out", str(tmp_path), "--no-plots"]) == 0


def test_point_status():
    assert pts.point_status(["ok", "missing"]) == "ok"
    assert pts.point_status(["missing"]) == "missing"
    assert pts.point_status(["failed", "missing"]) == "failed"
    assert pts.point_status(["ok", "failed"]) == "partial"
    assert pts.point_status(["partial"]) == "partial"


# -- tools/bench point -------------------------------------------------------------------------------
def test_ctrl_c_neither_retries_nor_records_the_killed_point(fake, tmp_path):
    """Ctrl-C reaches QEMU too: the point booting beside the interrupted one
    ends 'crashed' and must stay not run, not be retried or recorded failed."""
    class Interrupted(FakeSystem):
        def run(self, machine, *a, **k):
            if machine.smp == 3:
                raise KeyboardInterrupt
            return super().run(machine, *a, **k)

    out = tmp_path / "out"
    sysobj = Interrupted({2: ["crash"]}, delay=0.3)
    assert ab.run_sweep(sweep(out, "2 3 4", jobs=2, counts_only=True), {"fake": sysobj}) == 3
    assert sysobj.boots.count(2) == 1 and 4 not in sysobj.boots
    assert not (out / "points" / "fake-2cpu-tcg" / "done.json").exists()
    assert {p["status"] for p in load_points(out)} == {"not_run"}
    assert any("interrupted" in n for n in json.load(open(out / "run.json"))["notes"])
    assert not ab.STOPPING.is_set()


def test_a_bug_fails_the_point_not_the_sweep(fake, tmp_path):
    class Buggy(FakeSystem):
        def run(self, machine, *a, **k):
            if machine.smp == 2:
                raise KeyError("oops")
            return super().run(machine, *a, **k)

    out = tmp_path / "out"
    assert ab.run_sweep(sweep(out, "2 4"), {"fake": Buggy()}) == 1
    p = by_point(out)
    assert p[("2cpu", "pingpong")]["status"] == "failed"
    assert "internal error: KeyError('oops')" in p[("2cpu", "pingpong")]["reason"]
    assert p[("4cpu", "pingpong")]["status"] == "ok"


def test_point_command_runs_a_descriptor(fake, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    sysobj = FakeSystem()
    monkeypatch.setattr(ab, "make_systems", lambda *a, **k: {"fake": sysobj})
    ab.run_sweep(sweep(out, "2"), {"fake": sysobj})
    d = out / "points" / "fake-2cpu-tcg"
    os.unlink(d / "done.json")
    assert ab.main(["point", str(d)]) == 0
    assert json.load(open(d / "done.json"))["status"] == "ok"
    assert sysobj.boots == [2, 2]
    assert ab.main(["point", str(tmp_path / "nowhere")]) == 2
    assert "no point descriptor" in capsys.readouterr().err


# -- Slurm -------------------------------------------------------------------------------------------
def test_slurm_groups_and_batch_script(tmp_path):
    descs = [{"id": "a", "cpus": 2, "mem_mb": 1536}, {"id": "b", "cpus": 16, "mem_mb": 2560},
             {"id": "c", "cpus": 2, "mem_mb": 1536}, {"id": "d", "cpus": 1, "mem_mb": 1536}]
    opts = slurm.Options(partition="big", constraint="kvm", options=["--time=1:00:00"])
    g = slurm.groups(descs, opts)
    assert [(k, [d["id"] for d in v]) for k, v in g] == [
        ((2, 1536), ["a", "c"]), ((16, 2560), ["b"]), ((1, 1536), ["d"])]
    assert [k for k, _ in slurm.groups(descs, slurm.Options(max_cpus=4))] == [
        (2, 1536), (4, 2560), (1, 1536)]
    text = slurm.batch_script(str(tmp_path / "out"), "/repo", str(tmp_path / "l.points"), 2, 2,
                              1536, opts)
    for want in ("#SBATCH --array=0-1", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=1536M",
                 "#SBATCH --partition=big", "#SBATCH --constraint=kvm",
                 "#SBATCH --time=1:00:00", f"#SBATCH --output={tmp_path}/out/slurm/%A_%a.out",
                 "cd /repo", 'exec /usr/bin/python3 tools/bench point "$point"',
                 "$((SLURM_ARRAY_TASK_ID + 1))p"):
        assert want in text, want
    assert text.startswith("#!/bin/sh\n")


def test_slurm_submit_writes_lists_that_the_script_reads(tmp_path):
    out = tmp_path / "out"
    descs = [{"id": "atoll-2cpu-tcg", "cpus": 2, "mem_mb": 1536},
             {"id": "linux-2cpu-tcg", "cpus": 2, "mem_mb": 1536},
             {"id": "atoll-8cpu-tcg", "cpus": 8, "mem_mb": 1536}]
    submitted = []
    jobs = slurm.submit(descs, str(out), "/repo", slurm.Options(),
                        submit_fn=lambda s: submitted.append(s) or str(40 + len(submitted)))
    assert [(j["job"], j["points"], j["cpus"]) for j in jobs] == [
        ("41", ["atoll-2cpu-tcg", "linux-2cpu-tcg"], 2), ("42", ["atoll-8cpu-tcg"], 8)]
    assert submitted == [j["script"] for j in jobs]
    assert os.access(jobs[0]["script"], os.X_OK)
    # What the script's sed picks for task 1:
    lst = open(jobs[0]["script"]).read().split("sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" ")[1]
    lst = lst.split(")")[0]
    assert open(lst).read().splitlines()[1] == str(out / "points" / "linux-2cpu-tcg")


def test_slurm_wait_polls_until_done(capsys):
    answers = [{"5", "6"}, {"6"}, set()]
    slurm.wait(["5", "6"], poll=0, progress=lambda: "1 of 2", active_fn=lambda j: answers.pop(0))
    assert answers == []
    assert "waiting for job(s) 5, 6: 1 of 2" in capsys.readouterr().err
    with pytest.raises(slurm.SlurmError, match="still queued or running after 0.1 s"):
        slurm.wait(["5"], poll=0.05, active_fn=lambda j: {"5"}, max_wait=0.1)


def _fake_tools(tmp_path, sbatch_body, squeue_body="exit 0"):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("sbatch", sbatch_body), ("squeue", squeue_body)):
        p = bindir / name
        p.write_text("#!/bin/sh\n" + body + "\n")
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return str(bindir)


def test_slurm_cli_no_wait_with_a_fake_sbatch(fake, tmp_path, monkeypatch, capsys):
    log = tmp_path / "sbatch.log"
    bindir = _fake_tools(tmp_path, f'echo "$@" >> {log}; echo "1234;cluster"')
    monkeypatch.setenv("PATH", bindir + ":" + os.environ["PATH"])
    monkeypatch.setattr(ab, "make_systems", lambda *a, **k: {"fake": FakeSystem()})
    out = tmp_path / "out"
    rc = ab.main(["--systems", "fake", "--shapes", "2 4", "--benchmarks", "pingpong",
                  "--accel", "tcg", "--out", str(out), "--slurm", "--no-wait",
                  "--slurm-partition", "p1", "--slurm-constraint", "kvm",
                  "--slurm-opt=--time=30"])
    assert rc == 0
    said = capsys.readouterr().out
    assert "Submitted Slurm job(s) 1234, 1234" in said
    assert f"tools/bench report --out {out}" in said
    run = json.load(open(out / "run.json"))
    assert [j["job"] for j in run["slurm"]["jobs"]] == ["1234", "1234"]
    assert run["slurm"]["partition"] == "p1"
    script = open(run["slurm"]["jobs"][0]["script"]).read()
    assert "#SBATCH --constraint=kvm" in script and "#SBATCH --time=30" in script
    assert log.read_text().count("--parsable") == 2
    for pid in ("fake-2cpu-tcg", "fake-4cpu-tcg"):
        assert os.path.exists(out / "points" / pid / "point.json")
        assert not os.path.exists(out / "points" / pid / "done.json")
    # Collecting before the tasks ran: both points are reported without results.
    assert ab.main(["report", "--out", str(out), "--no-plots"]) == 1
    nr = [p for p in load_points(out) if p["status"] == "not_run"]
    assert len(nr) == 2 and "slurm/1234_0.out" in nr[0]["reason"]


def test_slurm_waits_then_collects(fake, tmp_path, monkeypatch):
    """A fake sbatch that runs the tasks itself, in the background, as a
    Slurm node would, and a squeue that says the job runs until they end."""
    marker = tmp_path / "running"
    sbatch = (f'touch {marker}.$$\n'
              'last=$(sed -n "s/^#SBATCH --array=0-//p" "$2")\n'
              f'(for i in $(seq 0 $last); do SLURM_JOB_ID=9 SLURM_ARRAY_JOB_ID=9 '
              f'SLURM_ARRAY_TASK_ID=$i sh "$2" > /dev/null 2>&1; done; rm {marker}.$$) &\n'
              'echo 9')
    squeue = f'ls {marker}.* > /dev/null 2>&1 && echo "9 RUNNING"; exit 0'
    bindir = _fake_tools(tmp_path, sbatch, squeue)
    monkeypatch.setenv("PATH", bindir + ":" + os.environ["PATH"])
    out = tmp_path / "out"
    # The tasks run the real tools/bench point, for Linux points with a kernel
    # that is not there: they fail at once, the same way on any host. The
    # invalid shape boots nothing and is settled without a task.
    rc = ab.main(["--systems", "linux", "--shapes", "2 4 300", "--benchmarks", "boot",
                  "--accel", "tcg", "--out", str(out), "--no-plots", "--slurm",
                  "--slurm-poll", "0.2", "--linux-kernel", str(tmp_path / "no-vmlinuz")])
    assert rc == 1
    points = load_points(out)
    assert [(p["shape"], p["status"]) for p in points] == [
        ("2cpu", "failed"), ("4cpu", "failed"), ("300cpu", "failed")]
    assert "no-vmlinuz not readable" in points[0]["reason"]
    assert "invalid machine" in points[2]["reason"]
    run = json.load(open(out / "run.json"))
    assert [j["points"] for j in run["slurm"]["jobs"]] == [["linux-2cpu-tcg"], ["linux-4cpu-tcg"]]
    done = json.load(open(out / "points" / "linux-4cpu-tcg" / "done.json"))
    assert done["host"]["slurm"]["job"] == "9" and done["host"]["slurm"]["task"] == "0"
    assert "slurm" not in json.load(open(out / "points" / "linux-300cpu-tcg" / "done.json"))[
        "host"]


def test_slurm_missing_sbatch_is_a_clear_error(fake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(ab, "make_systems", lambda *a, **k: {"fake": FakeSystem()})
    rc = ab.main(["--systems", "fake", "--shapes", "2", "--benchmarks", "pingpong",
                  "--accel", "tcg", "--out", str(tmp_path / "o"), "--slurm"])
    assert rc == 1
    assert "sbatch not found" in capsys.readouterr().err


@pytest.mark.parametrize("args, why", [(["--jobs", "0"], "--jobs"),
                                       (["--no-wait"], "--no-wait goes with --slurm")])
def test_cli_point_option_errors(args, why, capsys):
    assert ab.main(["--shapes", "2"] + args) == 2
    assert why in capsys.readouterr().err
