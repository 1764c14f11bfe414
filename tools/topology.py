"""Topologies in and out: hwloc descriptions -> QEMU machines, and the
guest's hwloc XML back into something to compare. docs/topology.md has the
user's side; this is the library behind `tools/run --topology` and
`tools/topo-view`.

    import topology
    t = topology.load("pack:2 numa:2 core:4 pu:1")     # or "host.xml", or "host"
    m = t.to_machine(mem=None, machine="q35", accel="tcg")   # an atoll_run.Machine
    v = topology.parse_xml(guest_xml_text, source="guest")  # the guest's own view
    problems = topology.compare(t, v)                   # [] when they agree

A description becomes a Topology: packages x cores x threads (QEMU's -smp
numbers CPUs package by package, core by core, thread by thread, so CPU i
is the i-th PU in hwloc's depth-first order), NUMA nodes with their CPUs,
memory and package, and the distance matrix when the description has one.

Defaults when the description does not say:
  * distances: 10 local; 20 between two nodes of the same package; 21 when
    the nodes lie in different packages (or one spans several, or has no
    package). hwloc synthetic strings never carry distances.
  * memory: --mem (default 1G) split evenly across the nodes, each share a
    multiple of 2 MiB. When 1G does not split into the nodes (3, 5, 6, ...),
    the default is the largest size below 1G that does (atoll_run.default_mem:
    1020M for 3 nodes, 340M each).
Memory the description gives (synthetic memory=, XML local_memory) is used
as is and must be a multiple of 2 MiB per node; with --mem the total is
--mem instead, shared in proportion to the description's sizes. `host`
always uses --mem (default 1G) that way: a VM rarely wants all of the
host's RAM, and the host's node sizes are never 2 MiB multiples.

Standard library only; hwloc's tools (lstopo-no-graphics) only for `host`.
"""
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atoll_run import (GiB, default_mem, LOCAL_DISTANCE, MACHINES, NUMA_ALIGN, TCG_MAX_CPUS,  # noqa: E402
                       ConfigError, Machine, NumaNode, cpu_ranges, fmt_size)

SAME_PACKAGE_DISTANCE = 20
CROSS_PACKAGE_DISTANCE = 21
MAX_CPUS = max(MACHINES.values())
XML_BEGIN_EVENT = "topology_xml_begin"
XML_END_EVENT = "topology_xml_end"
# What to type at the guest's shell for its hwloc XML: `topo xml` (the
# topology service writes it, the shell prints it between the two marker
# events), then `cores`, whose status (the runner's exit status) is 1 when
# a core did not come up.
GUEST_XML_COMMANDS = ("topo xml", "cores")


class TopologyError(ConfigError):
    """A description that cannot become a QEMU machine; the message says why."""


@dataclasses.dataclass
class Node:
    cpus: List[int]              # CPU indexes (QEMU's), possibly empty
    mem: Optional[int] = None    # bytes; None: the description does not say
    package: Optional[int] = None   # the package it lies in (None: several or none)
    os_index: int = 0


@dataclasses.dataclass
class Cache:
    name: str                    # "L3", "L2", "L1d", "L1i", ...
    count: int                   # objects in the whole machine
    size: Optional[int] = None   # bytes, if given


@dataclasses.dataclass
class Topology:
    source: str                  # what it came from, for messages
    packages: int
    cores: int                   # per package
    threads: int                 # per core
    nodes: List[Node] = dataclasses.field(default_factory=list)   # [] = no NUMA (one node)
    dist: Optional[List[List[int]]] = None   # from the description
    caches: List[Cache] = dataclasses.field(default_factory=list)
    kind: str = "synthetic"      # synthetic | xml | host
    memory_total: Optional[int] = None   # a machine-wide memory size the description gives
    memory_note: str = ""        # set by to_machine when it chose a default other than 1G

    @property
    def smp(self):
        return self.packages * self.cores * self.threads

    def package_of(self, cpu):
        return cpu // (self.cores * self.threads)

    def core_of(self, cpu):
        """Global core number (package-major)."""
        return cpu // self.threads

    def node_of(self, cpu):
        for i, n in enumerate(self.nodes):
            if cpu in n.cpus:
                return i
        return 0

    def default_dist(self):
        k = len(self.nodes)
        d = [[LOCAL_DISTANCE] * k for _ in range(k)]
        for i in range(k):
            for j in range(k):
                if i != j:
                    a, b = self.nodes[i].package, self.nodes[j].package
                    same = a is not None and a == b
                    d[i][j] = SAME_PACKAGE_DISTANCE if same else CROSS_PACKAGE_DISTANCE
        return d

    def distances(self):
        """The matrix QEMU gets: the description's, else the default (None for one node)."""
        if len(self.nodes) < 2:
            return None
        return [list(r) for r in self.dist] if self.dist else self.default_dist()

    def node_memory(self, mem=None):
        """Bytes per node (see the module docstring), or raises TopologyError."""
        k = len(self.nodes)
        given = [n.mem for n in self.nodes]
        if self.kind == "host" and mem is None:
            mem = 1 * GiB
        if mem is not None:
            if mem <= 0 or mem % NUMA_ALIGN:
                raise TopologyError(f"--mem {fmt_size(mem)} is not a positive multiple of 2M")
            weights = [g or 0 for g in given]
            if sum(weights) == 0:
                return even_split(mem, k)
            return proportional_split(mem, weights, [n.os_index for n in self.nodes])
        if all(g is None for g in given):
            dm = default_mem(k, self.smp)
            if not self.memory_total and dm != GiB:
                why = (f"the default 1G does not split into {k} NUMA nodes" if dm < GiB else
                       f"{self.smp} CPUs need more than the default 1G")
                self.memory_note = f"memory {fmt_size(dm)} ({fmt_size(dm // k)} per node): {why}"
            return even_split(self.memory_total or dm, k)
        for n, g in zip(self.nodes, given):
            if g is None:
                raise TopologyError(f"{self.source}: NUMA node {n.os_index} has no memory size while "
                                    "others have one; give every node a size, or none")
            if g % NUMA_ALIGN:
                raise TopologyError(f"{self.source}: NUMA node {n.os_index} has {g} bytes of memory, "
                                    "which is not a multiple of 2 MiB (QEMU's NUMA memory must be); "
                                    "give --mem SIZE to share a total in proportion instead")
        if sum(given) == 0:
            raise TopologyError(f"{self.source}: no NUMA node has memory")
        return given

    def to_machine(self, mem=None, machine="q35", accel="auto", dist=None):
        """The atoll_run.Machine of this topology (validated). `mem`: --mem
        in bytes or None; `dist`: a matrix overriding the distances."""
        if machine not in MACHINES:
            raise TopologyError(f"unknown machine {machine!r}: use one of " + ", ".join(sorted(MACHINES)))
        smp = self.smp
        if smp > MACHINES[machine]:
            raise TopologyError(f"{self.source} has {smp} CPUs; QEMU's {machine} machine allows at most "
                                f"{MACHINES[machine]}")
        m = Machine(smp=smp, sockets=self.packages, cores=self.cores, threads=self.threads,
                    machine=machine, accel=accel)
        if m.resolved_accel() == "tcg" and smp > TCG_MAX_CPUS:
            raise TopologyError(f"{self.source} has {smp} CPUs; more than {TCG_MAX_CPUS} need x2APIC, "
                                "which QEMU 7.2's TCG lacks (use --accel kvm)")
        top = max_apic_id(self.packages, self.cores, self.threads)
        if m.resolved_accel() == "tcg" and top > 254:
            raise TopologyError(f"{self.source}: QEMU packs APIC ids by powers of two ({self.cores} cores "
                                f"take {bits(self.cores)} bits), so the highest is {top}; APIC ids above "
                                "254 need x2APIC, which QEMU 7.2's TCG lacks (use --accel kvm, or fewer "
                                "packages, or a power of two cores per package)")
        if not self.nodes:
            if mem is None and self.kind != "host" and self.memory_total:
                if self.memory_total % NUMA_ALIGN:
                    raise TopologyError(f"{self.source}: its {self.memory_total} bytes of memory are not "
                                        "a multiple of 2 MiB; give --mem SIZE")
                mem = self.memory_total
            m.mem = mem if mem is not None else 1 * GiB
            m.numa = []
            if dist is not None:
                raise TopologyError("--numa-dist needs NUMA nodes, and this description has one")
        else:
            sizes = self.node_memory(mem)
            for n, size in zip(self.nodes, sizes):
                if not n.cpus and not size:
                    raise TopologyError(f"{self.source}: NUMA node {n.os_index} has neither CPUs nor memory")
            m.numa = [NumaNode(cpus=list(n.cpus), mem=size) for n, size in zip(self.nodes, sizes)]
            m.mem = sum(sizes)
            m.dist = dist if dist is not None else self.distances()
        try:
            return m.validate()
        except TopologyError:
            raise
        except ConfigError as e:
            raise TopologyError(f"{self.source}: {e}") from None

    def summary(self):
        pk = f"{self.packages} package{'s' if self.packages != 1 else ''}"
        s = (f"{pk} x {self.cores} core{'s' if self.cores != 1 else ''} x {self.threads} "
             f"thread{'s' if self.threads != 1 else ''} = {self.smp} CPU{'s' if self.smp != 1 else ''}")
        if len(self.nodes) > 1:
            s += f", {len(self.nodes)} NUMA nodes"
            if not self.dist:
                s += f" (distances by default: 10 local, {SAME_PACKAGE_DISTANCE} same package, " \
                     f"{CROSS_PACKAGE_DISTANCE} across packages)"
        if self.memory_note:
            s += "; " + self.memory_note
        if self.caches:
            s += "; caches " + ", ".join(c.name for c in self.caches) + " are not passed to QEMU"
        return s


def bits(n):
    """APIC id bits QEMU gives a level of n members."""
    return (n - 1).bit_length()


def max_apic_id(packages, cores, threads):
    """The highest APIC id QEMU 7.2 gives: package, core and thread numbers
    packed in fields of bits(count) each."""
    return ((packages - 1) << (bits(cores) + bits(threads))) | ((cores - 1) << bits(threads)) | (threads - 1)


def even_split(total, k):
    if k <= 1:
        return [total] * max(k, 1)
    if total % (k * NUMA_ALIGN):
        raise TopologyError(f"{fmt_size(total)} of memory does not split into {k} NUMA nodes of a "
                            f"multiple of 2M each (use a multiple of {fmt_size(k * NUMA_ALIGN)})")
    return [total // k] * k


def proportional_split(total, weights, names):
    """`total` (a multiple of 2 MiB) shared in proportion to weights, in 2 MiB
    units, the leftovers going to the largest remainders (then the first)."""
    units = total // NUMA_ALIGN
    w = sum(weights)
    exact = [units * x / w for x in weights]
    share = [int(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - share[i]), i))
    for i in order[:units - sum(share)]:
        share[i] += 1
    for i, (x, s) in enumerate(zip(weights, share)):
        if x and not s:
            raise TopologyError(f"{fmt_size(total)} is too little memory to give NUMA node {names[i]} "
                                "a share of at least 2M")
    return [s * NUMA_ALIGN for s in share]


# -- hwloc synthetic strings ---------------------------------------------------------------
# hwloc's type names (hwloc_obj_type_sscanf) and the short forms people use.
_LEVELS = {
    "package": "package", "pack": "package", "socket": "package", "sock": "package",
    "die": "die", "group": "group",
    "numa": "numa", "numanode": "numa", "node": "numa",
    "core": "core", "pu": "pu",
}
_CACHE = re.compile(r"l([1-5])(d|i|u)?(cache)?\Z")
_NOT_LEVELS = {"machine": "the machine is implicit: leave it out",
               "system": "the machine is implicit: leave it out",
               "misc": "Misc objects are not supported", "bridge": "I/O objects are not supported",
               "pcidev": "I/O objects are not supported", "osdev": "I/O objects are not supported",
               "memcache": "memory-side caches are not supported"}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
               "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
               "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9, "tb": 10 ** 12}
LEVEL_HELP = ("package (pack, socket), numa (node), l3, l2, l1d, l1i (caches), core, pu; "
              "also die and group")


def parse_syn_size(text, what):
    """hwloc sizes: a byte count, kB/MB/GB/TB (powers of 1000, as hwloc reads
    them), KiB/MiB/GiB/TiB; also K/M/G/T (powers of 1024, like --mem)."""
    m = re.match(r"(\d+)\s*([a-zA-Z]*)\Z", text.strip())
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise TopologyError(f"bad {what} {text!r}: use bytes or a unit (e.g. 512MiB, 1G, 2GiB)")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def _tokens(spec):
    """Split on whitespace outside parentheses and brackets."""
    out, cur, depth = [], "", 0
    for ch in spec:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise TopologyError(f"synthetic topology {spec!r}: unbalanced {ch!r}")
        if ch.isspace() and depth == 0:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if depth:
        raise TopologyError(f"synthetic topology {spec!r}: unclosed parenthesis or bracket")
    if cur:
        out.append(cur)
    return out


def _attrs(text, spec, token):
    out = {}
    for item in text.split():
        if "=" not in item:
            raise TopologyError(f"synthetic topology {spec!r}: bad attribute {item!r} in {token!r} "
                                "(use name=value)")
        k, v = item.split("=", 1)
        out[k.strip().lower()] = v.strip()
    return out


def _level_kind(name, spec, token):
    n = name.lower()
    if n in _LEVELS:
        return _LEVELS[n], None
    m = _CACHE.match(n)
    if m:
        t = {"d": "d", "i": "i", "u": "", None: ""}[m.group(2)]
        if m.group(2) is None and m.group(1) == "1":
            t = "d"        # hwloc's "l1" is the L1 data cache
        return "cache", f"L{m.group(1)}{t}"
    if n in _NOT_LEVELS:
        raise TopologyError(f"synthetic topology {spec!r}: {token!r}: {_NOT_LEVELS[n]}")
    raise TopologyError(f"synthetic topology {spec!r}: unknown level {name!r} in {token!r} "
                        f"(use {LEVEL_HELP})")


def parse_synthetic(spec):
    """An hwloc synthetic string -> Topology. Besides hwloc's syntax the
    last level may be something other than pu (pu:1 is implied)."""
    source = f"synthetic topology {spec!r}"
    toks = _tokens(spec)
    if not toks:
        raise TopologyError("empty synthetic topology: give levels such as 'pack:2 core:4 pu:1'")
    levels = []            # (kind, name, count, attrs)
    mem_children = {}      # level index (-1: machine) -> [attrs of each node]
    for tok in toks:
        mm = re.match(r"\[\s*([A-Za-z][A-Za-z0-9]*)\s*(?:\((.*)\))?\s*\]\Z", tok)
        if mm:
            kind, _ = _level_kind(mm.group(1), spec, tok)
            if kind != "numa":
                raise TopologyError(f"{source}: only NUMA nodes can be memory children ([numa]), "
                                    f"not {tok!r}")
            attrs = _attrs(mm.group(2) or "", spec, tok)
            mem_children.setdefault(len(levels) - 1, []).append(attrs)
            continue
        m = re.match(r"([A-Za-z][A-Za-z0-9]*)(?::([^()]*))?(?:\((.*)\))?\Z", tok)
        if not m:
            raise TopologyError(f"{source}: cannot read {tok!r}: levels look like core:4 or "
                                "numa:2(memory=1GiB)")
        kind, name = _level_kind(m.group(1), spec, tok)
        if m.group(2) is None:
            raise TopologyError(f"{source}: {tok!r} needs a count, e.g. {m.group(1)}:2")
        if not re.match(r"\s*\d+\s*\Z", m.group(2)):
            raise TopologyError(f"{source}: the count in {tok!r} is not a whole number")
        count = int(m.group(2))
        if count == 0:
            raise TopologyError(f"{source}: {tok!r}: a level needs at least one object (zero count)")
        attrs = _attrs(m.group(3) or "", spec, tok)
        levels.append((kind, name or kind, count, attrs, tok))

    kinds = [lv[0] for lv in levels]
    for k in ("package", "core", "pu"):
        if kinds.count(k) > 1:
            raise TopologyError(f"{source}: more than one {k} level")
    if "pu" in kinds and kinds[-1] != "pu":
        raise TopologyError(f"{source}: pu must be the last level")
    if "pu" not in kinds:
        levels.append(("pu", "pu", 1, {}, "pu:1"))
        kinds.append("pu")
    ipu = len(levels) - 1
    icore = kinds.index("core") if "core" in kinds else None
    ipkg = kinds.index("package") if "package" in kinds else None
    if icore is not None and ipkg is not None and icore < ipkg:
        raise TopologyError(f"{source}: core must come below package")
    if icore is not None:
        for kind, _, _, _, tok in levels[icore + 1:ipu]:
            raise TopologyError(f"{source}: {tok!r} below core: only pu may follow core "
                                "(QEMU cannot split a core's threads)")
    numa_levels = [i for i, k in enumerate(kinds) if k == "numa"]
    if len(numa_levels) + len(mem_children) > 1 or (mem_children and max(mem_children) == ipu):
        if mem_children and max(mem_children) == ipu:
            raise TopologyError(f"{source}: a NUMA node cannot hang below a pu")
        raise TopologyError(f"{source}: NUMA nodes at more than one level; QEMU puts every CPU in "
                            "exactly one node")

    counts = [lv[2] for lv in levels]
    total = 1
    for c in counts:
        total *= c
        if total > MAX_CPUS:
            raise TopologyError(f"{source} describes more than {MAX_CPUS} CPUs, more than any QEMU "
                                "machine allows")
    strides = []
    for i in range(len(levels)):
        s = 1
        for c in counts[i + 1:]:
            s *= c
        strides.append(s)
    objects = []          # objects at each level across the machine
    n = 1
    for c in counts:
        n *= c
        objects.append(n)

    for kind, name, count, attrs, tok in levels:
        allowed = {"numa": {"memory"}, "cache": {"size"}}.get(kind, set())
        for a in attrs:
            if a not in allowed:
                raise TopologyError(f"{source}: attribute {a}= in {tok!r} is not supported"
                                    + (f" (only {', '.join(sorted(allowed))}=)" if allowed else ""))

    threads = counts[ipu] if icore is not None else 1
    packages = objects[ipkg] if ipkg is not None else 1
    cores = total // packages // threads
    topo = Topology(source=source, packages=packages, cores=cores, threads=threads, kind="synthetic")

    def package_of_object(level, obj):
        if ipkg is None:
            return 0
        if level < ipkg:
            return None if objects[ipkg] // (objects[level] if level >= 0 else 1) > 1 else obj
        return obj // (objects[level] // objects[ipkg])

    nodes = []
    if numa_levels:
        i = numa_levels[0]
        attrs = levels[i][3]
        for o in range(objects[i]):
            mem = parse_syn_size(attrs["memory"], "memory size") if "memory" in attrs else None
            nodes.append(Node(cpus=list(range(o * strides[i], (o + 1) * strides[i])), mem=mem,
                              package=package_of_object(i, o), os_index=len(nodes)))
    elif mem_children:
        i = max(mem_children)
        owners = objects[i] if i >= 0 else 1
        stride = strides[i] if i >= 0 else total
        for o in range(owners):
            for j, attrs in enumerate(mem_children[i]):
                mem = parse_syn_size(attrs["memory"], "memory size") if "memory" in attrs else None
                cpus = list(range(o * stride, (o + 1) * stride)) if j == 0 else []
                pkg = package_of_object(i, o) if i >= 0 else (0 if packages == 1 else None)
                nodes.append(Node(cpus=cpus, mem=mem, package=pkg, os_index=len(nodes)))
    if len(nodes) == 1:
        topo.memory_total = nodes[0].mem
        nodes = []
    topo.nodes = nodes
    for i, (kind, name, count, attrs, tok) in enumerate(levels):
        if kind == "cache":
            size = parse_syn_size(attrs["size"], "cache size") if "size" in attrs else None
            topo.caches.append(Cache(name=name, count=objects[i], size=size))
    return topo


# -- hwloc XML ------------------------------------------------------------------------------
_IO_TYPES = {"Bridge", "PCIDev", "OSDev", "Misc"}
_CPU_SIDE = {"Machine", "Package", "Die", "Group", "Core", "PU", "L1Cache", "L2Cache", "L3Cache",
             "L4Cache", "L5Cache", "L1iCache", "L2iCache", "L3iCache"}


def parse_bitmap(text):
    """hwloc bitmap '0x000000ff,0xffffffff' (most significant word first;
    empty words are zero; a leading 0xf...f is an infinite set, cut off)
    -> set of bit numbers."""
    text = (text or "").strip()
    if not text:
        return set()
    words = text.split(",")
    bits = set()
    for i, w in enumerate(reversed(words)):
        w = w.strip()
        if w in ("", "0x0"):
            continue
        if w == "0xf...f":
            continue
        try:
            v = int(w, 16)
        except ValueError:
            raise TopologyError(f"bad hwloc bitmap {text!r}") from None
        for b in range(32):
            if v >> b & 1:
                bits.add(32 * i + b)
    return bits


def format_bitmap(bits):
    """The inverse of parse_bitmap, the way hwloc writes it."""
    bits = set(bits)
    if not bits:
        return "0x0"
    top = max(bits) // 32
    out = []
    for i in range(top, -1, -1):
        v = sum(1 << (b - 32 * i) for b in bits if 32 * i <= b < 32 * i + 32)
        if v or i == top:
            out.append(f"0x{v:08x}")
        elif i == 0:
            out.append("0x0")
        else:
            out.append("")
    return ",".join(out)


@dataclasses.dataclass
class XmlObject:
    type: str
    os_index: Optional[int]
    cpuset: set
    nodeset: set
    attrs: Dict[str, str]
    depth: int
    parent: Optional[int]       # index in the object list


def xml_objects(text, source="XML"):
    """Every object of an hwloc 2.x XML topology in document order (also
    checks that it is one): the root, parsed."""
    root = _xml_root(text, source)
    out = []

    def walk(el, depth, parent):
        for child in el:
            if child.tag != "object":
                continue
            a = dict(child.attrib)
            osi = a.get("os_index")
            out.append(XmlObject(type=a.get("type", "?"), os_index=int(osi) if osi is not None else None,
                                 cpuset=parse_bitmap(a.get("cpuset")), nodeset=parse_bitmap(a.get("nodeset")),
                                 attrs=a, depth=depth, parent=parent))
            walk(child, depth + 1, len(out) - 1)

    walk(root, 0, None)
    return out


def _xml_root(text, source):
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise TopologyError(f"{source}: not well-formed XML ({e})") from None
    if root.tag != "topology":
        raise TopologyError(f"{source}: not an hwloc topology (root element <{root.tag}>)")
    version = root.get("version")
    if version is None or not version.startswith("2."):
        raise TopologyError(f"{source}: hwloc 1.x XML is not supported: export it again with "
                            "hwloc 2 (lstopo --of xml FILE.xml)")
    tops = [c for c in root if c.tag == "object"]
    if len(tops) != 1 or tops[0].get("type") != "Machine":
        raise TopologyError(f"{source}: expected one top-level Machine object")
    return root


def _int_attr(el, name, source, default=None):
    v = el.get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        what = el.get("type") or el.tag     # an object's type, or the element (distances2)
        raise TopologyError(f"{source}: {what} {name}={v!r} is not a number") from None


def parse_xml(text, source="XML", kind="xml"):
    """hwloc 2.x XML -> Topology. PUs become CPUs in document order; every
    package must have the same number of cores and every core the same
    number of PUs (QEMU's -smp cannot describe anything else)."""
    root = _xml_root(text, source)
    pus = []              # (package key, core key, owner chain)
    numa = []             # (os_index, memory, owner element, package element)
    caches = {}

    def walk(el, ancestors, owner):
        t = el.get("type")
        if t in _IO_TYPES:
            return
        if t == "NUMANode":
            osi = _int_attr(el, "os_index", source)
            if osi is None:
                raise TopologyError(f"{source}: a NUMANode without os_index")
            pkg = next((a for a in reversed(ancestors) if a.get("type") == "Package"), None)
            numa.append((osi, _int_attr(el, "local_memory", source, 0), owner, pkg))
            return
        if t == "MemCache":
            for c in el:
                if c.tag == "object":
                    walk(c, ancestors, owner)
            return
        if t not in _CPU_SIDE:
            raise TopologyError(f"{source}: unknown object type {t!r}")
        chain = ancestors + [el]
        if t.endswith("Cache"):
            name = t[:2] + ("i" if t[2:3] == "i" else "d" if el.get("cache_type") == "1" else "")
            c = caches.setdefault(name, Cache(name=name, count=0, size=_int_attr(el, "cache_size", source)))
            c.count += 1
        if t == "PU":
            if any(c.tag == "object" and c.get("type") in _CPU_SIDE for c in el):
                raise TopologyError(f"{source}: a PU with CPU objects below it")
            pkg = next((a for a in reversed(chain) if a.get("type") == "Package"), None)
            core = next((a for a in reversed(chain) if a.get("type") == "Core"), el)
            pus.append((pkg, core, chain))
        for c in el:
            if c.tag == "object":
                walk(c, chain, el if t != "PU" else owner)

    machine = next(c for c in root if c.tag == "object")
    walk(machine, [], machine)
    if not pus:
        raise TopologyError(f"{source}: no PU objects: nothing to run on")
    if len(pus) > MAX_CPUS:
        raise TopologyError(f"{source} has {len(pus)} PUs, more than any QEMU machine allows ({MAX_CPUS})")

    # packages x cores x threads, in document order
    pkg_ids, core_ids = {}, {}
    per_pkg, per_core = {}, {}
    closed_pkgs, closed_cores = set(), set()
    last_pk = last_ck = None
    for pkg, core, _ in pus:
        pk = pkg_ids.setdefault(id(pkg), len(pkg_ids))
        ck = core_ids.setdefault(id(core), len(core_ids))
        if pk != last_pk and last_pk is not None:
            closed_pkgs.add(last_pk)
        if ck != last_ck and last_ck is not None:
            closed_cores.add(last_ck)
        if pk in closed_pkgs or ck in closed_cores:
            raise TopologyError(f"{source}: the PUs of a package or core are not contiguous")
        last_pk, last_ck = pk, ck
        per_pkg.setdefault(pk, set()).add(ck)
        per_core[ck] = per_core.get(ck, 0) + 1
    core_counts = sorted({len(v) for v in per_pkg.values()})
    thread_counts = sorted({v for v in per_core.values()})
    if len(core_counts) > 1:
        raise TopologyError(f"{source}: packages have {' or '.join(map(str, core_counts))} cores; "
                            "QEMU's -smp gives every package the same number of cores")
    if len(thread_counts) > 1:
        raise TopologyError(f"{source}: cores have {' or '.join(map(str, thread_counts))} PUs; "
                            "QEMU's -smp gives every core the same number of threads")
    topo = Topology(source=source, packages=len(pkg_ids), cores=core_counts[0], threads=thread_counts[0],
                    kind=kind)
    topo.caches = sorted(caches.values(), key=lambda c: (-int(c.name[1]), c.name))

    # NUMA nodes: each CPU belongs to the first node attached to its nearest
    # ancestor that has any; further nodes there have no CPUs.
    numa.sort(key=lambda n: n[0])
    if len({n[0] for n in numa}) != len(numa):
        raise TopologyError(f"{source}: two NUMA nodes with the same os_index")
    owners = {}
    for idx, (_, _, owner, _) in enumerate(numa):
        owners.setdefault(id(owner), []).append(idx)
    cpus_of = {i: [] for i in range(len(numa))}
    for cpu, (_, _, chain) in enumerate(pus):
        for a in reversed(chain):
            if id(a) in owners:
                cpus_of[owners[id(a)][0]].append(cpu)
                break
        else:
            if numa:
                raise TopologyError(f"{source}: PU {cpu} lies under no NUMA node")
    pkg_index = {k: v for k, v in pkg_ids.items()}
    nodes = []
    for idx, (osi, mem, owner, pkg) in enumerate(numa):
        cpus = cpus_of[idx]
        pkgs = {topo.package_of(c) for c in cpus}
        if pkg is not None:
            p = pkg_index.get(id(pkg))
        elif cpus and len(pkgs) == 1:
            p = pkgs.pop()
        else:
            p = 0 if topo.packages == 1 else None
        nodes.append(Node(cpus=cpus, mem=mem or None, package=p, os_index=osi))
    if any(n.mem for n in nodes) and not all(n.mem for n in nodes):
        for n in nodes:
            n.mem = n.mem or 0
    if len(nodes) == 1:
        topo.memory_total = nodes[0].mem
        nodes = []
    topo.nodes = nodes
    topo.dist = _xml_distances(root, nodes, source)
    return topo


def _numbers(el, tag, source):
    vals = []
    for c in el.findall(tag):
        for v in (c.text or "").split():
            try:
                vals.append(int(v))
            except ValueError:
                raise TopologyError(f"{source}: distances: {v!r} is not a number") from None
    return vals


def _xml_distances(root, nodes, source):
    cands = [d for d in root.findall("distances2") if d.get("type") == "NUMANode"]
    if not cands or len(nodes) < 2:
        return None

    def rank(d):
        kind = _int_attr(d, "kind", source, 0)
        return (d.get("name") != "NUMALatency", not (kind & 4))

    d = sorted(cands, key=rank)[0]
    n = _int_attr(d, "nbobjs", source, 0)
    idx = _numbers(d, "indexes", source)
    vals = _numbers(d, "u64values", source)
    if len(idx) != n or len(vals) != n * n:
        raise TopologyError(f"{source}: distances: {n} objects need {n} indexes and {n * n} values "
                            f"(got {len(idx)} and {len(vals)})")
    if d.get("indexing", "os") == "gp":
        gp = {}
        for obj in root.iter("object"):
            if obj.get("type") == "NUMANode" and obj.get("gp_index") is not None:
                gp[_int_attr(obj, "gp_index", source)] = _int_attr(obj, "os_index", source)
        try:
            idx = [gp[i] for i in idx]
        except KeyError as e:
            raise TopologyError(f"{source}: distances name gp_index {e.args[0]}, no NUMANode") from None
    pos = {osi: i for i, osi in enumerate(idx)}
    missing = [nd.os_index for nd in nodes if nd.os_index not in pos]
    if missing:
        raise TopologyError(f"{source}: the distance matrix leaves out NUMA node(s) "
                            + ", ".join(map(str, missing)))
    k = len(nodes)
    m = [[vals[pos[nodes[i].os_index] * n + pos[nodes[j].os_index]] for j in range(k)] for i in range(k)]
    for i in range(k):
        for j in range(k):
            v = m[i][j]
            if (i == j and v != LOCAL_DISTANCE) or (i != j and not 10 < v < 255):
                raise TopologyError(f"{source}: distance {nodes[i].os_index}->{nodes[j].os_index} is {v}; "
                                    "QEMU's SLIT needs 10 from a node to itself and 11..254 between nodes")
    return m


def parse_xml_file(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise TopologyError(f"cannot read {path}: {e.strerror}") from None
    return parse_xml(text, source=path)


def host_xml():
    """This machine's topology as hwloc XML (lstopo-no-graphics, no I/O)."""
    exe = shutil.which("lstopo-no-graphics") or shutil.which("lstopo")
    if not exe:
        raise TopologyError("--topology host needs hwloc's lstopo-no-graphics "
                            "(Debian package hwloc; tools/install-deps installs it)")
    try:
        r = subprocess.run([exe, "--no-io", "--of", "xml", "-"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TopologyError(f"{exe} failed: {e}") from None
    if r.returncode != 0:
        raise TopologyError(f"{exe} failed (exit {r.returncode}): {r.stderr.strip()}")
    return r.stdout


def load(spec):
    """--topology's argument: 'host', an XML file (a path ending in .xml or an
    existing file), or an hwloc synthetic string."""
    spec = spec.strip()
    if spec == "host":
        t = parse_xml(host_xml(), source="this host (lstopo)", kind="host")
        return t
    if spec.lower().endswith(".xml") or os.path.isfile(spec):
        if not os.path.isfile(spec):
            raise TopologyError(f"topology file {spec!r} not found")
        return parse_xml_file(spec)
    return parse_synthetic(spec)


# -- the guest's XML -------------------------------------------------------------------------
def extract_guest_xml(console, events=None):
    """The XML between the topology_xml_begin/end events of a console, or
    raises TopologyError. Checks the byte count the kernel announced."""
    lines = console.splitlines()
    begin = end = None
    for i, line in enumerate(lines):
        if line.startswith("@atoll ") and f'"event":"{XML_BEGIN_EVENT}"' in line:
            begin = i
        elif line.startswith("@atoll ") and f'"event":"{XML_END_EVENT}"' in line and begin is not None:
            end = i
            break
    if begin is None or end is None:
        raise TopologyError("the guest printed no complete topology XML (no topology_xml_begin/"
                            "topology_xml_end events; was topology_xml on the command line?)")
    text = "".join(line + "\n" for line in lines[begin + 1:end])
    m = re.search(r'"bytes":(\d+)', lines[end])
    if m and int(m.group(1)) != len(text.encode()):
        raise TopologyError(f"the guest announced {m.group(1)} bytes of XML but the console holds "
                            f"{len(text.encode())} (lines lost or mixed in?)")
    return text


def compare(want, got_xml, machine=None, mem_tolerance=4 << 20):
    """The guest's XML against the requested Topology, object by object.
    Returns a list of differences (empty: they agree). With `machine` (the
    atoll_run.Machine that was booted) node memory is checked too; it may be
    short by `mem_tolerance` (firmware holes such as the VGA window)."""
    problems = []
    try:
        got = parse_xml(got_xml, source="guest XML")
        objs = xml_objects(got_xml, source="guest XML")
    except TopologyError as e:
        return [str(e)]
    smp = want.smp
    if got.smp != smp:
        problems.append(f"CPUs: want {smp}, guest has {got.smp}")
        return problems
    for what, a, b in (("packages", want.packages, got.packages), ("cores per package", want.cores, got.cores),
                       ("threads per core", want.threads, got.threads)):
        if a != b:
            problems.append(f"{what}: want {a}, guest has {b}")

    def by_type(t):
        return [o for o in objs if o.type == t]

    want_pkgs = sorted(tuple(c for c in range(smp) if want.package_of(c) == p) for p in range(want.packages))
    want_cores = sorted(tuple(range(k * want.threads, (k + 1) * want.threads))
                        for k in range(want.packages * want.cores))
    for t, expect in (("Package", want_pkgs), ("Core", want_cores),
                      ("PU", sorted((c,) for c in range(smp)))):
        have = sorted(tuple(sorted(o.cpuset)) for o in by_type(t))
        if have != expect:
            problems.append(f"{t} cpusets: want {[cpu_ranges(s) for s in expect]}, "
                            f"guest has {[cpu_ranges(s) for s in have]}")
    pu_os = sorted(o.os_index for o in by_type("PU"))
    if pu_os != list(range(smp)):
        problems.append(f"PU os_index: want 0-{smp - 1}, guest has {pu_os}")

    wnodes = want.nodes or [Node(cpus=list(range(smp)), mem=None, os_index=0)]
    gnodes = by_type("NUMANode")
    if len(gnodes) != len(wnodes):
        problems.append(f"NUMA nodes: want {len(wnodes)}, guest has {len(gnodes)}")
        return problems
    gnodes.sort(key=lambda o: o.os_index)
    all_cpus = set(range(smp))
    want_mem = [n.mem for n in machine.numa] if machine is not None and machine.numa else None
    for i, (w, g) in enumerate(zip(wnodes, gnodes)):
        if g.os_index != i:
            problems.append(f"NUMA node {i}: guest calls it P#{g.os_index}")
        cpus = set(w.cpus) if w.cpus else all_cpus
        if g.cpuset != cpus:
            problems.append(f"NUMA node {i} cpuset: want {cpu_ranges(cpus)}, guest has {cpu_ranges(g.cpuset)}")
        if g.nodeset != {i}:
            problems.append(f"NUMA node {i} nodeset: want {{{i}}}, guest has {sorted(g.nodeset)}")
        if want_mem is not None:
            gm = int(g.attrs.get("local_memory", "0"))
            if not (want_mem[i] - mem_tolerance <= gm <= want_mem[i]):
                problems.append(f"NUMA node {i} memory: want {want_mem[i]} bytes, guest has {gm}")
    # Every PU's nodeset holds its own node.
    for o in by_type("PU"):
        c = o.os_index
        n = want.node_of(c) if want.nodes else 0
        if n not in o.nodeset:
            problems.append(f"PU {c} nodeset {sorted(o.nodeset)} lacks its node {n}")
    # Every object's cpuset lies inside its parent's.
    for o in objs:
        if o.parent is not None and o.type != "NUMANode" and not o.cpuset <= objs[o.parent].cpuset:
            problems.append(f"{o.type} cpuset {cpu_ranges(o.cpuset)} is not inside its parent's")
    wd = want.distances()
    gd = got.dist
    if wd != gd:
        problems.append(f"distances: want {wd}, guest has {gd}")
    return problems
