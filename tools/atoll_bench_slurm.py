"""tools/bench --slurm: a sweep's points as Slurm job arrays.

Every point is a folder holding its descriptor (atoll_bench_points); a task
of an array runs `tools/bench point DIR` for one of them on whatever node
Slurm gives it, writing into the shared results folder. Slurm gives every
task of one array the same resources, so points are grouped by what they
need (CPUs, memory): one array per group, usually one or a few. The batch
scripts, the task lists and the tasks' output are kept in OUT/slurm/, so a
submission can be read and resubmitted by hand (docs/bench.md).
"""
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from typing import List, Optional

PYTHON = "/usr/bin/python3"
SLURM_DIR = "slurm"


class SlurmError(Exception):
    pass


@dataclasses.dataclass
class Options:
    partition: Optional[str] = None
    constraint: Optional[str] = None    # e.g. a node feature such as "kvm"
    options: List[str] = dataclasses.field(default_factory=list)   # more sbatch options
    max_cpus: Optional[int] = None      # never ask for more CPUs per task than this
    no_wait: bool = False
    poll: float = 10.0                  # seconds between looks at squeue
    max_wait: Optional[float] = None    # stop waiting after this many seconds
    job_name: str = "atoll-bench"


def request(desc, opts):
    """(CPUs, MiB) a point's task asks for."""
    cpus = int(desc.get("cpus") or 1)
    if opts.max_cpus:
        cpus = min(cpus, opts.max_cpus)
    return max(1, cpus), int(desc.get("mem_mb") or 1024)


def groups(descs, opts):
    """[((cpus, mem_mb), [descs])] in order of first appearance."""
    out = {}
    for d in descs:
        out.setdefault(request(d, opts), []).append(d)
    return list(out.items())


def batch_script(out, repo, list_file, n, cpus, mem_mb, opts):
    """The text of one array's batch script. Paths are absolute: the
    results folder and the repository must be at the same place on every
    node (a shared folder)."""
    out, repo, list_file = (os.path.abspath(p) for p in (out, repo, list_file))
    sb = [f"--job-name={opts.job_name}", f"--array=0-{n - 1}", "--ntasks=1",
          f"--cpus-per-task={cpus}", f"--mem={mem_mb}M",
          f"--output={os.path.join(out, SLURM_DIR, '%A_%a.out')}", f"--chdir={repo}"]
    if opts.partition:
        sb.append(f"--partition={opts.partition}")
    if opts.constraint:
        sb.append(f"--constraint={opts.constraint}")
    sb += list(opts.options)
    lines = ["#!/bin/sh",
             f"# Atoll benchmark sweep (tools/bench --slurm): {n} point(s), each needing "
             f"{cpus} CPU(s) and {mem_mb} MiB.",
             "# Task i runs the point on line i+1 of the list; its results go into the",
             "# point's folder, which `tools/bench report` merges."]
    lines += [f"#SBATCH {shlex.quote(o) if ' ' in o else o}" for o in sb]
    lines += ["set -eu",
              f"cd {shlex.quote(repo)}",
              f"point=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {shlex.quote(list_file)})",
              'echo "tools/bench point $point on $(hostname)"',
              f'exec {PYTHON} tools/bench point "$point"', ""]
    return "\n".join(lines)


def sbatch(script):
    """Submit a batch script; returns the job id."""
    try:
        r = subprocess.run(["sbatch", "--parsable", script], capture_output=True, text=True,
                           timeout=120)
    except FileNotFoundError:
        raise SlurmError("sbatch not found: Slurm's client commands are not installed here "
                         "(Debian: slurm-client; tools/install-deps --cluster)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"sbatch {script} did not answer in 120 s") from None
    if r.returncode != 0:
        raise SlurmError(f"sbatch {script} failed: {(r.stderr or r.stdout).strip()}")
    job = r.stdout.strip().split(";")[0]
    if not job.isdigit():
        raise SlurmError(f"sbatch {script}: unexpected answer {r.stdout.strip()!r}")
    return job


def submit(descs, out, repo, opts, submit_fn=sbatch):
    """Write a task list and a batch script per group of points and submit
    each as one array. Returns [{"job", "script", "points": [ids], "cpus",
    "mem_mb"}] (task i of job runs points[i])."""
    d = os.path.join(out, SLURM_DIR)
    os.makedirs(d, exist_ok=True)
    jobs = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for (cpus, mem), group in groups(descs, opts):
        name = f"{stamp}-{cpus}cpu-{mem}M"
        list_file = os.path.join(d, name + ".points")
        with open(list_file, "w") as f:
            for g in group:
                f.write(os.path.abspath(os.path.join(out, "points", g["id"])) + "\n")
        script = os.path.join(d, name + ".sh")
        with open(script, "w") as f:
            f.write(batch_script(out, repo, list_file, len(group), cpus, mem, opts))
        os.chmod(script, 0o755)
        job = submit_fn(script)
        jobs.append({"job": job, "script": script, "points": [g["id"] for g in group],
                     "cpus": cpus, "mem_mb": mem})
    return jobs


def active(jobs):
    """The ids among `jobs` that Slurm still has queued or running."""
    try:
        r = subprocess.run(["squeue", "-h", "-j", ",".join(jobs), "-o", "%F %T"],
                           capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SlurmError("squeue not found (Debian: slurm-client)") from None
    except subprocess.TimeoutExpired:
        return set(jobs)          # the controller is slow: ask again later
    if r.returncode != 0:
        # Slurm forgets finished jobs after MinJobAge; it then calls them invalid.
        if "Invalid job id" in r.stderr:
            return set()
        raise SlurmError(f"squeue failed: {r.stderr.strip()}")
    return {ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()} & set(jobs)


def wait(jobs, poll=10.0, progress=None, active_fn=active, max_wait=None):
    """Return when none of the jobs is queued or running; raise SlurmError
    after max_wait seconds (the jobs go on)."""
    said = None
    t0 = time.monotonic()
    while True:
        left = active_fn(jobs)
        if not left:
            return
        if max_wait is not None and time.monotonic() - t0 > max_wait:
            raise SlurmError(f"job(s) {', '.join(sorted(left))} still queued or running after "
                             f"{max_wait:g} s (--slurm-max-wait); they go on")
        msg = progress() if progress else ""
        if msg != said:
            print(f"bench: Slurm: waiting for job(s) {', '.join(sorted(left))}"
                  + (f": {msg}" if msg else ""), file=sys.stderr, flush=True)
            said = msg
        time.sleep(poll)
