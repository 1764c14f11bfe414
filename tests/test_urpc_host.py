"""tools/bench-host --quick runs and prints well-formed JSON lines: one per
measurement with the fields docs/urpc.md lists (URPC, the bare cache line,
Boost.Lockfree's spsc_queue and the minimal ring in the same run), then
the summary with the ratios. No timing is asserted (tests never time
things); the numbers are for docs/urpc.md.

    /usr/bin/python3 -m pytest -q tests/test_urpc_host.py
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RT_METHODS = {"bare", "bare_1line", "urpc", "ring", "boost", "urpc_sleep", "pipe", "eventfd",
              "futex"}
TPUT_METHODS = {"urpc", "urpc_batch", "ring", "boost"}
COMMON = {"cpus", "pinned", "host", "commit", "rounds", "loadavg"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="spinning round trips need two CPUs")
def test_bench_host_quick():
    proc = subprocess.run([str(ROOT / "tools" / "bench-host"), "--quick", "--runs", "2"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout
    records = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    rt = [r for r in records if r["bench"] == "host_rt"]
    tput = [r for r in records if r["bench"] == "host_tput"]
    summary = [r for r in records if r["bench"] == "host_summary"]
    assert sorted(r["method"] for r in rt) == sorted(list(RT_METHODS) * 2)
    for r in rt:
        assert COMMON | {"samples", "median_ns", "p10_ns", "p90_ns", "min_ns"} <= r.keys(), r
        assert r["samples"] == 500 and r["msg_bytes"] == 8
        assert 0 < r["min_ns"] <= r["p10_ns"] <= r["median_ns"] <= r["p90_ns"], r
        assert len(r["cpus"]) == 2 and r["rounds"] == 5
    # Every stream method at every size, in each of the two runs.
    assert sorted((r["method"], r["msg_bytes"]) for r in tput) == \
        sorted([(m, s) for m in TPUT_METHODS for s in (8, 56, 512)] * 2)
    for r in tput:
        assert COMMON | {"method", "msgs", "msgs_per_s", "mbytes_per_s", "min_msgs_per_s",
                         "max_msgs_per_s"} <= r.keys(), r
        assert r["msgs"] == 10000
        assert 0 < r["min_msgs_per_s"] <= r["msgs_per_s"] <= r["max_msgs_per_s"], r
        if r["method"].startswith("urpc"):
            assert {"full_waits", "acks_published", "sleeps"} <= r.keys(), r
    # The batched stream of 8-byte messages really packs them.
    batch8 = [r for r in tput if r["method"] == "urpc_batch" and r["msg_bytes"] == 8]
    assert all(r["packed_slots"] > 0 for r in batch8), batch8
    measured = [r for r in summary if r["of"] in ("host_rt", "host_tput")]
    assert len(measured) == len(RT_METHODS) + 3 * len(TPUT_METHODS)
    for r in measured:
        v = r["median_ns"] if r["of"] == "host_rt" else r["msgs_per_s"]
        assert r["min"] <= v <= r["max"] and r["runs"] == 2, r
    ratios = {r["ratio"]: r for r in summary if r["of"] == "ratio"}
    for name in ("rt_urpc_over_bare", "rt_urpc_over_boost", "tput_urpc_over_boost_56",
                 "tput_urpc_batch_over_boost_8"):
        assert 0 < ratios[name]["min"] <= ratios[name]["median"] <= ratios[name]["max"], ratios
        assert ratios[name]["goal"], ratios[name]
    assert "rt_urpc_over_bare" in proc.stdout and "boost" in proc.stdout
