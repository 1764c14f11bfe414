"""tools/bench-host --quick runs and prints well-formed JSON lines: one per
measurement with the fields docs/urpc.md lists, then the summary. No timing
is asserted (tests never time things); the numbers are for docs/urpc.md.

    /usr/bin/python3 -m pytest -q tests/test_urpc_host.py
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RT_METHODS = {"bare", "bare_1line", "urpc", "urpc_sleep", "pipe", "eventfd", "futex"}
COMMON = {"cpus", "pinned", "host", "commit"}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="spinning round trips need two CPUs")
def test_bench_host_quick():
    proc = subprocess.run([str(ROOT / "tools" / "bench-host"), "--quick"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout
    records = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    rt = [r for r in records if r["bench"] == "host_rt"]
    tput = [r for r in records if r["bench"] == "host_tput"]
    summary = [r for r in records if r["bench"] == "host_summary"]
    assert {r["method"] for r in rt} == RT_METHODS
    for r in rt:
        assert COMMON | {"samples", "median_ns", "p10_ns", "p90_ns", "min_ns"} <= r.keys(), r
        assert r["samples"] == 500
        assert 0 < r["min_ns"] <= r["p10_ns"] <= r["median_ns"] <= r["p90_ns"], r
        assert len(r["cpus"]) == 2
    assert sorted(r["msg_bytes"] for r in tput) == [8, 56, 512]
    for r in tput:
        assert COMMON | {"method", "msgs", "msgs_per_s", "mbytes_per_s"} <= r.keys(), r
        assert r["msgs"] == 10000 and r["msgs_per_s"] > 0
    ratios = [r for r in summary if r["of"] == "ratios"]
    assert len(ratios) == 1 and ratios[0]["urpc_over_bare"] > 0
    assert len(summary) == len(rt) + len(tput) + 1
    assert "urpc / bare" in proc.stdout
