"""tools/topology.py and `tools/run --topology` on the host (no boot):
hwloc synthetic strings and hwloc XML into QEMU machines, malformed input,
defaults, limits, hwloc bitmaps, comparing a guest's XML with a request; and
the CPU driver's XML writer (tests/host/test_topo_xml.c's cases) read back by
lstopo. Checks against hwloc itself are skipped when hwloc is not installed.
"""
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
import topology  # noqa: E402
from atoll_run import GiB, MiB  # noqa: E402
from topology import TopologyError, load, parse_synthetic, parse_xml  # noqa: E402

LSTOPO = shutil.which("lstopo-no-graphics")
HWLOC_CALC = shutil.which("hwloc-calc")
needs_hwloc = pytest.mark.skipif(not LSTOPO or not HWLOC_CALC, reason="hwloc (lstopo, hwloc-calc) not installed")
UNEVEN = os.path.join(ROOT, "tests", "data", "topology-uneven.xml")
XML_WRITER = os.path.join(ROOT, "build", "host", "tests", "host", "test_topo_xml")


def shape(t):
    return t.packages, t.cores, t.threads


def node_cpus(t):
    return [n.cpus for n in t.nodes]


# -- synthetic strings -----------------------------------------------------------------------
@pytest.mark.parametrize("spec,want_shape,want_nodes,want_pkgs", [
    ("pack:1 core:1", (1, 1, 1), [], []),
    ("pack:2 core:4", (2, 4, 1), [], []),
    ("pack:2 core:4 pu:1", (2, 4, 1), [], []),
    ("pack:2 numa:2 core:2 pu:2", (2, 4, 2), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]],
     [0, 0, 1, 1]),
    ("pack:4 numa:1 core:8", (4, 8, 1), [list(range(i * 8, i * 8 + 8)) for i in range(4)], [0, 1, 2, 3]),
    ("numa:2 pack:2 core:2", (4, 2, 1), [[0, 1, 2, 3], [4, 5, 6, 7]], [None, None]),
    ("socket:2 node:1 l2:1 core:2 pu:1", (2, 2, 1), [[0, 1], [2, 3]], [0, 1]),
    ("Package:2 Group:2 [NUMANode(memory=536870912)] Core:2 PU:1", (2, 4, 1),
     [[0, 1], [2, 3], [4, 5], [6, 7]], [0, 0, 1, 1]),
    ("pack:2 [numa] [numa] core:2", (2, 2, 1), [[0, 1], [], [2, 3], []], [0, 0, 1, 1]),
    ("pack:2 core:2 [numa] pu:2", (2, 2, 2), [[0, 1], [2, 3], [4, 5], [6, 7]], [0, 0, 1, 1]),
    ("pack:1 die:2 group:2 l3:1 l2:2 l1d:1 l1i:1 core:1 pu:2", (1, 8, 2), [], []),
    ("[numa(memory=512MiB)] pack:2 core:2", (2, 2, 1), [], []),
    ("  PACK:2   Core:3  ", (2, 3, 1), [], []),
])
def test_synthetic(spec, want_shape, want_nodes, want_pkgs):
    t = parse_synthetic(spec)
    assert shape(t) == want_shape
    assert node_cpus(t) == want_nodes
    assert [n.package for n in t.nodes] == want_pkgs
    m = t.to_machine(accel="tcg")
    assert (m.sockets, m.cores, m.threads, m.smp) == (*want_shape, want_shape[0] * want_shape[1] * want_shape[2])


@needs_hwloc
@pytest.mark.parametrize("spec", [
    "pack:1 core:1 pu:1", "pack:2 core:4 pu:1", "pack:2 numa:2 core:2 pu:2", "pack:4 numa:1 core:8 pu:1",
    "socket:2 node:1 l2:1 core:2 pu:1", "pack:2 [numa] [numa] core:2 pu:1", "pack:2 core:2 [numa] pu:2",
    "pack:1 l3:1 l2:2 l1d:1 core:2 pu:2", "numa:2 pack:2 core:2 pu:1",
])
def test_synthetic_agrees_with_hwloc(spec):
    """hwloc's own reading of the string (exported as XML) gives the same machine."""
    mine = parse_synthetic(spec)
    xml = subprocess.run([LSTOPO, "--input", spec, "--of", "xml", "-"], check=True, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    theirs = parse_xml(xml, source="hwloc")
    assert shape(theirs) == shape(mine)
    if mine.nodes:
        assert node_cpus(theirs) == node_cpus(mine)
        assert [n.package for n in theirs.nodes] == [n.package for n in mine.nodes]
    else:
        assert len(theirs.nodes) == 0


@pytest.mark.parametrize("spec,message", [
    ("", "empty synthetic topology"),
    ("pack:2 foo:3 core:1", "unknown level 'foo'"),
    ("pack:2 core:0", "zero count"),
    ("pack:0", "zero count"),
    ("pack:two core:2", "not a whole number"),
    ("pack:-1 core:2", "not a whole number"),
    ("pack core:2", "needs a count"),
    ("pack:2 pu:2 core:2", "pu must be the last level"),
    ("pack:2 pack:2 core:1", "more than one package level"),
    ("core:2 pack:2", "core must come below package"),
    ("pack:2 core:2 l1:1 pu:2", "only pu may follow core"),
    ("pack:2 core:2 numa:2 pu:2", "only pu may follow core"),
    ("pack:2 numa:2 core:2 [numa]", "more than one level"),
    ("pack:2 core:2 pu:2 [numa]", "cannot hang below a pu"),
    ("pack:2 [core] pu:1", "only NUMA nodes can be memory children"),
    ("pack:2 (core:2", "unclosed"),
    ("pack:2) core:2", "unbalanced"),
    ("machine:1 pack:2 core:2", "the machine is implicit"),
    ("pack:2 numa:2(memory) core:1", "bad attribute"),
    ("pack:2 numa:2(size=1G) core:1", "attribute size= in 'numa:2(size=1G)' is not supported"),
    ("pack:2 core:2(indexes=0,1) pu:1", "attribute indexes= in"),
    ("pack:2 numa:2(memory=lots) core:1", "bad memory size"),
    ("pack:2 numa:2(memory=3MiB) core:1", "not a multiple of 2 MiB"),
    ("pack:2 numa:1(memory=512MB) core:1", "not a multiple of 2 MiB"),   # hwloc's MB is 10^6
    ("pack:32 core:16 pu:1", "more than 288 CPUs"),
    ("pack:1000000000 core:1000000000", "more than 288 CPUs"),
    ("pack:2 misc:1 core:1", "Misc objects are not supported"),
    ("pack:3 numa:1 core:1", None),       # fine: 1G does not split in 3, so 1020M (below)
])
def test_synthetic_errors(spec, message):
    if message is None:
        assert load(spec).to_machine(accel="tcg").mem == 1020 * MiB
        return
    with pytest.raises(TopologyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(spec).to_machine(accel="tcg")


def test_cpu_limits_per_machine_type():
    assert load("pack:16 core:9 pu:2").to_machine(accel="kvm", machine="q35").smp == 288
    with pytest.raises(TopologyError, match="QEMU's pc machine allows at most 255"):
        load("pack:16 core:8 pu:2").to_machine(accel="kvm", machine="pc")
    with pytest.raises(TopologyError, match="more than 255 need x2APIC"):
        load("pack:16 core:8 pu:2").to_machine(accel="tcg", machine="q35")
    assert load("pack:15 core:16 pu:1").to_machine(accel="tcg").smp == 240
    # 255 CPUs, but QEMU's APIC ids reach 4 << 6 | 50 = 306: x2APIC territory.
    with pytest.raises(TopologyError, match="the highest is 306; APIC ids above 254 need x2APIC"):
        load("pack:5 core:51").to_machine(accel="tcg")
    assert load("pack:5 core:51").to_machine(accel="kvm").smp == 255


# -- memory and distances ------------------------------------------------------------------
def test_default_distances():
    t = load("pack:2 numa:2 core:1")
    assert t.distances() == [[10, 20, 21, 21], [20, 10, 21, 21], [21, 21, 10, 20], [21, 21, 20, 10]]
    assert load("numa:2 pack:2 core:1").distances() == [[10, 21], [21, 10]]
    assert load("pack:1 numa:3 core:1").distances() == [[10, 20, 20], [20, 10, 20], [20, 20, 10]]
    assert load("pack:2 core:2").distances() is None
    assert topology.SAME_PACKAGE_DISTANCE == 20 and topology.CROSS_PACKAGE_DISTANCE == 21


def test_memory_rules():
    # Even split of the default 1G, or of --mem.
    m = load("pack:2 [numa] core:2").to_machine(accel="tcg")
    assert [n.mem for n in m.numa] == [512 * MiB] * 2 and m.mem == 1 * GiB
    m = load("pack:4 [numa] core:1").to_machine(mem=2 * GiB, accel="tcg")
    assert [n.mem for n in m.numa] == [512 * MiB] * 4
    # The description's sizes, as given.
    m = load("pack:2 [numa(memory=1GiB)] [numa(memory=256M)] core:1").to_machine(accel="tcg")
    assert [n.mem for n in m.numa] == [1 * GiB, 256 * MiB, 1 * GiB, 256 * MiB]
    assert m.mem == 2560 * MiB
    # --mem shares a total in proportion to them (2 MiB units, remainders first).
    m = load("pack:2 [numa(memory=1GiB)] [numa(memory=256M)] core:1").to_machine(mem=1 * GiB, accel="tcg")
    assert [n.mem for n in m.numa] == [410 * MiB, 102 * MiB, 410 * MiB, 102 * MiB]
    assert sum(n.mem for n in m.numa) == 1 * GiB
    # One node: no -numa at all, its memory as the machine's.
    m = load("[numa(memory=512MiB)] pack:2 core:2").to_machine(accel="tcg")
    assert m.numa == [] and m.mem == 512 * MiB
    # An explicit --mem that does not split is refused, with the multiple to use.
    with pytest.raises(TopologyError, match=r"does not split into 3 NUMA nodes.*multiple of 6M"):
        load("pack:3 [numa] core:1").to_machine(mem=1 * GiB, accel="tcg")
    with pytest.raises(TopologyError, match="not a positive multiple of 2M"):
        load("pack:2 [numa] core:1").to_machine(mem=3 * MiB, accel="tcg")
    with pytest.raises(TopologyError, match="too little memory"):
        load("pack:2 [numa(memory=1GiB)] [numa(memory=2MiB)] core:1").to_machine(mem=4 * MiB, accel="tcg")


@pytest.mark.parametrize("nodes,want", [
    (1, 1024 * MiB), (2, 1024 * MiB), (3, 1020 * MiB), (4, 1024 * MiB), (5, 1020 * MiB),
    (6, 1020 * MiB), (7, 1022 * MiB), (64, 1024 * MiB), (511, 1022 * MiB), (513, 1026 * MiB),
])
def test_default_memory_splits(nodes, want):
    """No --mem and no sizes in the description: 1G when it splits into the
    nodes, else the largest size below 1G that does (never under 2M a node)."""
    assert atoll_run.default_mem(nodes) == want
    assert want % (nodes * 2 * MiB) == 0 and want <= 1 * GiB or nodes > 512


def test_default_memory_for_three_nodes():
    # The first-use case of issue 16: three packages, a node each.
    t = load("pack:3 numa:1 core:2 pu:2")
    m = t.to_machine(accel="tcg")
    assert [n.mem for n in m.numa] == [340 * MiB] * 3 and m.mem == 1020 * MiB
    assert "memory 1020M (340M per node): the default 1G does not split into 3 NUMA nodes" in t.summary()
    # 1G splits: nothing to say.
    t = load("pack:2 numa:1 core:2")
    t.to_machine(accel="tcg")
    assert "memory" not in t.summary()
    # A size the description gives is used as it is, even when 1G would not split.
    m = load("pack:3 [numa(memory=256M)] core:1").to_machine(accel="tcg")
    assert [n.mem for n in m.numa] == [256 * MiB] * 3


def test_run_default_memory_three_nodes(capsys, fake_kernel):
    """tools/run --numa 3 and --topology with three nodes: the same default."""
    rc, cmd, err = run_dry(capsys, fake_kernel, "--smp", "6", "--numa", "3")
    assert rc == 0, err
    assert values(cmd, "-m") == ["1020M"]
    assert values(cmd, "-object") == [f"memory-backend-ram,id=m{i},size=340M,share=on" for i in range(3)]
    rc, cmd, err = run_dry(capsys, fake_kernel, "--topology", "pack:3 numa:1 core:2 pu:2")
    assert rc == 0, err
    assert values(cmd, "-m") == ["1020M"]
    assert "memory 1020M (340M per node)" in err


def test_proportional_split_is_exact():
    for total in (2 * MiB * 7, 1 * GiB, 1536 * MiB):
        for weights in ([1, 1, 1], [5, 0, 3], [1 << 30, 1, 1 << 29]):
            try:
                shares = topology.proportional_split(total, weights, list(range(len(weights))))
            except TopologyError:
                continue
            assert sum(shares) == total
            assert all(s % (2 * MiB) == 0 for s in shares)
            assert all((s == 0) == (w == 0) for s, w in zip(shares, weights))


# -- hwloc XML -------------------------------------------------------------------------------------
def test_uneven_xml():
    t = load(UNEVEN)
    assert shape(t) == (2, 3, 2)
    assert node_cpus(t) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9], [10, 11], []]
    assert [n.mem for n in t.nodes] == [768 * MiB, 256 * MiB, 0, 512 * MiB]
    assert t.dist == [[10, 21, 21, 30], [21, 10, 12, 30], [21, 12, 10, 30], [31, 32, 32, 10]]
    m = t.to_machine(accel="tcg")
    cmd = atoll_run.qemu_command(m, "x.iso")
    numa = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-numa"]
    assert numa[:4] == ["node,nodeid=0,cpus=0-5,memdev=m0", "node,nodeid=1,cpus=6-9,memdev=m1",
                        "node,nodeid=2,cpus=10-11", "node,nodeid=3,memdev=m3"]
    assert "dist,src=3,dst=0,val=31" in numa and "dist,src=0,dst=3,val=30" in numa
    # --mem shares in proportion to the file's sizes.
    m = t.to_machine(mem=3 * GiB, accel="tcg")
    assert [n.mem for n in m.numa] == [1536 * MiB, 512 * MiB, 0, 1 * GiB]


def xml_doc(body, version="2.0", dist=""):
    return (f'<?xml version="1.0"?>\n<topology version="{version}">\n'
            f'<object type="Machine" os_index="0" cpuset="0xf">\n{body}\n</object>\n{dist}</topology>\n')


def pu(i):
    return f'<object type="PU" os_index="{i}" cpuset="0x{1 << i:x}"/>'


def node(i, mem=None):
    m = f' local_memory="{mem}"' if mem is not None else ""
    return f'<object type="NUMANode" os_index="{i}" cpuset="0xf"{m}/>'


def two_nodes(extra="", mem0=512 * MiB, mem1=512 * MiB):
    return (f'<object type="Package" os_index="0">{node(0, mem0)}<object type="Core">{pu(0)}{pu(1)}</object>'
            f'</object><object type="Package" os_index="1">{node(1, mem1)}<object type="Core">{pu(2)}'
            f'{pu(3)}</object></object>{extra}')


def dist2(idx, vals, indexing="os", name="NUMALatency", kind=5):
    return (f'<distances2 type="NUMANode" nbobjs="{len(idx)}" kind="{kind}" name="{name}" indexing="{indexing}">'
            f'<indexes length="1">{" ".join(map(str, idx))}</indexes>'
            f'<u64values length="1">{" ".join(map(str, vals))}</u64values></distances2>\n')


def test_xml_details():
    t = parse_xml(xml_doc(two_nodes(), dist=dist2([1, 0], [10, 30, 31, 10])))
    assert shape(t) == (2, 1, 2)
    assert t.dist == [[10, 31], [30, 10]]           # rows follow the nodes' os_index order
    # indexing by gp_index
    body = two_nodes().replace('os_index="0" cpuset="0xf" local', 'os_index="0" gp_index="7" cpuset="0xf" local')
    body = body.replace('os_index="1" cpuset="0xf" local', 'os_index="1" gp_index="9" cpuset="0xf" local')
    t = parse_xml(xml_doc(body, dist=dist2([9, 7], [10, 25, 26, 10], indexing="gp")))
    assert t.dist == [[10, 26], [25, 10]]
    # I/O objects, Misc and memory-side caches are stepped over.
    io = '<object type="Bridge"><object type="PCIDev"><object type="OSDev"/></object></object><object type="Misc"/>'
    memcache = two_nodes().replace(node(1, 512 * MiB),
                                   f'<object type="MemCache" cpuset="0xc">{node(1, 512 * MiB)}</object>')
    t = parse_xml(xml_doc(memcache + io))
    assert node_cpus(t) == [[0, 1], [2, 3]]
    # No Core objects: every PU is a core; no Package: one package.
    t = parse_xml(xml_doc(node(0, 1 * GiB) + pu(0) + pu(1) + pu(2)))
    assert shape(t) == (1, 3, 1) and t.nodes == [] and t.memory_total == 1 * GiB


@pytest.mark.parametrize("text,message", [
    ("<topology", "not well-formed XML"),
    ("<nottopology/>", "not an hwloc topology"),
    (xml_doc(pu(0), version="1.0"), "hwloc 1.x XML is not supported"),
    ('<topology version="2.0"></topology>', "one top-level Machine"),
    (xml_doc(node(0, 1 * GiB)), "no PU objects"),
    (xml_doc('<object type="Package">' + pu(0) + pu(1) + '</object><object type="Package">' + pu(2)
             + '</object>'), "packages have 1 or 2 cores"),
    (xml_doc('<object type="Core">' + pu(0) + pu(1) + '</object><object type="Core">' + pu(2) + '</object>'),
     "cores have 1 or 2 PUs"),
    (xml_doc('<object type="Frobnicator">' + pu(0) + '</object>'), "unknown object type 'Frobnicator'"),
    (xml_doc(two_nodes(), dist=dist2([0], [10])), "1 objects need 1 indexes"
                                                   "|the distance matrix leaves out"),
    (xml_doc(two_nodes(), dist=dist2([0, 1], [10, 20, 20])), "need 2 indexes and 4 values"),
    (xml_doc(two_nodes(), dist=dist2([0, 1], [10, 2000, 20, 10])), "11..254"),
    (xml_doc(two_nodes(), dist=dist2([0, 1], [100, 200, 200, 100])), "needs 10 from a node to itself"),
    (xml_doc(two_nodes(), dist=dist2([0, 1], [10, "x", 20, 10])), "is not a number"),
    (xml_doc(two_nodes(), dist=dist2([0, 5], [10, 20, 20, 10])), "leaves out NUMA node"),
    (xml_doc(two_nodes().replace('os_index="1" cpuset="0xf"', 'os_index="0" cpuset="0xf"')),
     "two NUMA nodes with the same os_index"),
    (xml_doc(two_nodes().replace('local_memory="536870912"', 'local_memory="lots"', 1)), "is not a number"),
    # Found by make fuzz (topology_xml): these raised ValueError, a traceback instead of an answer.
    (xml_doc(two_nodes(), dist=dist2([0, 1], [10, 20, 20, 10]).replace('nbobjs="2"', 'nbobjs="k"')),
     "nbobjs='k' is not a number"),
    (xml_doc(two_nodes(), dist=dist2([0, 1], [10, 20, 20, 10]) + dist2([0, 1], [10, 20, 20, 10], kind="PU5")),
     "kind='PU5' is not a number"),
    (xml_doc(two_nodes().replace('os_index="1" cpuset="0xf"', 'os_index="1" gp_index="x" cpuset="0xf"'),
             dist=dist2([0, 1], [10, 20, 20, 10], indexing="gp")), "gp_index='x' is not a number"),
])
def test_xml_errors(text, message):
    with pytest.raises(TopologyError, match=message):
        parse_xml(text).to_machine(accel="tcg")


def test_xml_memory_not_2mib(tmp_path):
    f = tmp_path / "odd.xml"
    f.write_text(xml_doc(two_nodes(mem0=5060198400)))
    with pytest.raises(TopologyError, match="not a multiple of 2 MiB.*give --mem"):
        load(str(f)).to_machine(accel="tcg")
    m = load(str(f)).to_machine(mem=2 * GiB, accel="tcg")
    assert sum(n.mem for n in m.numa) == 2 * GiB
    with pytest.raises(TopologyError, match="not found"):
        load(str(tmp_path / "missing.xml"))


# -- bitmaps ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits,text", [
    (set(), "0x0"), ({0}, "0x00000001"), ({33}, "0x00000002,0x0"), ({0, 64}, "0x00000001,,0x00000001"),
    ({64}, "0x00000001,,0x0"), (set(range(40)), "0x000000ff,0xffffffff"),
])
def test_bitmaps(bits, text):
    assert topology.format_bitmap(bits) == text
    assert topology.parse_bitmap(text) == bits


@needs_hwloc
def test_bitmaps_agree_with_hwloc_calc():
    for cpus in ([0], [33], [0, 64], [64], [5, 70, 95], list(range(40))):
        r = subprocess.run([HWLOC_CALC, "--input", "pack:1 core:96 pu:1", *[f"pu:{c}" for c in cpus]],
                           check=True, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert r.stdout.strip() == topology.format_bitmap(cpus)


# -- the host ----------------------------------------------------------------------------------------
@needs_hwloc
def test_host_agrees_with_hwloc_calc():
    t = load("host")

    def count(kind):
        r = subprocess.run([HWLOC_CALC, "--number-of", kind, "all"], check=True, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return int(r.stdout.strip())

    assert t.smp == count("pu")
    assert t.packages * t.cores == count("core") or count("core") == 0
    assert max(len(t.nodes), 1) == count("numanode")
    m = t.to_machine(accel="tcg") if t.smp <= atoll_run.TCG_MAX_CPUS else None
    if m is not None:
        assert m.mem == 1 * GiB or sum(n.mem for n in m.numa) == 1 * GiB


# -- tools/run --topology ------------------------------------------------------------------------------
@pytest.fixture
def fake_kernel(tmp_path):
    p = tmp_path / "fake.elf"
    p.write_bytes(b"\x7fELF not really a kernel\n" * 40)
    return str(p)


def run_dry(capsys, kernel, *args):
    rc = atoll_run.main(["--dry-run", "--kernel", kernel, "--accel", "tcg", *args])
    out, err = capsys.readouterr()
    return rc, shlex.split(out.strip()) if out.strip() else [], err


def values(cmd, flag):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def test_run_topology_dry_run(capsys, fake_kernel):
    rc, cmd, err = run_dry(capsys, fake_kernel, "--topology", "pack:2 numa:2 core:2 pu:2")
    assert rc == 0, err
    assert values(cmd, "-smp") == ["16,sockets=2,cores=4,threads=2"]
    assert values(cmd, "-m") == ["1G"]
    assert values(cmd, "-object") == [f"memory-backend-ram,id=m{i},size=256M,share=on" for i in range(4)]
    numa = values(cmd, "-numa")
    assert numa[:4] == ["node,nodeid=0,cpus=0-3,memdev=m0", "node,nodeid=1,cpus=4-7,memdev=m1",
                        "node,nodeid=2,cpus=8-11,memdev=m2", "node,nodeid=3,cpus=12-15,memdev=m3"]
    assert "dist,src=0,dst=1,val=20" in numa and "dist,src=1,dst=2,val=21" in numa
    assert "run: topology 'pack:2 numa:2 core:2 pu:2': 2 packages x 4 cores x 2 threads = 16 CPUs, " \
           "4 NUMA nodes" in err


def test_run_topology_overrides_and_options(capsys, fake_kernel):
    # What make run always passes is replaced, and said so; --mem and --numa-dist still apply.
    rc, cmd, err = run_dry(capsys, fake_kernel, "--smp", "4", "--numa", "2", "--mem", "2G",
                           "--topology", "pack:2 [numa] core:2", "--numa-dist", "0-1=40")
    assert rc == 0, err
    assert values(cmd, "-smp") == ["4,sockets=2,cores=2,threads=1"]
    assert values(cmd, "-m") == ["2G"]
    assert "dist,src=0,dst=1,val=40" in values(cmd, "-numa")
    assert "(ignoring --smp, --numa)" in err
    rc, cmd, err = run_dry(capsys, fake_kernel, "--topology", UNEVEN)
    assert rc == 0 and values(cmd, "-m") == ["1536M"], err


def test_run_topology_prints_the_command(capsys, fake_kernel, monkeypatch):
    """Without --dry-run the command goes to stderr before QEMU runs."""
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return atoll_run.BootResult(status=0, console="", events=[], wall_s=0.0, timed_out=False)

    monkeypatch.setattr(atoll_run, "run_qemu", fake_run)
    monkeypatch.setattr(atoll_run, "image_for", lambda machine, cache_dir=None: "/tmp/x.iso")
    rc = atoll_run.main(["--kernel", fake_kernel, "--accel", "tcg", "--topology", "pack:2 core:2", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert shlex.join(seen["cmd"]) in err


@pytest.mark.parametrize("args,message", [
    (["--topology", "pack:2 core:0"], "zero count"),
    (["--topology", "pack:2 bogus:1"], "unknown level 'bogus'"),
    (["--topology", "pack:32 core:16"], "more than 288 CPUs"),
    (["--topology", "pack:16 core:16", "--machine", "pc"], "QEMU's pc machine allows at most 255"),
    (["--topology", "pack:3 [numa] core:1", "--mem", "1G"], "does not split into 3 NUMA nodes"),
    (["--topology", "nothere.xml"], "not found"),
    (["--topology", "pack:2 core:2", "--numa-dist", "0-1=30"], "needs at least two NUMA nodes"),
])
def test_run_topology_errors(capsys, fake_kernel, args, message):
    rc, _, err = run_dry(capsys, fake_kernel, *args)
    assert rc == 2 and err.startswith("run: error: ") and message in err, err


# -- the guest's XML ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def writer_cases(tmp_path_factory):
    if not os.path.exists(XML_WRITER):
        pytest.fail(f"{XML_WRITER} is missing: run `make` first")
    d = tmp_path_factory.mktemp("xml")
    subprocess.run([XML_WRITER, "--dump", str(d)], check=True, stdout=subprocess.DEVNULL)
    return {p[:-4]: (d / p).read_text() for p in sorted(os.listdir(d))}


def test_writer_cases_are_consistent(writer_cases):
    assert len(writer_cases) >= 10
    for name, text in writer_cases.items():
        objs = topology.xml_objects(text, source=name)
        cpus = objs[0].cpuset
        for o in objs:
            if o.parent is not None:
                assert o.cpuset <= objs[o.parent].cpuset, (name, o)
                assert o.nodeset <= objs[0].nodeset, (name, o)
            if o.type == "PU":
                assert o.cpuset == {o.os_index} and o.nodeset, (name, o)
        assert {o.os_index for o in objs if o.type == "PU"} == cpus


@needs_hwloc
def test_writer_cases_load_in_hwloc(writer_cases, tmp_path):
    """lstopo reads every case without a complaint and writes back the same
    objects (it only adds Group kinds and a support line)."""
    for name, text in writer_cases.items():
        f = tmp_path / f"{name}.xml"
        f.write_text(text)
        r = subprocess.run([LSTOPO, "--input", str(f), "--of", "xml", "-"], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 0 and r.stderr == "", (name, r.stderr)
        again = r.stdout.replace(' kind="0" subkind="0"', "")
        again = "".join(line + "\n" for line in again.splitlines() if "custom.exported_support" not in line)
        assert again == text, name


def test_extract_guest_xml():
    xml = '<?xml version="1.0"?>\n<topology version="2.0">\n</topology>\n'
    n = len(xml.encode())
    console = (f'boot\n@atoll {{"event":"topology_xml_begin","bytes":{n},"lines":3}}\n{xml}'
               f'@atoll {{"event":"topology_xml_end","bytes":{n},"lines":3}}\nafter\n')
    assert topology.extract_guest_xml(console) == xml
    with pytest.raises(TopologyError, match="no complete topology XML"):
        topology.extract_guest_xml(console.split("@atoll {\"event\":\"topology_xml_end")[0])
    with pytest.raises(TopologyError, match="announced"):
        topology.extract_guest_xml(console.replace("</topology>\n", "</topology>\nstray line\n"))


def test_compare_finds_differences(writer_cases):
    """compare() against the writer's two-package case, and a broken copy."""
    text = writer_cases["qemu_numa_by_package"]
    want = load("pack:2 [numa] core:2 pu:2")      # default distances 10/21: what the case has
    assert topology.compare(want, text) == []
    other = load("pack:2 [numa] core:2 pu:2")
    other.dist = [[10, 40], [40, 10]]
    assert topology.compare(other, text) == ["distances: want [[10, 40], [40, 10]], guest has [[10, 21], [21, 10]]"]
    problems = topology.compare(load("pack:2 [numa] core:4 pu:1"), text)
    assert any("cores per package: want 4, guest has 2" in p for p in problems)
    assert any(p.startswith("Core cpusets") for p in problems)
    broken = text.replace('<object type="PU" os_index="7" cpuset="0x00000080"',
                          '<object type="PU" os_index="7" cpuset="0x00000100"')
    assert any("cpuset" in p for p in topology.compare(want, broken))
    [problem] = topology.compare(want, "<topology")
    assert problem.startswith("guest XML: not well-formed XML")
