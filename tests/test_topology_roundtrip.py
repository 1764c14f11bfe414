"""Round trips: a topology goes in (hwloc synthetic string, hwloc XML, or the
host), QEMU boots it under TCG, the shell's `topo xml` prints the hwloc XML
the topology service writes (then `cores`, whose status says whether every
core came up), and that XML must describe the same machine object by object: counts per
level, the cpusets of packages, cores, PUs and NUMA nodes, nodesets, node
memory, the distance matrix (tools/topology.py: compare). hwloc itself must
read the guest's XML without complaint and, for synthetic strings, export
the same structure as it does for the string. Every core must have reported
its own CPUID place, and the caches must be the ones QEMU's TCG CPU models.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
import topology  # noqa: E402

KERNEL = os.path.join(ROOT, "build", "cpudriver", "atoll.elf")
UNEVEN = os.path.join(ROOT, "tests", "data", "topology-uneven.xml")
LSTOPO = shutil.which("lstopo-no-graphics")
# QEMU 7.2's TCG "max" CPU is an AMD CPU without TOPOEXT: its caches come from
# 0x80000005/6, fixed legacy sizes, L1 and L2 per core and L3 per package.
TCG_CACHES = {"L1Cache": 64 << 10, "L1iCache": 64 << 10, "L2Cache": 512 << 10, "L3Cache": 16 << 20}


def boot(spec, extra_cmdline=""):
    if not os.path.exists(KERNEL):
        pytest.fail(f"{KERNEL} is missing: run `make` first")
    want = topology.load(spec)
    m = want.to_machine(accel="tcg")
    m.cmdline = extra_cmdline.strip()
    m.modules = atoll_run.user_modules()
    r = atoll_run.boot(m, timeout=240, shell_commands=list(topology.GUEST_XML_COMMANDS))
    assert not r.timed_out, f"guest did not finish; console tail:\n{r.console[-3000:]}"
    assert not r.malformed, r.malformed
    assert r.events_named("panic") == [], r.console[-3000:]
    return want, m, r


def hwloc_synthetic(source):
    r = subprocess.run([LSTOPO, "--input", source, "--no-caches", "--export-synthetic-flags", "no_attr",
                        "--of", "synthetic", "-"], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def check_round_trip(want, m, r, tmp_path, spec):
    xml = topology.extract_guest_xml(r.console)
    problems = topology.compare(want, xml, m)
    assert problems == [], "\n".join(problems) + "\n" + xml

    smp, per_pkg = want.smp, want.cores * want.threads
    places = sorted(r.events_named("cpu_topology"), key=lambda e: e["core"])
    assert [p["core"] for p in places] == list(range(smp)), "every core reports its own CPUID place"
    for p in places:
        c = p["core"]
        assert (p["package"], p["package_core"], p["thread"]) == \
            (c // per_pkg, c % per_pkg // want.threads, c % want.threads), p
        assert p["source"] == "cpuid.0xb"

    [summary] = r.events_named("topology")
    assert (summary["packages"], summary["cores"], summary["pus"], summary["nodes"]) == \
        (want.packages, want.packages * want.cores, smp, max(len(want.nodes), 1))

    objs = topology.xml_objects(xml)
    by_type = {}
    for o in objs:
        by_type.setdefault(o.type, []).append(o)
    packages = sorted(tuple(sorted(o.cpuset)) for o in by_type["Package"])
    cores = sorted(tuple(sorted(o.cpuset)) for o in by_type["Core"])
    for t, size in TCG_CACHES.items():
        caches = by_type.get(t, [])
        assert {int(o.attrs["cache_size"]) for o in caches} == {size}, t
        sets = sorted(tuple(sorted(o.cpuset)) for o in caches)
        assert sets == (packages if t == "L3Cache" else cores), t

    if LSTOPO:
        f = tmp_path / "guest.xml"
        f.write_text(xml)
        r2 = subprocess.run([LSTOPO, "--input", str(f), "--of", "xml", "-"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r2.returncode == 0 and r2.stderr == "", r2.stderr
        if want.kind == "synthetic":
            toks = spec.split()
            hw_spec = spec if toks[-1].startswith("pu") else spec + " pu:1"
            assert hwloc_synthetic(str(f)) == hwloc_synthetic(hw_spec)
    return xml


@pytest.mark.parametrize("spec", [
    "pack:1 core:1",
    "pack:2 core:4",
    "pack:2 numa:2 core:2 pu:2",
    "pack:4 numa:1 core:8",          # 32 CPUs
])
def test_synthetic_round_trip(spec, tmp_path):
    want, m, r = boot(spec)
    assert r.status == 0, r.console[-3000:]
    assert r.events_named("warning") == [], r.events_named("warning")
    check_round_trip(want, m, r, tmp_path, spec)


def test_uneven_xml_round_trip(tmp_path):
    """Nodes of different sizes, one inside part of a package, one with CPUs
    but no memory, one with memory but no CPUs; asymmetric distances."""
    want, m, r = boot(UNEVEN)
    assert r.status == 0, r.console[-3000:]
    warnings = [w["msg"] for w in r.events_named("warning")]
    # The firmware's own oddities are reported; the model adds none.
    assert "NUMA node 2 (domain 2) has CPUs but no memory; kept as is" in warnings
    assert "NUMA node 3 (domain 3) has memory but no CPUs; kept as is" in warnings
    assert not [w for w in warnings if "topology XML" in w or "CPUID" in w], warnings
    xml = check_round_trip(want, m, r, tmp_path, UNEVEN)
    # Node 0 is exactly package 0; node 1 needs a Group; the memory-only node
    # hangs off the Machine (its CPUs unknown): nothing invented.
    objs = topology.xml_objects(xml)
    nodes = {o.os_index: o for o in objs if o.type == "NUMANode"}
    assert objs[nodes[0].parent].type == "Package"
    assert objs[nodes[1].parent].type == "Group"
    assert objs[nodes[3].parent].type == "Machine"
    assert "local_memory" not in nodes[2].attrs
    assert len([o for o in objs if o.type == "Group"]) == 1


def test_host_round_trip(tmp_path):
    want = topology.load("host")
    if want.smp > atoll_run.TCG_MAX_CPUS:
        pytest.skip(f"this host has {want.smp} CPUs, more than TCG can boot")
    want, m, r = boot("host")
    assert r.status == 0, r.console[-3000:]
    check_round_trip(want, m, r, tmp_path, "host")


def test_core_that_never_reports(tmp_path):
    """A core that never starts (left out of the start table) cannot report
    its CPUID: the boot core places it by its MADT APIC id with its own
    layout, says so, and the XML still has every CPU in the right place."""
    want, m, r = boot("pack:2 core:2", extra_cmdline="selftest=unlisted:3")
    assert r.status == 1            # a core did not come up
    assert [e["core"] for e in r.events_named("core_timeout")] == [3]
    warnings = [w["msg"] for w in r.events_named("warning")]
    assert "core 3 (APIC id 3) did not report its CPUID topology; placed by its APIC id with the layout " \
           "of core 0" in warnings
    xml = topology.extract_guest_xml(r.console)
    assert topology.compare(want, xml, m) == []
    assert '<info name="AtollTopologyNote" value="some CPUs did not report; placed by their APIC ids"/>' in xml


@pytest.mark.skipif(not shutil.which("lstopo"), reason="hwloc's lstopo not installed")
def test_topo_view(tmp_path):
    """The round-trip command end to end: boot, XML next to the picture, a
    PNG of Atoll's view and an SVG of the request, exit 0 when they match."""
    if not os.path.exists(KERNEL):
        pytest.fail(f"{KERNEL} is missing: run `make` first")
    out, req = tmp_path / "view.png", tmp_path / "request.svg"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "topo-view"), "pack:2 [numa] core:2",
                        "--accel", "tcg", "-o", str(out), "--requested", str(req), "--timeout", "240"],
                       text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Atoll's view matches the request" in r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in req.read_bytes()
    xml = (tmp_path / "view.xml").read_text()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>') and "</topology>" in xml
    assert "Package L#1" in r.stdout            # lstopo's text view of the guest's XML
