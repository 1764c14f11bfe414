"""Host tests of tools/store-costmodel's model (docs/store.md, "Throughput
by the cost model"): lone clients' regions summed into N at once, the
busiest CPU bounding the throughput, one client's throughput from its own
region, placements told apart by their replica counts, and the commands it
types."""
import types

from load_tool import load_tool


def tool():
    return load_tool("store-costmodel")


def region(insns, replicas, reads=100, ops=10, protocol="store_fresh"):
    return {"type": "region", "region": "store", "transfers": 50,
            "args": {"protocol": protocol, "cores": 1, "replicas": replicas, "reads": reads, "ops": ops},
            "per_cpu": {"instructions": [x * ops for x in insns]}}


def idle(insns):
    return {"type": "region", "region": "mem", "transfers": 0, "args": {"protocol": "idle", "ops": 1},
            "per_cpu": {"instructions": insns}}


def test_placements_scale_by_their_busiest_cpu():
    sc = tool()
    # 8 CPUs, 2 nodes (0-3, 4-7), clients on 0, 1, 4 and 5. Every CPU
    # idles at 100 instructions an operation but core 0, at 3x (its own
    # servers).
    bg = [idle([300] + [100] * 7)]

    def lone(c, replica):
        x = [300] + [100] * 7
        x[c] += 1000          # the client's own work
        x[replica] += 2000    # its replica's, to answer it
        return x
    clients = (0, 1, 4, 5)
    regions = (bg + [region(lone(c, 0 if c < 4 else 4), 2) for c in clients]
               + [region(lone(c, 0), 1) for c in clients])
    rows = {r["store"]: r for r in sc.model(regions, 8, 2)}
    kvn, kv1 = rows["kvn"], rows["kv1"]
    # Per-node: cores 0 and 4 each carry their own client (1,000) and two
    # clients' answers (4,000): 5,000 for 4 operations.
    assert kvn["bottleneck_cpu"] == 0 and kvn["bottleneck_insns_per_op"] == 1250, kvn
    assert kvn["model_throughput_per_minsn"] == 800.0, kvn
    # Alone, the busiest CPU is the replica's: 3,000 for a client on it,
    # 2,000 for one beside it; the median 2,500.
    assert kvn["one_client_per_minsn"] == 400.0 and kvn["scaling"] == 2.0, kvn
    # Central: core 0 carries 4 x 2,000 + 1,000.
    assert kv1["bottleneck_cpu"] == 0 and kv1["model_throughput_per_minsn"] == round(4 / 9000 * 1e6, 3), kv1
    assert kv1["placement"] == "central" and kvn["placement"] == "per-node"


def test_rows_are_split_by_reads_and_freshness_and_skip_other_regions():
    sc = tool()
    regions = [region([100, 1100], 1, reads=95), region([100, 1100], 1, reads=100),
               region([100, 1100], 1, reads=100, protocol="store_stale"),
               dict(region([100, 1100], 1), args={"protocol": "store_fresh", "cores": 2, "replicas": 1,
                                                  "reads": 100, "ops": 10})]
    rows = sc.model(regions, 2, 1, ["kv1"])
    assert {r["store"] for r in rows} == {"kv1"}, rows
    assert [(r["reads"], r["reads_fresh"], r["clients"]) for r in rows] == [(100, True, 1), (100, False, 1),
                                                                             (95, True, 1)], rows


def test_commands_idle_first_one_client_at_a_time_and_a_manifest_of_the_stores_measured(tmp_path, monkeypatch):
    sc = tool()
    args = types.SimpleNamespace(smp=2, numa=1, mem="512", ops=20, keys=8, reads=[100], placements=["kv1"],
                                 stale=True, idle=20, settle=40, timeout=10)
    cmds = sc.commands(args)
    assert cmds[:3] == ["run 1 mem idle 20", "sleep 70", "wait 600000"]
    assert cmds[3:] == ["run 0 store bench kv1 0 20 100 8 1 1 stale", "sleep 40", "wait 600000",
                        "run 1 store bench kv1 1 20 100 8 2 1 stale", "sleep 40", "wait 600000"]
    path = sc.manifest(["kv1"], str(tmp_path))
    words = [ln.split()[0] for ln in open(path) if ln.split() and not ln.startswith("#")]
    assert "kv1" in words and "kvn" not in words and "kvc" not in words, words
    seen = {}
    monkeypatch.setattr(sc.subprocess, "run", lambda cmd, **kw: seen.setdefault("cmd", cmd) and
                        types.SimpleNamespace(stdout="", stderr="", returncode=0))
    sc.boot(args, str(tmp_path / "x.jsonl"))
    i = seen["cmd"].index("--services")
    assert seen["cmd"][i + 1].endswith("store-kv1.services") and "--cost-model" in seen["cmd"]


def test_counts_of_another_machine_are_refused():
    """A replica count no placement has on this machine: a clear exit, not a row named None."""
    sc = tool()
    try:
        sc.model([region([100, 1100], 3)], 2, 1)
    except SystemExit as e:
        assert "3 replicas" in str(e), e
    else:
        raise AssertionError("a region of 3 replicas on 2 CPUs was taken")
