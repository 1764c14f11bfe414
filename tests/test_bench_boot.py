"""tools/bench-boot and its floor kernel (bench/bootfloor): the floor must
really start every core (else the ratio compares with a machine doing less),
and the benchmark must find every mark of both boots. Nothing is timed here:
the numbers are `make bench-boot`'s (docs/bench.md, "Boot time")."""
import json

import pytest

from load_tool import load_tool

bench_boot = load_tool("bench-boot")


@pytest.mark.parametrize("cpus", [1, 6])
def test_the_floor_starts_every_core(cpus):
    m = bench_boot.machine(cpus, "tcg", kernel=bench_boot.FLOOR_KERNEL, cmdline=f"cpus={cpus}")
    r = bench_boot.atoll_run.boot(m, timeout=120)
    assert r.status == 0, r.console[-2000:]
    line = [ln for ln in r.console.splitlines() if ln.startswith("@floor ")]
    assert len(line) == 1 and json.loads(line[0][len("@floor "):]) == {"cpus": cpus, "up": cpus}, r.console


def test_the_floor_says_when_a_core_is_missing():
    """Asked for more cores than the machine has, it reports fewer and status 1."""
    m = bench_boot.machine(2, "tcg", kernel=bench_boot.FLOOR_KERNEL, cmdline="cpus=3")
    r = bench_boot.atoll_run.boot(m, timeout=120)
    assert r.status == 1
    assert '@floor {"cpus":3,"up":2}' in r.console


def test_one_round_finds_every_mark(capsys):
    assert bench_boot.main(["--cpus", "2", "--runs", "1"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (r["bench"], r["cpus"], r["runs"], r["ok"], r["target"]) == ("boot", 2, 1, True, 1.5)
    assert r["host_pages"] == "small"
    ph = r["atoll_phases_s"]
    assert 0 < ph["grub"] < ph["kernel"] < ph["cores"] < ph["monitors"] == r["atoll_s"], r
    assert 0 < r["floor_phases_s"]["grub"] < r["floor_s"] and r["ratio"] == round(r["atoll_s"] / r["floor_s"], 2)
    assert r["floor_cpu_s"] > 0 and r["atoll_cpu_s"] > 0


def test_bad_counts_are_refused():
    for bad in ("0", "256", "x"):
        with pytest.raises(SystemExit, match="--cpus"):
            bench_boot.main(["--cpus", bad])
