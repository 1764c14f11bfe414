"""Host tests of the `mem` benchmark's Atoll half (tools/atoll_bench.py):
the shell commands it types, and how its mem_bench events become results
(per-core latency; throughput and local share once every core of a run
reported; malformed or failed runs are errors)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_bench as ab  # noqa: E402
from atoll_run import Machine  # noqa: E402


def test_commands_every_design_size_and_core_count():
    cmds = ab.atoll_mem_commands(Machine(smp=4), {"rounds": 7, "designs": "central,cache"})
    assert ab.mem_core_counts(4) == [1, 2, 4] and ab.mem_core_counts(6) == [1, 2, 4, 6]
    runs = [c for c in cmds if c.startswith("run ")]
    assert len(runs) == 2 * 2 * (1 + 2 + 4)
    assert cmds[:2] == ["run 0 mem bench central 4096 7 1", "wait 600000"]
    assert "run 3 mem bench cache 2097152 7 4" in cmds
    assert cmds.count("wait 600000") == 2 * 2 * 3


def ev(core, cores, total_ns, local=10, **kw):
    e = {"event": "mem_bench", "core": core, "node": 0, "design": "per-node", "bytes": 4096, "cores": cores,
         "rounds": 10, "total_ns": total_ns, "median_ns": 900, "min_ns": 800, "max_ns": 5000, "local": local,
         "failed": 0, "error": "ERR_OK"}
    e.update(kw)
    return e


def test_adapt_latency_then_throughput_once_all_cores_reported():
    ab._mem_runs.clear()
    first = ab.atoll_mem_adapt(ev(0, 2, 10_000_000), {})
    assert [r["metric"] for r in first] == ["alloc_free_latency"]
    assert first[0]["value"] == 900 and first[0]["params"] == {"design": "per-node", "bytes": 4096, "cores": 2,
                                                               "core": 0}
    second = ab.atoll_mem_adapt(ev(1, 2, 20_000_000, local=9), {})
    by = {r["metric"]: r for r in second}
    assert by["throughput"]["value"] == 1000 + 500 and by["throughput"]["params"] == {
        "design": "per-node", "bytes": 4096, "cores": 2}
    assert by["local_share"]["value"] == 95.0
    assert ab._mem_runs == {}


def test_adapt_errors():
    ab._mem_runs.clear()
    assert ab.atoll_mem_adapt({"event": "other"}, {}) == []
    bad = ab.atoll_mem_adapt(ev(0, 1, 1000, design="nope"), {})
    assert bad[0]["event"] == "error" and "malformed" in bad[0]["reason"]
    failed = ab.atoll_mem_adapt(ev(0, 1, 1000, failed=2, error="ERR_QUOTA"), {})
    assert failed[0]["event"] == "error" and "ERR_QUOTA" in failed[0]["reason"]
    assert "mem" in ab.BENCHMARKS and "atoll" in ab.BENCHMARKS["mem"].halves
