"""tools/bench's points: a sweep split into independent jobs, their folders,
resuming, local scheduling and merging.

A point is one system booted on one machine shape with one accelerator,
running every benchmark that system has a half for. Each point lives in
its own folder under the results folder:

    points/ID/point.json     the descriptor: what to run, how (its exact commands),
                             its settings key, kind (timed | counts), the CPUs and
                             memory it needs
    points/ID/results.jsonl  its result records
    points/ID/points.jsonl   one status line per benchmark (docs/bench.md)
    points/ID/console.log    the console of its boot (console-attempt1.log: the
                             first attempt's, when it was retried)
    points/ID/done.json      written last, atomically: status, commit, settings,
                             host, start and end times, attempts

A point folder is complete when done.json exists, whoever ran it (this
process, `tools/bench point`, a Slurm task on another host). merge() turns
whatever folders exist into the results folder's results.jsonl and
points.jsonl, which the report reads. Nothing here boots anything: that is
atoll_bench.execute_point(); docs/bench.md documents the files.
"""
import concurrent.futures
import hashlib
import json
import os
import socket
import subprocess
import threading

POINTS_DIR = "points"
DESCRIPTOR = "point.json"
DONE = "done.json"
RESULTS = "results.jsonl"
STATUS_LINES = "points.jsonl"
CONSOLE = "console.log"
# Count-only points (--cost-model, docs/costmodel.md): what the plugin wrote,
# and its regions with where they came from; merge() gathers the latter into
# the results folder's costmodel.jsonl.
COST_RAW = "costmodel-plugin.jsonl"
COST_RECORDS = "costmodel.jsonl"

# A point's kind says what its figures are. "timed": wall-clock or cycle
# figures, spoiled by anything else running on the host, so such points run
# one at a time unless the user asks otherwise. "counts": figures that do not
# depend on the host's load (the cost model's transfer and IPI counts, issue
# 15), so such points run in parallel freely.
KINDS = ("timed", "counts")


# -- identity: which code, which settings --------------------------------------------------------
def source_id(repo, commit):
    """The code a point ran: the commit, and for a dirty tree also a hash of
    `git diff HEAD`, so a resumed sweep reruns points after any edit."""
    if not commit.endswith("-dirty"):
        return commit
    try:
        d = subprocess.run(["git", "-C", repo, "diff", "HEAD", "--"], capture_output=True,
                           timeout=60)
        return commit + "-" + hashlib.sha256(d.stdout).hexdigest()[:12]
    except (OSError, subprocess.SubprocessError):
        return commit + "-unknown"


SETTINGS_FIELDS = ("system", "shape", "machine", "run_options", "shape_error", "accel",
                   "benchmarks", "have", "options", "timeout", "kind", "linux", "atoll", "extra")


def settings_key(desc):
    """A short hash of everything in a descriptor that changes what the point
    measures (not where or when it runs)."""
    blob = json.dumps({k: desc.get(k) for k in SETTINGS_FIELDS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def point_id(system, shape, accel):
    return f"{system}-{shape}-{accel}"


def split_id(pid):
    """point_id's inverse (system names and accelerators have no '-')."""
    system, _, rest = pid.partition("-")
    shape, _, accel = rest.rpartition("-")
    return system, shape or "?", accel or "?"


# -- folders ---------------------------------------------------------------------------------------
def point_dir(out, pid):
    return os.path.join(out, POINTS_DIR, pid)


def write_json_atomic(path, obj):
    tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    """A JSON object from path, or None (missing, unreadable, not an object)."""
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def write_jsonl_atomic(path, objs):
    tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for o in objs:
            f.write(json.dumps(o) + "\n")
    os.replace(tmp, path)


def write_descriptor(out, desc):
    d = point_dir(out, desc["id"])
    os.makedirs(d, exist_ok=True)
    write_json_atomic(os.path.join(d, DESCRIPTOR), desc)


def clear_outcome(out, pid):
    """Forget a point's earlier outcome before it runs again."""
    d = point_dir(out, pid)
    for f in (DONE, RESULTS, STATUS_LINES, COST_RAW, COST_RECORDS):
        try:
            os.unlink(os.path.join(d, f))
        except FileNotFoundError:
            pass


def write_outcome(out, pid, results, lines, done):
    """A finished point: its records, then done.json last (the marker)."""
    d = point_dir(out, pid)
    os.makedirs(d, exist_ok=True)
    write_jsonl_atomic(os.path.join(d, RESULTS), results)
    write_jsonl_atomic(os.path.join(d, STATUS_LINES), lines)
    write_json_atomic(os.path.join(d, DONE), done)


def is_done(out, desc, source):
    """Whether the point finished ok earlier with the same code and settings
    (a resumed sweep skips it). Failed, partial and unfinished points run again."""
    done = read_json(os.path.join(point_dir(out, desc["id"]), DONE))
    return bool(done and done.get("status") in ("ok", "missing")
                and done.get("source") == source and done.get("settings") == desc["settings"])


def point_status(statuses):
    """One status for a point from its benchmarks' statuses: ok when every
    benchmark with a half is ok, failed when every one failed, missing when
    the system has no half of any, else partial."""
    s = set(statuses) - {"missing"}
    if not s:
        return "missing"
    if s == {"ok"}:
        return "ok"
    if s == {"failed"}:
        return "failed"
    return "partial"


# -- the host a point ran on --------------------------------------------------------------------
def host_record(description):
    """Where a point ran: the host's name and description, and the Slurm
    job, task and CPUs when it ran as a Slurm task."""
    h = {"name": socket.gethostname(), "description": description}
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        h["slurm"] = {k: env.get(v) for k, v in (
            ("job", "SLURM_ARRAY_JOB_ID"), ("task", "SLURM_ARRAY_TASK_ID"),
            ("job_id", "SLURM_JOB_ID"), ("node", "SLURMD_NODENAME"),
            ("cpus", "SLURM_CPUS_PER_TASK"), ("partition", "SLURM_JOB_PARTITION")) if env.get(v)}
    return h


# -- local scheduling ----------------------------------------------------------------------------
def schedule(points, jobs, parallel_timed, run_one, on_interrupt=None):
    """Run run_one(point) for every point, up to `jobs` at once. A "counts"
    point may run beside anything but a timed point; a "timed" point runs
    alone (unless parallel_timed: then timed points share too). Points start
    in order, except that a timed point waiting for the host to empty lets
    count-only points behind it go first. Returns [run_one's value] in the
    order of points."""
    jobs = max(1, int(jobs))
    pending = list(range(len(points)))
    results = [None] * len(points)
    running = {}

    def may_start(i):
        if len(running) >= jobs:
            return False
        if parallel_timed:
            return True
        kinds = {points[j].get("kind", "timed") for j in running.values()}
        if points[i].get("kind", "timed") == "timed":
            return not running
        return "timed" not in kinds

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        try:
            while pending or running:
                for i in list(pending):
                    if may_start(i):
                        pending.remove(i)
                        running[ex.submit(run_one, points[i])] = i
                done, _ = concurrent.futures.wait(
                    running, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    results[running.pop(f)] = f.result()
        except KeyboardInterrupt:
            if on_interrupt:
                on_interrupt()
            ex.shutdown(wait=True, cancel_futures=True)   # the running ones end with QEMU
            raise
    return results


# -- merging -------------------------------------------------------------------------------------
def _read_lines(path):
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            out = [ln for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        pass
    return out


def list_points(out):
    d = os.path.join(out, POINTS_DIR)
    try:
        return sorted(n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n)))
    except OSError:
        return []


def overlaps(spans):
    """spans: {id: (host, start, end, kind)}. Returns {timed id: [ids of other
    points that ran on the same host at the same time]}."""
    out = {}
    for a, (ha, sa, ea, ka) in spans.items():
        if ka != "timed":
            continue
        others = sorted(b for b, (hb, sb, eb, kb) in spans.items()
                        if b != a and hb == ha and sb < ea and sa < eb)
        if others:
            out[a] = others
    return out


def merge(out, planned=(), slurm_jobs=()):
    """Write out/results.jsonl, out/points.jsonl and (count-only points)
    out/costmodel.jsonl from every point folder
    under out/points. Points in `planned` (ids, in sweep order) without a
    done.json get status lines "not_run" with the reason. slurm_jobs: the
    submitted arrays ({"job", "points": [ids]}) to name a task's output file.
    Returns a summary: {"points", "done", "not_run", "hosts", "commits", "shared",
    "statuses": {id: status}}."""
    ids = list(planned) + [p for p in list_points(out) if p not in set(planned)]
    task_of = {}
    for j in slurm_jobs:
        for i, pid in enumerate(j.get("points", [])):
            task_of[pid] = (j.get("job"), i)
    results, lines, spans, hosts, commits, not_run = [], [], {}, {}, {}, []
    cost = []
    dones, statuses = {}, {}
    for pid in ids:
        d = point_dir(out, pid)
        desc = read_json(os.path.join(d, DESCRIPTOR)) or {}
        done = read_json(os.path.join(d, DONE))
        if done is None:
            if not desc and pid not in planned:
                continue
            not_run.append(pid)
            statuses[pid] = "not_run"
            reason = "no result: not run yet, still running, or stopped before it finished"
            if pid in task_of and task_of[pid][0]:
                job, task = task_of[pid]
                reason = (f"no result from Slurm job {job} task {task}: still queued or "
                          f"running, or the task ended without writing it (see "
                          f"slurm/{job}_{task}.out)")
            system, shape, accel = split_id(pid)
            for b in desc.get("benchmarks") or ["?"]:
                lines.append({"schema": 1, "system": desc.get("system") or system,
                              "shape": desc.get("shape") or shape, "machine": desc.get("machine"),
                              "accel": desc.get("accel") or accel, "benchmark": b,
                              "status": "not_run",
                              "reason": reason, "point": pid, "kind": desc.get("kind", "timed")})
            continue
        dones[pid] = done
        statuses[pid] = done.get("status", "?")
        results += [json.loads(x) for x in _read_lines(os.path.join(d, RESULTS))
                    if _loads_ok(x)]
        cost += [json.loads(x) for x in _read_lines(os.path.join(d, COST_RECORDS))
                 if _loads_ok(x)]
        for x in _read_lines(os.path.join(d, STATUS_LINES)):
            if _loads_ok(x):
                lines.append(json.loads(x))
        host = (done.get("host") or {}).get("name", "?")
        hosts[host] = hosts.get(host, 0) + 1
        commits[done.get("commit", "?")] = commits.get(done.get("commit", "?"), 0) + 1
        if isinstance(done.get("started"), (int, float)) and isinstance(
                done.get("ended"), (int, float)) and done.get("booted", True):
            spans[pid] = (host, done["started"], done["ended"], done.get("kind", "timed"))
    shared = overlaps(spans)
    for ln in lines:
        pid = ln.get("point")
        if pid in shared:
            ln["shared_host_with"] = shared[pid]
    write_jsonl_atomic(os.path.join(out, "results.jsonl"), results)
    write_jsonl_atomic(os.path.join(out, "points.jsonl"), lines)
    write_jsonl_atomic(os.path.join(out, COST_RECORDS), cost)
    return {"points": len(ids), "done": len(dones), "not_run": not_run, "hosts": hosts,
            "commits": commits, "shared": shared, "statuses": statuses}


def _loads_ok(s):
    try:
        return isinstance(json.loads(s), dict)
    except ValueError:
        return False
