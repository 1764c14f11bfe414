"""Host tests of tools/mem-costmodel's model (docs/memory.md, "The designs by
the cost model"): each CPU's background measured in idle regions and taken
off the design regions as a multiple of their median CPU, the busiest CPU's
load bounding the modelled throughput, and the commands it types."""
import types

from load_tool import load_tool


def tool():
    return load_tool("mem-costmodel")


def region(protocol, src, insns, ops=10, pages=1, transfers=100):
    return {"type": "region", "region": "mem", "args": {"protocol": protocol, "src": src, "pages": pages, "ops": ops},
            "per_cpu": {"instructions": insns}, "transfers": transfers}


def test_background_is_each_cpus_idle_multiple_of_the_median():
    mc = tool()
    idle = [region("idle", 1, [3000, 1000, 1000, 1000, 1000], ops=1),
            region("idle", 2, [5000, 1000, 1000, 2000, 1000], ops=1),
            region("idle", 3, [4000, 1000, 1000, 1500, 1000], ops=1)]
    assert mc.background(idle, 5) == [4.0, 1.0, 1.0, 1.5, 1.0]
    assert mc.background([], 3) == [1.0, 1.0, 1.0]   # no idle region: the median alone


def test_core_0s_background_is_not_counted_as_a_designs_work():
    mc = tool()
    idle = [region("idle", 1, [4000, 1000, 1000, 1000, 1000], ops=1)]
    # Each client's region: core 0 does only its background (4x the median),
    # the instance core (2) the work: 2,000 instructions per op above the median.
    base = 1000
    work = [region("per_node", c, [4 * base * 10, base * 10, (base + 2000) * 10, base * 10, base * 10])
            for c in range(4)]
    [row] = mc.model(idle + work, [], 5)
    assert row["design"] == "per-node" and row["bottleneck_cpu"] == 2, row
    assert row["bottleneck_insns_per_op"] == 2000 and row["background_cpu0"] == 4.0, row
    assert row["model_throughput_per_minsn"] == round(4 / 8000 * 1e6, 3)
    # Without the idle regions, core 0's background would have been the bottleneck.
    [naive] = mc.model(work, [], 5)
    assert naive["bottleneck_cpu"] == 0 and naive["bottleneck_insns_per_op"] == 3000, naive


def test_commands_measure_idle_first_and_sleep_before_each_wait(monkeypatch):
    mc = tool()
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return types.SimpleNamespace(stdout="", stderr="", returncode=0)

    monkeypatch.setattr(mc.subprocess, "run", fake_run)
    args = types.SimpleNamespace(smp=2, numa=1, mem="512", rounds=3, bytes=[4096], designs=["central"], idle=20,
                                 settle=40, timeout=10, services=None)
    mc.boot(args, "/tmp/x.jsonl")
    assert "--services" not in seen["cmd"]
    cmds = seen["cmd"][seen["cmd"].index("--") + 1:]
    assert cmds[:3] == [f"run {mc.IDLE_CORES[0]} mem idle 20", "sleep 70", "wait 600000"]
    assert cmds[-3:] == ["run 1 mem bench central 4096 3 1", "sleep 40", "wait 600000"]
    # Another manifest (say the instances per-node:last) goes to tools/run.
    mc.boot(types.SimpleNamespace(**dict(vars(args), services="m.services")), "/tmp/x.jsonl")
    i = seen["cmd"].index("--services")
    assert seen["cmd"][i + 1] == "m.services" and i < seen["cmd"].index("--")
