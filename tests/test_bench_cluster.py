"""tools/bench --slurm through a real one-node Slurm cluster on this machine.

The test starts its own munged (a fresh key), slurmctld and slurmd from a
configuration it writes into a temporary folder (free loopback ports, its
own state and spool folders, nothing under /etc touched), runs a quick sweep
of two shapes on both systems through `sbatch --array`, runs the same sweep
locally with --jobs 2, and checks that the two merged reports have the same
points and metrics. The daemons are stopped afterwards by their process ids.
It needs Debian's slurmctld, slurmd, slurm-client and munge
(tools/install-deps --cluster) and skips with that reason without them.
Without Debian's Linux kernel the Linux points fail the same way in both
sweeps (the report says why); with it they boot.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import atoll_bench as ab  # noqa: E402
import atoll_bench_report as rep  # noqa: E402

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
MISSING = [d for d in DAEMONS if not shutil.which(d, path=os.environ.get("PATH", "") +
                                                  ":/usr/sbin:/sbin")]


def _which(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """munged + slurmctld + slurmd for one node, all in `root`."""

    def __init__(self, root):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        self.conf = os.path.join(root, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.pidfiles = []

    def _run(self, *cmd, check=True, timeout=30):
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip() or r.stdout.strip()}")
        return r

    def start(self):
        r, user = self.root, _user()
        m = os.path.join(r, "munge")
        os.makedirs(m, mode=0o700)
        for d in ("state", "spool", "log"):
            os.makedirs(os.path.join(r, d))
        self._run(_which("mungekey"), "--create", "--keyfile", os.path.join(m, "munge.key"))
        sock = os.path.join(m, "munge.sock")
        self.pidfiles.append(os.path.join(m, "munged.pid"))
        self._run(_which("munged"), f"--socket={sock}", f"--key-file={m}/munge.key",
                  f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log",
                  f"--seed-file={m}/seed", "--force")
        conf = f"""\
ClusterName=atolltest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
MinJobAge=600
NodeName={self.host} NodeAddr=127.0.0.1 CPUs=4 RealMemory=8192 State=UNKNOWN
PartitionName=atoll Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        self.pidfiles += [os.path.join(r, "slurmd.pid"), os.path.join(r, "slurmctld.pid")]
        self._run(_which("slurmctld"), "-i")
        self._run(_which("slurmd"), "-N", self.host)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            s = self._run("sinfo", "-h", "-o", "%t", check=False)
            if s.returncode == 0 and s.stdout.strip() == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError("the test cluster's node did not become idle in 30 s:\n"
                           + self.logs())

    def logs(self):
        out = []
        for f in ("log/slurmctld.log", "log/slurmd.log", "munge/munged.log"):
            try:
                with open(os.path.join(self.root, f)) as fh:
                    out.append(f"== {f}\n" + "".join(fh.readlines()[-15:]))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        self._run("scontrol", "shutdown", check=False)
        for pf in reversed(self.pidfiles):      # slurmd, slurmctld, then munged
            try:
                with open(pf) as f:
                    pid = int(f.read().strip())
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError):
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def cluster(monkeypatch):
    root = tempfile.mkdtemp(prefix="atoll-slurm-")   # short: munge's socket path
    c = Cluster(root)
    try:
        c.start()
    except (RuntimeError, subprocess.SubprocessError) as e:
        c.stop()
        pytest.fail(f"could not start the one-node Slurm cluster: {e}")
    monkeypatch.setenv("SLURM_CONF", c.conf)
    yield c
    c.stop()
    shutil.rmtree(root, ignore_errors=True)


def _atoll_built():
    return ab.AtollSystem().unavailable() is None


SWEEP = ["--shapes", "2 2n2", "--systems", "linux,atoll", "--accel", "tcg", "--quick",
         "--no-plots", "--timeout", "120"]


def _why(*outs):
    """What each sweep's points that are not plainly ok said: status, reason,
    malformed lines and the console's tail (for a failure seen only in CI)."""
    said = []
    for out in outs:
        for p in rep.Data.load(str(out)).points:
            if p.get("status") != "ok" or p.get("malformed"):
                said.append({k: p.get(k) for k in ("system", "shape", "benchmark", "status", "reason",
                                                   "malformed", "console_tail")} | {"out": str(out)})
    return said


def _summary(out):
    data = rep.Data.load(str(out))
    points = {(p["system"], p["shape"], p["accel"], p["benchmark"], p["status"])
              for p in data.points}
    metrics = {(r["system"], r["shape"], r["accel"], r["benchmark"], r["metric"], r["unit"],
                json.dumps(r.get("params"), sort_keys=True)) for r in data.records}
    return points, metrics


@pytest.mark.skipif(bool(MISSING), reason="needs Debian's slurmctld, slurmd, slurm-client and "
                    f"munge (tools/install-deps --cluster); missing: {', '.join(MISSING)}")
@pytest.mark.skipif(not _atoll_built(), reason="Atoll is not built (make)")
def test_sweep_through_slurm_matches_the_local_sweep(cluster, tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    ab.main(SWEEP + ["--out", str(local), "--jobs", "2"])
    ab.main(SWEEP + ["--out", str(remote), "--slurm", "--slurm-poll", "0.5",
                     "--slurm-opt=--time=10", "--slurm-max-wait", "300"])
    run = json.load(open(remote / "run.json"))
    jobs = run["slurm"]["jobs"]
    # Linux and Atoll points need the same resources on these shapes: one array.
    assert len(jobs) == 1 and jobs[0]["cpus"] == 2 and len(jobs[0]["points"]) == 4, jobs
    lp, lm = _summary(local)
    sp, sm = _summary(remote)
    assert sp == lp, (_why(local, remote), cluster.logs())
    assert sm == lm, ("local only:", sorted(lm - sm), "slurm only:", sorted(sm - lm), _why(local, remote))
    atoll_ok = {(s, b) for (sys_, s, a, b, st) in sp if sys_ == "atoll" and st == "ok"}
    assert ("2cpu", "pingpong") in atoll_ok and ("2cpu-2node", "boot") in atoll_ok, sp
    if ab.LinuxSystem().unavailable() is None:
        # With Debian's kernel the Linux points boot: the two sweeps agree on
        # metrics, not only on a failure.
        linux_ok = {(s, b) for (sys_, s, a, b, st) in sp if sys_ == "linux" and st == "ok"}
        assert ("2cpu", "pingpong") in linux_ok and ("2cpu-2node", "boot") in linux_ok, (sp, _why(local, remote))
        assert {m for m in sm if m[0] == "linux"}, sm
    # Every Slurm point ran as a task of the array and says so.
    for pid in jobs[0]["points"]:
        done = json.load(open(remote / "points" / pid / "done.json"))
        assert done["host"]["slurm"]["job"] == jobs[0]["job"]
        assert done["host"]["name"] == socket.gethostname()
    assert (remote / "slurm" / f"{jobs[0]['job']}_0.out").exists()
    text = (remote / "report.md").read_text()
    assert "## Points" in text and "tools/bench" in text and "--slurm" in text


@pytest.mark.skipif(bool(MISSING), reason="needs Debian's slurmctld, slurmd, slurm-client and "
                    f"munge (tools/install-deps --cluster); missing: {', '.join(MISSING)}")
@pytest.mark.skipif(not _atoll_built(), reason="Atoll is not built (make)")
def test_slurm_no_wait_then_report(cluster, tmp_path, capsys):
    out = tmp_path / "nowait"
    rc = ab.main(["--shapes", "2", "--systems", "atoll", "--benchmarks", "boot", "--accel",
                  "tcg", "--quick", "--no-plots", "--out", str(out), "--slurm", "--no-wait"])
    assert rc == 0
    said = capsys.readouterr().out
    job = json.load(open(out / "run.json"))["slurm"]["jobs"][0]["job"]
    assert f"squeue -j {job}" in said and f"tools/bench report --out {out}" in said
    # Until the task finishes its point has no result; then the report has it.
    import atoll_bench_slurm as slurm
    slurm.wait([job], poll=0.5, max_wait=120)
    assert ab.main(["report", "--out", str(out), "--no-plots"]) == 0
    points = [json.loads(ln) for ln in open(out / "points.jsonl")]
    assert [(p["benchmark"], p["status"]) for p in points] == [("boot", "ok")]
