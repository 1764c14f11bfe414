"""Boot Atoll in QEMU (or Bochs): machine description, QEMU command line, console, exit status.

tools/run is the command-line front end (docs/runner.md documents every
option); tests use the library directly:

    from atoll_run import parse_args, boot
    machine, opts = parse_args(["--smp", "8", "--numa", "2", "--poweroff"])
    r = boot(machine, timeout=120)
    assert r.status == 0, r.console
    assert any(e["event"] == "boot_done" for e in r.events)

The kernel reports with console lines `@atoll {json}` (parse_events) and ends
by writing its status to the isa-debug-exit port 0xf4; QEMU then exits with
(status << 1) | 1, which exit_status() maps back. Under Bochs
(Machine(emulator="bochs"), tools/atoll_bochs.py) the status comes from the
kernel's `exit` event instead.

Standard library only.
"""
import dataclasses
import json
import math
import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_bochs  # noqa: E402
import atoll_costmodel  # noqa: E402
import atoll_image  # noqa: E402
from atoll_costmodel import CostModel  # noqa: E402,F401  (re-exported)
from atoll_image import Module  # noqa: E402,F401  (re-exported for tests)

REPO = atoll_image.REPO
DEFAULT_KERNEL = os.path.join("build", "cpudriver", "atoll.elf")   # relative to REPO
# The user programs tools/run boots by default: the modules of boot/Hakefile.py's
# image (tests/test_runner_cli.py checks the two lists agree).
USER_PROGRAMS = ("monitor", "names", "starter", "topo", "shell", "hello", "badboy", "fuzz", "lmpbench", "urpcbench",
                 "echo", "xattack", "churn", "greeter", "threads", "store", "capxfer", "mem")
# The boot manifest the starter reads (docs/services.md), unless --services.
DEFAULT_SERVICES = os.path.join(REPO, "servers", "starter", "default.services")
SHELL_PROMPT = b"atoll> "


def user_modules(monitor_args="", services=None, extra=()):
    """Modules for the built user programs (those that exist) and the boot
    manifest (`services`, default servers/starter/default.services); the
    monitor's module gets `monitor_args` (say "mesh=all cluster=4",
    docs/monitor.md). `extra`: more programs of build/user to boot, not in
    the default image (say "echo2", the second version of the echo server
    for live updates: every program in the image takes guest memory,
    tests/test_boot_failures.py)."""
    paths = [os.path.join(REPO, "build", "user", p + ".elf") for p in USER_PROGRAMS + tuple(extra)]
    mods = [Module(p, args=monitor_args if os.path.basename(p) == "monitor.elf" else "")
            for p in paths if os.path.isfile(p)]
    manifest = services or DEFAULT_SERVICES
    if mods and os.path.isfile(manifest):
        mods.append(Module(manifest, name="services"))
    return mods
QEMU = "qemu-system-x86_64"
EVENT_PREFIX = "@atoll "
MiB = 1 << 20
GiB = 1 << 30
NUMA_ALIGN = 2 * MiB
DEFAULT_MEM = 1 * GiB


# What a core needs at boot beyond the common part (tools/run's default memory
# grows with the CPUs): its monitor's 4 MiB share of RAM (the CPU driver's
# minimum, cpudriver/user_start.c), its kernel memory and channels.
MEM_PER_CPU = 5 * MiB
MEM_COMMON = 256 * MiB      # the boot core's servers, modules, the kernel's own


def default_mem(nodes, cpus=1):
    """Guest memory when none is asked for: 1 GiB, or, when that does not
    split into `nodes` NUMA nodes of whole 2 MiB multiples (3, 5, 6, 7, ...
    nodes), the largest size below it that does: 1020M for 3 nodes (340M
    each), 1020M for 5 (204M each). Never under 2M per node. With more
    CPUs than 1 GiB holds (MEM_PER_CPU each, beyond MEM_COMMON: above 153),
    enough for every core's monitor, in 256M steps that split into the
    nodes: 1536M for 255 CPUs."""
    step = max(nodes, 1) * NUMA_ALIGN
    need = cpus * MEM_PER_CPU + MEM_COMMON
    if need > DEFAULT_MEM:
        need = -(-need // (256 * MiB)) * 256 * MiB
        return -(-need // step) * step
    return max(step, DEFAULT_MEM // step * step)


LOCAL_DISTANCE = 10
REMOTE_DISTANCE = 20

# Exit statuses of tools/run besides the guest's own (0..127).
EXIT_USAGE = 2          # invalid options, missing files, QEMU failing to start
EXIT_NO_STATUS = 3      # QEMU exited 0: the guest stopped without reporting a status
EXIT_TIMEOUT = 124      # --timeout expired; QEMU was killed

MACHINES = {"q35": 288, "pc": 255}    # QEMU 7.2's max CPUs per machine type
EMULATORS = ("qemu", "bochs")
# How the host backs the guest's RAM. QEMU asks for transparent huge pages on
# private RAM, so the first guest write to any 2 MiB makes the host clear (and,
# nested, back) all of it; a guest that touches a little of many regions (a
# monitor per core, each in its own core's share) pays for far more than it
# uses. "small" maps the RAM shared, which Linux backs with 4 KiB pages unless
# /sys/kernel/mm/transparent_hugepage/shmem_enabled says otherwise
# (docs/runner.md "Host pages"); "huge" is QEMU's default.
HOST_PAGES = ("small", "huge")
TCG_MAX_CPUS = 255                     # more needs KVM's x2APIC (QEMU 7.2's TCG has none)


class ConfigError(ValueError):
    """An invalid machine description or option; tools/run exits 2 with the message."""


# -- machine description --------------------------------------------------------
@dataclasses.dataclass
class NumaNode:
    cpus: List[int]       # CPU indexes (0..smp-1); may be empty
    mem: int              # bytes; a multiple of 2 MiB; 0 = a node without memory

    def cpu_ranges(self):
        return cpu_ranges(self.cpus)


@dataclasses.dataclass
class Machine:
    """One QEMU machine. `numa` may be given as an int K (K even nodes) and is
    turned into a list of NumaNode by validate(); `dist` may be None (10 local,
    20 remote). validate() (called by qemu_command and boot) fills in the
    topology and checks everything."""
    smp: int = 4
    sockets: Optional[int] = None
    cores: Optional[int] = None
    threads: Optional[int] = None
    numa: object = dataclasses.field(default_factory=list)   # list[NumaNode] or int
    dist: Optional[List[List[int]]] = None
    mem: int = 1 * GiB
    machine: str = "q35"
    accel: str = "tcg"         # tcg | kvm | auto (KVM if usable)
    x2apic: str = "auto"       # on | off | auto
    cpu_flags: str = ""        # appended to -cpu, e.g. "-smap"
    cmdline: str = ""
    kernel: str = ""           # "" = build/cpudriver/atoll.elf in the repository
    modules: List[Module] = dataclasses.field(default_factory=list)
    emulator: str = "qemu"     # qemu | bochs (then machine must be "pc")
    bochs_cpu: str = atoll_bochs.DEFAULT_CPU   # Bochs's CPU model (bochs --help cpu)
    host_pages: str = "small"  # small | huge: how the host backs guest RAM (HOST_PAGES)

    @property
    def kernel_path(self):
        return self.kernel or os.path.join(REPO, DEFAULT_KERNEL)

    def resolved_accel(self):
        if self.emulator == "bochs":
            return "bochs"          # an interpreter: no accelerator to choose
        if self.accel == "auto":
            return "kvm" if kvm_usable() else "tcg"
        return self.accel

    def validate(self):
        """Check and normalize in place; raises ConfigError. Returns self."""
        if not isinstance(self.smp, int) or self.smp < 1:
            raise ConfigError(f"--smp must be at least 1 (got {self.smp})")
        if self.machine not in MACHINES:
            raise ConfigError(f"unknown machine {self.machine!r}: use one of "
                              + ", ".join(sorted(MACHINES)))
        if self.smp > MACHINES[self.machine]:
            raise ConfigError(f"--smp {self.smp}: QEMU's {self.machine} machine supports at "
                              f"most {MACHINES[self.machine]} CPUs")
        if self.accel not in ("tcg", "kvm", "auto"):
            raise ConfigError(f"unknown accelerator {self.accel!r}: use tcg, kvm or auto")
        if self.host_pages not in HOST_PAGES:
            raise ConfigError(f"--host-pages must be small or huge (got {self.host_pages!r})")
        if self.x2apic not in ("on", "off", "auto"):
            raise ConfigError(f"--x2apic must be on, off or auto (got {self.x2apic!r})")
        if self.emulator not in EMULATORS:
            raise ConfigError(f"unknown emulator {self.emulator!r}: use " + " or ".join(EMULATORS))
        self._validate_topology()
        accel = self.resolved_accel()
        if accel == "tcg":
            if self.x2apic == "on":
                why = " (--accel auto chose TCG: /dev/kvm is not usable)" if self.accel == "auto" else ""
                raise ConfigError("--x2apic on needs KVM: QEMU 7.2's TCG has no x2APIC" + why)
            if self.smp > TCG_MAX_CPUS:
                raise ConfigError(f"--smp {self.smp}: more than {TCG_MAX_CPUS} CPUs need x2APIC, "
                                  "which QEMU 7.2's TCG lacks; use --accel kvm")
        if not isinstance(self.mem, int) or self.mem <= 0:
            raise ConfigError(f"--mem must be positive (got {self.mem})")
        if self.mem % NUMA_ALIGN:
            raise ConfigError(f"--mem {fmt_size(self.mem)} is not a multiple of 2M")
        if isinstance(self.numa, int):
            self.numa = even_numa(self.smp, self.numa, self.mem)
        self._validate_numa()
        if self.emulator == "bochs":
            why = atoll_bochs.problems(self, self.mem // MiB)
            if why:
                raise ConfigError(why)
        self.modules = [atoll_image.as_module(m) for m in self.modules]
        try:
            atoll_image.split_words(self.cmdline)
        except atoll_image.ImageError as e:
            raise ConfigError(str(e)) from None
        return self

    def _validate_topology(self):
        given = {k: getattr(self, k) for k in ("sockets", "cores", "threads")}
        if all(v is None for v in given.values()):
            return
        for k, v in given.items():
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"--{k} must be at least 1 (got {v})")
        # QEMU 7.2's rule (cores preferred over sockets): missing threads and
        # sockets default to 1, missing cores take what is left.
        s, c, t = self.sockets, self.cores, self.threads
        t = t or 1
        if c is None:
            s = s or 1
            if self.smp % (s * t):
                raise ConfigError(f"--smp {self.smp} is not a multiple of sockets*threads = {s * t}")
            c = self.smp // (s * t)
        elif s is None:
            if self.smp % (c * t):
                raise ConfigError(f"--smp {self.smp} is not a multiple of cores*threads = {c * t}")
            s = self.smp // (c * t)
        if s * c * t != self.smp:
            raise ConfigError(f"sockets*cores*threads = {s}*{c}*{t} = {s * c * t}, "
                              f"but --smp is {self.smp}")
        self.sockets, self.cores, self.threads = s, c, t

    def _validate_numa(self):
        nodes = self.numa
        if not nodes:
            if self.dist:
                raise ConfigError("--numa-dist needs NUMA nodes (--numa or --numa-node)")
            return
        seen = {}
        for i, n in enumerate(nodes):
            if n.mem < 0 or n.mem % NUMA_ALIGN:
                raise ConfigError(f"NUMA node {i}: memory {fmt_size(n.mem)} is not a multiple of 2M")
            for c in n.cpus:
                if c < 0 or c >= self.smp:
                    raise ConfigError(f"NUMA node {i}: CPU {c} does not exist (--smp {self.smp}: "
                                      f"CPUs 0-{self.smp - 1})")
                if c in seen:
                    raise ConfigError(f"CPU {c} is in NUMA node {seen[c]} and node {i}")
                seen[c] = i
        missing = [c for c in range(self.smp) if c not in seen]
        if missing:
            raise ConfigError("CPUs " + ",".join(cpu_ranges(missing))
                              + " are in no NUMA node: the nodes' cpus must cover "
                              f"0-{self.smp - 1} exactly once")
        total = sum(n.mem for n in nodes)
        if total != self.mem:
            raise ConfigError(f"NUMA node memory adds up to {fmt_size(total)}, "
                              f"but --mem is {fmt_size(self.mem)}")
        if all(n.mem == 0 for n in nodes):
            raise ConfigError("no NUMA node has memory")
        k = len(nodes)
        if self.dist is None:
            self.dist = default_dist(k)
        if len(self.dist) != k or any(len(row) != k for row in self.dist):
            raise ConfigError(f"the distance matrix must be {k}x{k} for {k} NUMA nodes")
        for i in range(k):
            for j in range(k):
                v = self.dist[i][j]
                if i == j and v != LOCAL_DISTANCE:
                    raise ConfigError(f"NUMA distance {i}-{i} must be {LOCAL_DISTANCE} (got {v})")
                if i != j and not (LOCAL_DISTANCE < v <= 255):
                    raise ConfigError(f"NUMA distance {i}-{j} = {v}: remote distances must be "
                                      "11..255 (ACPI SLIT)")


def even_numa(smp, k, mem):
    """K nodes: CPUs in contiguous blocks as even as possible (the first
    smp % k nodes get one more), memory split evenly."""
    if k < 0:
        raise ConfigError(f"--numa must be 0 or more (got {k})")
    if k == 0:
        return []
    if k > smp:
        raise ConfigError(f"--numa {k} is more nodes than CPUs (--smp {smp})")
    if mem % (k * NUMA_ALIGN):
        raise ConfigError(f"--mem {fmt_size(mem)} does not split into {k} NUMA nodes of a "
                          f"multiple of 2M each (use a multiple of {fmt_size(k * NUMA_ALIGN)})")
    nodes, cpu = [], 0
    for i in range(k):
        n = smp // k + (1 if i < smp % k else 0)
        nodes.append(NumaNode(cpus=list(range(cpu, cpu + n)), mem=mem // k))
        cpu += n
    return nodes


def default_dist(k):
    return [[LOCAL_DISTANCE if i == j else REMOTE_DISTANCE for j in range(k)] for i in range(k)]


# -- option value parsers -----------------------------------------------------------
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(I?B)?\Z", re.IGNORECASE)
_UNITS = {"": MiB, "K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}


def parse_size(text):
    """'512M', '2G', '1536m', '4096K' -> bytes. A bare number means MiB, as for QEMU's -m."""
    m = _SIZE.match(str(text).strip())
    if not m:
        raise ConfigError(f"bad size {text!r}: use a number with a K, M, G or T suffix "
                          "(e.g. 512M, 2G)")
    return int(m.group(1)) * _UNITS[m.group(2).upper()]


def fmt_size(n):
    """Bytes -> QEMU size string: '2G', '512M', '4K' or plain bytes."""
    for suffix, unit in (("T", 1 << 40), ("G", GiB), ("M", MiB), ("K", 1 << 10)):
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


# No QEMU machine has more CPUs than this; a larger index is a typo, and
# expanding it would only eat memory.
CPU_INDEX_MAX = 4095


def parse_cpus(text):
    """'0-3,8,10-11' -> [0, 1, 2, 3, 8, 10, 11]."""
    cpus = []
    seen = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        m = re.match(r"(\d+)(?:-(\d+))?\Z", part)
        if not m:
            raise ConfigError(f"bad CPU list {text!r}: use ranges like 0-3,8")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        if b < a:
            raise ConfigError(f"bad CPU range {part!r}: the end is before the start")
        if b > CPU_INDEX_MAX:
            raise ConfigError(f"bad CPU range {part!r}: CPU numbers go up to {CPU_INDEX_MAX}")
        for c in range(a, b + 1):
            if c in seen:
                raise ConfigError(f"CPU {c} appears twice in {text!r}")
            seen.add(c)
            cpus.append(c)
    return cpus


def cpu_ranges(cpus):
    """[0,1,2,5,7,8] -> ['0-2', '5', '7-8']."""
    out = []
    cpus = sorted(cpus)
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return out


def parse_numa_node(text):
    """'cpus=0-3,mem=512M' (also 'cpus=0-1,4-5,mem=1G', 'mem=256M' for a node
    without CPUs) -> (cpus, mem-or-None)."""
    fields = {}
    key = None
    for tok in text.split(","):
        tok = tok.strip()
        if "=" in tok:
            key, val = tok.split("=", 1)
            key = key.strip().lower()
            if key not in ("cpus", "mem"):
                raise ConfigError(f"--numa-node {text!r}: unknown field {key!r} (use cpus=, mem=)")
            if key in fields:
                raise ConfigError(f"--numa-node {text!r}: {key}= given twice")
            fields[key] = val.strip()
        elif key == "cpus":          # 'cpus=0-1,4-5': more ranges
            fields["cpus"] += "," + tok
        elif tok:
            raise ConfigError(f"--numa-node {text!r}: expected cpus=RANGES,mem=SIZE")
    cpus = parse_cpus(fields.get("cpus", ""))
    mem = parse_size(fields["mem"]) if "mem" in fields else None
    return cpus, mem


def parse_dist(text, k):
    """A full matrix '10,20;20,10' (rows separated by ';'; may be asymmetric)
    or symmetric pairs '0-1=20,0-2=30' (pairs not named stay 20) -> k x k matrix."""
    text = text.strip()
    if k < 2:
        raise ConfigError("--numa-dist needs at least two NUMA nodes")
    if "=" not in text:
        try:
            rows = [[int(v) for v in row.split(",")] for row in text.split(";")]
        except ValueError:
            raise ConfigError(f"bad --numa-dist {text!r}: a matrix is rows of numbers, "
                              "e.g. 10,20;20,10") from None
        if len(rows) != k or any(len(r) != k for r in rows):
            raise ConfigError(f"--numa-dist matrix is {len(rows)} rows of "
                              f"{'/'.join(str(len(r)) for r in rows)} values; "
                              f"{k} NUMA nodes need {k}x{k}")
        return rows
    d = default_dist(k)
    for item in text.split(","):
        m = re.match(r"\s*(\d+)\s*-\s*(\d+)\s*=\s*(\d+)\s*\Z", item)
        if not m:
            raise ConfigError(f"bad --numa-dist entry {item!r}: use A-B=VALUE (e.g. 0-1=20)")
        a, b, v = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if a >= k or b >= k:
            raise ConfigError(f"--numa-dist {item!r}: there are only nodes 0-{k - 1}")
        if a == b:
            raise ConfigError(f"--numa-dist {item!r}: a node's distance to itself is always "
                              f"{LOCAL_DISTANCE}")
        d[a][b] = d[b][a] = v
    return d


# -- options ---------------------------------------------------------------------------
@dataclasses.dataclass
class RunOptions:
    timeout: Optional[float] = None
    log: Optional[str] = None
    gdb: Optional[int] = None
    dry_run: bool = False
    quiet: bool = False
    print_cmd: bool = False
    topology: Optional[str] = None   # --topology's argument, and what it became
    topology_summary: Optional[str] = None
    iso: Optional[str] = None
    poweroff: bool = False
    shell_commands: List[str] = dataclasses.field(default_factory=list)
    cost: Optional[CostModel] = None     # --cost-model


class _Parser:
    """argparse, raising ConfigError instead of exiting (so tests can see the message)."""

    def __init__(self):
        import argparse

        class P(argparse.ArgumentParser):
            def error(self, message):
                raise ConfigError(message)

        p = P(prog="run", add_help=True, allow_abbrev=False,
              description="Boot Atoll in QEMU (or Bochs). See docs/runner.md.")
        a = p.add_argument
        a("--smp", type=int, default=None, help="number of CPUs (default 4)")
        a("--sockets", type=int, help="CPU topology: sockets")
        a("--cores", type=int, help="CPU topology: cores per socket")
        a("--threads", type=int, help="CPU topology: threads per core")
        a("--numa", type=int, default=None, metavar="K",
          help="K NUMA nodes, CPUs and memory split evenly (default: no NUMA)")
        a("--numa-node", action="append", default=[], metavar="cpus=0-3,mem=512M",
          help="one NUMA node (repeatable, in node order; overrides --numa)")
        a("--topology", metavar="SPEC|FILE.xml|host",
          help="the machine from an hwloc description: a synthetic string such as "
               "'pack:2 numa:2 core:4 pu:1', an hwloc XML file, or 'host' (replaces --smp, "
               "--sockets, --cores, --threads, --numa, --numa-node; see docs/topology.md)")
        a("--numa-dist", metavar="SPEC",
          help="NUMA distances: '0-1=20,0-2=30' or a matrix '10,20;20,10' (default 10/20)")
        a("--mem", default=None, metavar="SIZE", help="memory, e.g. 512M, 2G (default 1G; with --numa K that "
                                   "1G does not split into, the largest size below 1G that does; "
                                   "more than 1G with more than 153 CPUs: docs/runner.md)")
        a("--machine", default=None, help="q35 (default) or pc (the only one, and the default, with Bochs)")
        a("--emulator", default="qemu", choices=EMULATORS,
          help="qemu (default) or bochs (Debian's Bochs 2.7: tools/install-deps)")
        a("--bochs-cpu", default=atoll_bochs.DEFAULT_CPU, metavar="MODEL",
          help=f"Bochs's CPU model (default {atoll_bochs.DEFAULT_CPU}; bochs --help cpu lists them)")
        a("--accel", default="tcg", help="tcg (default), kvm, or auto (KVM if usable)")
        a("--x2apic", default="auto", help="on, off or auto (default)")
        a("--host-pages", default="small", choices=HOST_PAGES,
          help="how the host backs guest RAM: small (4 KiB pages, default) or huge (QEMU's "
               "transparent huge pages); docs/runner.md")
        a("--cpu-flags", default="", metavar="FLAGS",
          help="CPU features to add or remove, appended to -cpu (e.g. '-smap,-pcid')")
        a("--cmdline", default="", help="kernel command line")
        a("--poweroff", action="store_true",
          help="append 'poweroff' to the command line: power off after the boot report")
        a("--kernel", default=None, help=f"kernel ELF (default {DEFAULT_KERNEL})")
        a("--module", action="append", default=[], metavar="PATH[=ARGS]",
          help="multiboot2 module (repeatable)")
        a("--monitor-args", default="", metavar="ARGS",
          help="arguments of every core's monitor: mesh=cluster|all|star, cluster=N (docs/monitor.md)")
        a("--services", metavar="FILE",
          help="boot this service manifest instead of servers/starter/default.services (docs/services.md)")
        a("--program", action="append", default=[], metavar="NAME",
          help="also boot build/user/NAME.elf, a built program not in the default image (say echo2, "
               "docs/restart.md); repeatable")
        a("--iso", help="boot this prebuilt ISO instead of building one")
        a("--timeout", type=float, metavar="SECONDS", help="kill QEMU after this long (exit 124)")
        a("--log", metavar="FILE", help="write a copy of the console to FILE")
        a("--gdb", type=int, nargs="?", const=1234, metavar="PORT",
          help="wait for gdb on PORT (default 1234) before the first instruction")
        a("--dry-run", action="store_true", help="print the QEMU command and exit")
        a("--quiet", action="store_true", help="do not stream the console")
        a("--print-cmd", action="store_true", help="print the QEMU command to stderr first")
        a("--cost-model", action="store_true",
          help="count cache-line transfers, IPIs and instructions with the cost model plugin "
               "(single-threaded TCG; docs/costmodel.md)")
        a("--cost-out", metavar="FILE",
          help=f"where the cost model writes its JSON lines (default {atoll_costmodel.DEFAULT_OUT})")
        a("--cost-hot", type=int, metavar="N",
          help="name each measured region's N lines with the most transfers")
        a("shell_commands", nargs="*", metavar="-- COMMAND",
          help="commands for the Atoll shell (not yet available)")
        self.p = p


def _check_text(what, text, shell=False):
    """Text that goes to the guest: UTF-8 (a command line from a terminal can
    carry any bytes), and for the shell, the printable ASCII it reads."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} has bytes that are not UTF-8: {text.encode('utf-8', 'replace')!r}") from None
    bad = [ch for ch in text if not " " <= ch <= "~"] if shell else []
    if bad:
        raise ConfigError(f"{what} has characters the Atoll shell does not read ({bad[0]!r}): "
                          "use printable ASCII")


def _check_output_file(option, path):
    """A file we will write: not a folder, in a folder that exists."""
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path!r} is a directory: give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(f"{option} {path!r}: the folder {folder!r} does not exist")


def _looks_like_iso(path):
    """ISO 9660: 'CD001' at byte 0x8001 (the first volume descriptor)."""
    try:
        with open(path, "rb") as f:
            f.seek(0x8001)
            return f.read(5) == b"CD001"
    except OSError:
        return False


def parse_args(argv):
    """tools/run's options -> (Machine, RunOptions). Raises ConfigError."""
    argv = list(argv)
    shell = []
    if "--" in argv:
        i = argv.index("--")
        argv, shell = argv[:i], argv[i + 1:]
    for n, a in enumerate(argv):
        _check_text(f"argument {n + 1}", a)
    ns = _Parser().p.parse_args(argv)
    shell = list(ns.shell_commands) + shell
    for n, c in enumerate(shell):
        _check_text(f"shell command {n + 1} ({c.encode('utf-8', 'replace').decode()!r})", c, shell=True)
    if ns.timeout is not None and not (math.isfinite(ns.timeout) and ns.timeout > 0):
        raise ConfigError(f"--timeout must be a positive number of seconds (got {ns.timeout})")
    if ns.log:
        _check_output_file("--log", ns.log)
    if ns.iso and os.path.isfile(ns.iso) and not _looks_like_iso(ns.iso):
        raise ConfigError(f"--iso {ns.iso!r} is not an ISO 9660 image (build one with tools/mkimage)")

    mem = parse_size(ns.mem) if ns.mem is not None else None
    explicit = [o for o, v in (("--smp", ns.smp), ("--sockets", ns.sockets), ("--cores", ns.cores),
                               ("--threads", ns.threads), ("--numa", ns.numa),
                               ("--numa-node", ns.numa_node)) if v]
    ns.smp = 4 if ns.smp is None else ns.smp
    ns.numa = 0 if ns.numa is None else ns.numa
    if ns.machine is None:
        ns.machine = "pc" if ns.emulator == "bochs" else "q35"
    m = Machine(smp=ns.smp, sockets=ns.sockets, cores=ns.cores, threads=ns.threads,
                machine=ns.machine, accel=ns.accel, x2apic=ns.x2apic, cpu_flags=ns.cpu_flags,
                emulator=ns.emulator, bochs_cpu=ns.bochs_cpu, host_pages=ns.host_pages)
    if m.smp < 1:
        raise ConfigError(f"--smp must be at least 1 (got {m.smp})")

    if ns.numa_node:
        parsed = [parse_numa_node(t) for t in ns.numa_node]
        known = sum(x for _, x in parsed if x is not None)
        unsized = [i for i, (_, x) in enumerate(parsed) if x is None]
        if mem is None:
            if unsized:
                raise ConfigError("give every --numa-node a mem= size, or give --mem "
                                  "(nodes without mem= share what is left)")
            mem = known
        share = 0
        if unsized:
            left = mem - known
            if left < 0 or left % (len(unsized) * NUMA_ALIGN):
                raise ConfigError(f"--mem {fmt_size(mem)} minus the nodes' mem= sizes leaves "
                                  f"{fmt_size(max(left, 0))}, which does not split into "
                                  f"{len(unsized)} multiples of 2M")
            share = left // len(unsized)
        m.numa = [NumaNode(cpus=c, mem=x if x is not None else share) for c, x in parsed]
        m.mem = mem
    else:
        m.mem = mem if mem is not None else default_mem(ns.numa, ns.smp)
        if ns.numa < 0:
            raise ConfigError(f"--numa must be 0 or more (got {ns.numa})")
        m.numa = ns.numa
    if ns.numa_dist is not None and ns.topology is None:
        k = len(m.numa) if isinstance(m.numa, list) else m.numa
        m.dist = parse_dist(ns.numa_dist, k)
    topology_summary = None
    if ns.topology is not None:
        m, topology_summary = _machine_from_topology(ns, mem, explicit)

    cost = None
    if ns.cost_model:
        if m.emulator == "bochs":
            raise ConfigError("--cost-model is a QEMU TCG plugin: it cannot run under Bochs")
        if m.accel == "kvm":
            raise ConfigError("--cost-model is a TCG plugin: it cannot run with --accel kvm")
        m.accel = "tcg"
        if ns.cost_hot is not None and not (0 <= ns.cost_hot <= 1000):
            raise ConfigError(f"--cost-hot must be 0..1000 (got {ns.cost_hot})")
        cost = CostModel(out=ns.cost_out or os.path.join(REPO, atoll_costmodel.DEFAULT_OUT),
                         hot=ns.cost_hot or 0)
    elif ns.cost_out is not None or ns.cost_hot is not None:
        raise ConfigError("--cost-out and --cost-hot need --cost-model")
    opts = RunOptions(timeout=ns.timeout, log=ns.log, gdb=ns.gdb, dry_run=ns.dry_run,
                      quiet=ns.quiet, print_cmd=ns.print_cmd, iso=ns.iso,
                      poweroff=ns.poweroff, shell_commands=shell, topology=ns.topology,
                      topology_summary=topology_summary, cost=cost)
    if ns.topology is not None:
        opts.print_cmd = True          # a machine built for you: show how, so it can be copied
    if ns.iso is not None:
        clash = [o for o, v in (("--cmdline", ns.cmdline), ("--poweroff", ns.poweroff),
                                ("--module", ns.module), ("--kernel", ns.kernel)) if v]
        if clash:
            raise ConfigError(f"--iso boots a prebuilt image, whose kernel, modules and command "
                              f"line are fixed; drop {', '.join(clash)}")
    cmdline = ns.cmdline.strip()
    if ns.poweroff:
        cmdline = (cmdline + " poweroff").strip()
    m.cmdline = cmdline
    m.kernel = ns.kernel or ""
    try:
        m.modules = [Module.parse(s) for s in ns.module]
    except atoll_image.ImageError as e:
        raise ConfigError(str(e)) from None
    if ns.services is not None:
        if ns.module or ns.kernel or ns.iso is not None:
            raise ConfigError("--services goes with the built user programs, not --module, --kernel or --iso")
        if not os.path.isfile(ns.services):
            raise ConfigError(f"--services {ns.services!r}: no such file")
        try:
            with open(ns.services, encoding="utf-8") as f:
                f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--services {ns.services!r}: not a text file ({e})") from None
    if ns.program and (ns.module or ns.kernel or ns.iso is not None):
        raise ConfigError("--program goes with the built user programs, not --module, --kernel or --iso")
    for p in ns.program:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", p) or not os.path.isfile(os.path.join(REPO, "build", "user", p + ".elf")):
            raise ConfigError(f"--program {p!r}: no build/user/{p}.elf (run make)")
    if not ns.module and not ns.kernel and ns.iso is None:
        # The monitor, the servers, the test programs and the manifest.
        m.modules = user_modules(ns.monitor_args, services=ns.services, extra=tuple(ns.program))
    if opts.timeout is not None and opts.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    if opts.gdb is not None and not (0 < opts.gdb < 65536):
        raise ConfigError(f"--gdb port {opts.gdb} is not a TCP port")
    if opts.gdb is not None and m.emulator == "bochs":
        raise ConfigError("--gdb is QEMU's stub; Debian's Bochs has its own debugger instead "
                          "(run the configuration that --dry-run prints)")
    m.validate()
    return m, opts


def _machine_from_topology(ns, mem, explicit):
    """--topology: the Machine an hwloc description makes (tools/topology.py).
    It replaces the CPU and NUMA options; --mem, --numa-dist, --machine and
    --accel still apply."""
    import topology     # here, not at the top: topology imports this module
    t = topology.load(ns.topology)
    dist = None
    if ns.numa_dist is not None:
        dist = parse_dist(ns.numa_dist, len(t.nodes))
    m = t.to_machine(mem=mem, machine=ns.machine, accel=ns.accel, dist=dist)
    m.x2apic = ns.x2apic
    m.cpu_flags = ns.cpu_flags
    m.emulator = ns.emulator
    m.bochs_cpu = ns.bochs_cpu
    m.host_pages = ns.host_pages
    summary = f"topology {ns.topology!r}: {t.summary()}"
    if explicit:
        summary += f" (ignoring {', '.join(explicit)})"
    return m, summary


# -- QEMU -------------------------------------------------------------------------------
def kvm_usable():
    """True if /dev/kvm can be opened read-write (what QEMU needs for KVM)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def cpu_model(machine):
    accel = machine.resolved_accel()
    # -arch-capabilities: QEMU 7.2 under nested KVM aborts setting that MSR
    # (0x10a) on some hosts; Atoll never reads it.
    model = "host,-arch-capabilities" if accel == "kvm" else "max"
    if machine.x2apic == "on":
        model += ",+x2apic"
    elif machine.x2apic == "off":
        model += ",-x2apic"
    if machine.cpu_flags:
        model += "," + machine.cpu_flags.strip(",")
    return model


def qemu_command(machine, iso, gdb=None, cost=None):
    """The qemu-system-x86_64 argument list booting `iso` on `machine`;
    cost: a CostModel, to load the cost model plugin (TCG only)."""
    m = machine.validate()
    accel = m.resolved_accel()
    if cost is not None and accel != "tcg":
        raise ConfigError("the cost model is a TCG plugin: it needs --accel tcg (or auto)")
    smp = str(m.smp)
    if m.sockets is not None:
        smp += f",sockets={m.sockets},cores={m.cores},threads={m.threads}"
    share = ",share=on" if m.host_pages == "small" else ""
    machine_opt = f"{m.machine},accel={accel}" if cost is None else m.machine
    if not m.numa and share:
        machine_opt += ",memory-backend=ram"
    cmd = [QEMU,
           "-machine", machine_opt,
           "-cpu", cpu_model(m),
           "-smp", smp,
           "-m", fmt_size(m.mem)]
    if not m.numa and share:
        cmd += ["-object", f"memory-backend-ram,id=ram,size={fmt_size(m.mem)}{share}"]
    for i, node in enumerate(m.numa):
        spec = f"node,nodeid={i}"
        for r in node.cpu_ranges():
            spec += f",cpus={r}"
        if node.mem:
            cmd += ["-object", f"memory-backend-ram,id=m{i},size={fmt_size(node.mem)}{share}"]
            spec += f",memdev=m{i}"
        cmd += ["-numa", spec]
    if len(m.numa) > 1:
        for i in range(len(m.numa)):
            for j in range(len(m.numa)):
                if i != j:
                    cmd += ["-numa", f"dist,src={i},dst={j},val={m.dist[i][j]}"]
    # The console: one character device on stdio for the UART (COM1: GRUB,
    # the shell's input) and a debug console port (0xe9), which the CPU
    # driver writes its output to when it finds it: a UART byte costs QEMU
    # 7.2's TCG in proportion to the vCPUs (cpudriver/x86_64/serial.c). A
    # multiplexed device keeps the two in order; the UART, attached last,
    # has the input (docs/runner.md: Ctrl-A is the multiplexer's escape).
    cmd += ["-display", "none",
            "-chardev", "stdio,id=console,mux=on",
            "-serial", "none",
            "-device", "isa-debugcon,iobase=0xe9,chardev=console",
            "-device", "isa-serial,chardev=console",
            "-monitor", "none",
            "-no-reboot",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-cdrom", iso,
            "-boot", "d"]
    if gdb is not None:
        cmd += ["-gdb", f"tcp::{gdb}", "-S"]
    if cost is not None:
        try:
            cmd += atoll_costmodel.qemu_options(m, cost)
        except atoll_costmodel.CostModelError as e:
            raise ConfigError(str(e)) from None
    return cmd


def exit_status(qemu_rc, console_seen=True):
    """QEMU's exit code -> (tools/run exit status, message or None).

    isa-debug-exit makes QEMU exit with (v << 1) | 1 for guest value v, so odd
    codes are guest statuses (0..127 survive the 8-bit exit code). QEMU
    exiting 0 means the guest stopped without reporting (a triple fault with
    -no-reboot, an ACPI power-off, GRUB's halt). QEMU's own errors are exit 1,
    the same code as guest status 0: they are told apart by the console, as
    GRUB always prints before a guest can report."""
    if qemu_rc is None:
        return EXIT_USAGE, "QEMU did not run"
    if qemu_rc < 0:
        sig = -qemu_rc
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return 128 + sig, f"QEMU was killed by {name}"
    if qemu_rc == 0:
        return EXIT_NO_STATUS, ("guest ended without reporting a status (QEMU exited 0: "
                                "a triple fault, a reset or a power-off without isa-debug-exit)")
    if qemu_rc & 1:
        if qemu_rc == 1 and not console_seen:
            return EXIT_USAGE, "QEMU failed to start"
        return qemu_rc >> 1, None
    return EXIT_USAGE, f"QEMU failed (exit {qemu_rc})"


def parse_events(text):
    """Console text -> (events, malformed). events: the JSON objects of lines
    `@atoll {...}`, in order. malformed: the lines that carry the prefix but
    no single valid JSON object (bad JSON, not an object, or the prefix in
    the middle of a line, as when output from two cores interleaves)."""
    events, malformed = [], []
    for line in text.splitlines():
        line = line.replace("\r", "")
        body = line.lstrip()
        if body.startswith(EVENT_PREFIX):
            try:
                obj = json.loads(body[len(EVENT_PREFIX):])
            except ValueError:
                malformed.append(line)
                continue
            if isinstance(obj, dict):
                events.append(obj)
            else:
                malformed.append(line)
        elif EVENT_PREFIX + "{" in line:
            malformed.append(line)
    return events, malformed


@dataclasses.dataclass
class BootResult:
    status: int                 # tools/run's exit status: the guest's status, or 3/124/2/...
    console: str                # the whole console, \r removed
    events: List[dict]
    wall_s: float
    timed_out: bool
    malformed: List[str] = dataclasses.field(default_factory=list)
    message: Optional[str] = None   # why status is not the guest's own, if so
    qemu_rc: Optional[int] = None
    stderr: str = ""            # QEMU's own messages
    command: List[str] = dataclasses.field(default_factory=list)
    iso: str = ""

    def events_named(self, name):
        return [e for e in self.events if e.get("event") == name]


def _set_pdeathsig():
    # QEMU dies with its parent (a killed test worker must not leave VMs running).
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)    # PR_SET_PDEATHSIG
    except Exception:
        pass


def image_for(machine, cache_dir=None):
    """The (cached) ISO for this machine's kernel, modules and command line."""
    try:
        return atoll_image.cached_iso(machine.kernel_path, machine.modules, machine.cmdline,
                                      cache_dir=cache_dir)
    except atoll_image.ImageError as e:
        raise ConfigError(str(e)) from None


def boot(machine, timeout=120, log=None, echo=False, iso=None, gdb=None, cache_dir=None,
         err=None, shell_commands=None, cost=None):
    """Boot `machine` (building its ISO through the image cache unless `iso`
    is given), wait for QEMU to exit or `timeout` seconds (None: no limit),
    and return a BootResult. echo: stream the console to sys.stdout line by
    line (and QEMU's stderr to `err`, default sys.stderr). log: a file path
    that gets a copy of the console. Raises ConfigError for bad machines or
    missing files. shell_commands: lines typed at the Atoll shell's prompts, one
    per prompt, then `poweroff`. cost: a CostModel (docs/costmodel.md)."""
    machine.validate()
    if machine.resolved_accel() == "kvm" and not kvm_usable():
        raise ConfigError("--accel kvm: /dev/kvm cannot be opened read-write "
                          "(no KVM here, or no permission); use --accel tcg or auto")
    if iso is None:
        iso = image_for(machine, cache_dir)
    elif not os.path.isfile(iso):
        raise ConfigError(f"ISO {iso!r} not found")
    if machine.emulator == "bochs":
        if gdb is not None or cost is not None:
            raise ConfigError("gdb and the cost model are QEMU's (Bochs has its own debugger)")
        return run_bochs(machine, iso, timeout=timeout, log=log, echo=echo, err=err,
                         shell_commands=shell_commands)
    cmd = qemu_command(machine, iso, gdb=gdb, cost=cost)
    if cost is not None:
        atoll_costmodel.prepare(cost)
    return run_qemu(cmd, timeout=timeout, log=log, echo=echo, err=err, iso=iso,
                    shell_commands=shell_commands)


def run_qemu(cmd, timeout=None, log=None, echo=False, err=None, iso="", shell_commands=None,
             interactive=False, console=None, emulator_out=None):
    """Run a QEMU command line whose serial console is on stdout (see boot()).
    shell_commands: type these at the shell's prompts, then `poweroff`.
    interactive: the guest reads this process's own stdin (a terminal).

    console: a listening socket that the emulator's serial port connects to
    (Bochs). Then the emulator's stdout and stderr go to the open file
    `emulator_out`, the guest's status is the one its `exit` event reports,
    and the emulator is stopped at that event (Bochs has no isa-debug-exit)."""
    err = err if err is not None else sys.stderr
    out = sys.stdout
    start = time.monotonic()
    typing = shell_commands is not None
    try:
        if console is not None:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=emulator_out,
                                    stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig)
        else:
            stdin = subprocess.PIPE if typing else (None if interactive else subprocess.DEVNULL)
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, preexec_fn=_set_pdeathsig)
    except OSError as e:
        res = BootResult(status=EXIT_USAGE, console="", events=[], wall_s=0.0, timed_out=False,
                         message=f"cannot run {cmd[0]}: {e.strerror} "
                                 "(install it with tools/install-deps)",
                         command=list(cmd), iso=iso)
        return res
    logf = open(log, "w", encoding="utf-8", errors="replace") if log else None
    lines, errbuf = [], []
    if console is None:
        partial = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
        open_fds = set(partial)
        outfd = proc.stdout.fileno()
    else:
        partial, open_fds, outfd = {}, {console.fileno()}, None
    conn = None                 # the accepted console connection (Bochs)
    stdin_fd = None             # our terminal, forwarded to `conn` (Bochs, interactive)
    saved_tty = None
    exit_event = []             # the status of the guest's `exit` event (Bochs)
    timed_out = False
    deadline = None if timeout is None else start + timeout
    MAX_LINE = 64 * 1024
    to_type = list(shell_commands or [])
    if typing and not (to_type and to_type[-1].split()[:1] == ["poweroff"]):
        to_type.append("poweroff")
    tail = [b""]    # the end of the console so far, to find prompts split across reads

    def send(data):
        if conn is not None:
            conn.sendall(data)
        else:
            proc.stdin.write(data)
            proc.stdin.flush()

    def type_at_prompts(data):
        """Type the next line for every shell prompt in `data`. Prompts are
        counted in the byte stream, not by line: output from other cores may
        land on the prompt's line."""
        seen = tail[0] + data
        count = seen.count(SHELL_PROMPT)
        tail[0] = seen[-(len(SHELL_PROMPT) - 1):]
        for _ in range(count):
            if not to_type:
                return
            line = to_type.pop(0)
            try:
                send(line.encode() + b"\r")
            except OSError:
                to_type.clear()

    def emit(fd, raw):
        text = raw.decode("utf-8", errors="replace").replace("\r", "")
        if fd == outfd:
            lines.append(text)
            if echo:
                out.write(text + "\n")
                out.flush()
            if logf:
                logf.write(text + "\n")
                logf.flush()
            if console is not None and not exit_event:
                status = _exit_event_status(text)
                if status is not None:
                    exit_event.append(status)
        else:
            errbuf.append(text)
            if echo:
                err.write(text + "\n")
                err.flush()

    def feed(fd, data):
        buf = partial[fd] + data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            emit(fd, buf[:nl])
            buf = buf[nl + 1:]
        while len(buf) > MAX_LINE:          # a runaway line without newlines
            emit(fd, buf[:MAX_LINE])
            buf = buf[MAX_LINE:]
        partial[fd] = buf

    try:
        while open_fds:
            wait = 0.25
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 and not timed_out:
                    timed_out = True
                    _kill(proc)
                    deadline = None
                    continue
                wait = max(0.0, min(wait, left))
            ready, _, _ = select.select(list(open_fds), [], [], wait)
            for fd in ready:
                if console is not None and fd == console.fileno():
                    conn, _ = console.accept()
                    open_fds.discard(fd)
                    outfd = conn.fileno()
                    partial[outfd] = b""
                    open_fds.add(outfd)
                    if interactive:
                        stdin_fd, saved_tty = sys.stdin.fileno(), _terminal_raw(sys.stdin.fileno())
                        open_fds.add(stdin_fd)
                    continue
                if fd == stdin_fd:
                    data = os.read(fd, 4096)
                    if not data:
                        open_fds.discard(fd)
                    else:
                        try:
                            conn.sendall(data)
                        except OSError:
                            open_fds.discard(fd)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    open_fds.discard(fd)
                    continue
                feed(fd, data)
                if typing and fd == outfd:
                    type_at_prompts(data)
            if exit_event:
                _kill(proc)         # the guest is done; Bochs would idle on
                break
            if not ready and proc.poll() is not None and not timed_out:
                # QEMU is gone but a child holds the pipes open: stop waiting.
                break
            if stdin_fd is not None and open_fds == {stdin_fd}:
                break               # the console closed: the emulator is going
        for fd, rest in partial.items():
            if rest:
                emit(fd, rest)
        rc = proc.wait()
    except BaseException:
        _kill(proc)
        raise
    finally:
        if saved_tty is not None:
            _terminal_restore(stdin_fd, saved_tty)
        if console is None:
            proc.stdout.close()
            proc.stderr.close()
        if conn is not None:
            conn.close()
        if proc.stdin:
            proc.stdin.close()
        if logf:
            logf.close()
    wall = time.monotonic() - start
    console_text = "\n".join(lines) + ("\n" if lines else "")
    events, malformed = parse_events(console_text)
    stderr_text = "\n".join(errbuf)
    if timed_out:
        status, message = EXIT_TIMEOUT, f"timed out after {timeout:g} s: {_emulator_name(cmd)} killed"
    elif console is not None:
        if exit_event:
            status, message = exit_event[0], None
        elif conn is None:
            status, message = EXIT_USAGE, f"{_emulator_name(cmd)} failed to start"
        else:
            status, message = EXIT_NO_STATUS, (f"guest ended without reporting a status "
                                               f"({_emulator_name(cmd)} exited {rc})")
    else:
        status, message = exit_status(rc, console_seen=bool(console_text.strip()))
        if status == EXIT_USAGE and stderr_text and message:
            message += ":\n" + stderr_text
    return BootResult(status=status, console=console_text, events=events, wall_s=wall,
                      timed_out=timed_out, malformed=malformed, message=message, qemu_rc=rc,
                      stderr=stderr_text, command=list(cmd), iso=iso)


_EXIT_EVENT = EVENT_PREFIX + '{"event":"exit"'


def _exit_event_status(line):
    """The status of a kernel `exit` event line (panic.c's machine_exit), else None."""
    body = line.lstrip()
    if not body.startswith(_EXIT_EVENT):
        return None
    try:
        status = json.loads(body[len(EVENT_PREFIX):]).get("status")
    except ValueError:
        return None
    return status if isinstance(status, int) and 0 <= status <= 127 else None


def _emulator_name(cmd):
    return "Bochs" if os.path.basename(cmd[0]).startswith("bochs") else "QEMU"


def _terminal_raw(fd):
    """Keys straight to the guest's shell (which echoes and edits): no line
    editing or echo here, Enter sends \\r; Ctrl-C still interrupts the runner.
    Returns the settings to restore, or None when fd is not a terminal."""
    import termios
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return None
    new = list(saved)
    new[0] &= ~(termios.ICRNL | termios.IXON)
    new[3] &= ~(termios.ICANON | termios.ECHO | termios.IEXTEN)
    new[6] = list(saved[6])
    new[6][termios.VMIN], new[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    return saved


def _terminal_restore(fd, saved):
    import termios
    try:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
    except termios.error:
        pass


def run_bochs(machine, iso, timeout=None, log=None, echo=False, err=None, shell_commands=None,
              interactive=False):
    """Boot `iso` on a (validated) Bochs machine; like run_qemu. Bochs's
    configuration, debugger commands and log live in a temporary folder,
    removed afterwards; the log's last panic, if any, goes into the message."""
    import shutil
    import socket
    import tempfile
    tmp = tempfile.mkdtemp(prefix="atoll-bochs-")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        rc_path, dbg_path = os.path.join(tmp, "bochsrc"), os.path.join(tmp, "debugger")
        log_path = os.path.join(tmp, "bochs.log")
        with open(rc_path, "w") as f:
            f.write(atoll_bochs.config(machine, machine.mem // MiB, os.path.abspath(iso),
                                       listener.getsockname()[1], log_path))
        with open(dbg_path, "w") as f:
            f.write(atoll_bochs.DEBUGGER_COMMANDS)
        cmd = atoll_bochs.command(rc_path, dbg_path)
        with open(os.path.join(tmp, "bochs.out"), "w+b") as bout:
            r = run_qemu(cmd, timeout=timeout, log=log, echo=echo, err=err, iso=iso,
                         shell_commands=shell_commands, interactive=interactive,
                         console=listener, emulator_out=bout)
            bout.seek(0)
            r.stderr = bout.read().decode("utf-8", errors="replace")
        if r.message and not r.timed_out:
            why = atoll_bochs.last_panic(log_path) or atoll_bochs.exit_message(r.stderr)
            if why:
                r.message += ":\n" + why
        return r
    finally:
        listener.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _kill(proc):
    if proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except OSError:
        pass


# -- tools/run ------------------------------------------------------------------------
def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        machine, opts = parse_args(argv)
        return _main(machine, opts)
    except ConfigError as e:
        print(f"run: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, UnicodeError) as e:
        # Never a traceback: a file we cannot read or write, text we cannot
        # encode. Say what, and stop like any other bad option.
        print(f"run: error: {e}", file=sys.stderr)
        return EXIT_USAGE


def _main(machine, opts):
    if opts.iso:
        iso = opts.iso
    elif opts.dry_run:
        try:
            iso = atoll_image.cached_iso_path(machine.kernel_path, machine.modules,
                                              machine.cmdline)
        except atoll_image.ImageError as e:
            print(f"run: note: {e}; the ISO path below is a placeholder", file=sys.stderr)
            iso = os.path.join(atoll_image.DEFAULT_CACHE_DIR, "IMAGE.iso")
        iso = os.path.relpath(iso) if iso.startswith(REPO + os.sep) else iso
    else:
        iso = None
    if opts.topology_summary:
        print(f"run: {opts.topology_summary}", file=sys.stderr)
    if opts.dry_run:
        if machine.emulator == "bochs":
            print(bochs_dry_run(machine, iso), end="")
        else:
            print(shlex.join(qemu_command(machine, iso, gdb=opts.gdb, cost=opts.cost)))
        return 0
    if iso is None:
        iso = image_for(machine)
    elif not os.path.isfile(iso):
        raise ConfigError(f"ISO {iso!r} not found")
    if machine.emulator == "bochs":
        return _main_bochs(machine, opts, iso)
    if machine.resolved_accel() == "kvm" and not kvm_usable():
        raise ConfigError("--accel kvm: /dev/kvm cannot be opened read-write "
                          "(no KVM here, or no permission); use --accel tcg or auto")
    cmd = qemu_command(machine, iso, gdb=opts.gdb, cost=opts.cost)
    if opts.cost:
        atoll_costmodel.prepare(opts.cost)     # never report an earlier run's counts
    if opts.print_cmd:
        print(shlex.join(cmd), file=sys.stderr)
    if opts.gdb is not None:
        kernel = os.path.relpath(machine.kernel_path)
        print(f"run: QEMU waits for gdb on port {opts.gdb}; in another terminal:\n"
              f"  gdb {shlex.quote(kernel)} -ex 'target remote :{opts.gdb}'",
              file=sys.stderr, flush=True)
    try:
        r = run_qemu(cmd, timeout=opts.timeout, log=opts.log, echo=not opts.quiet, iso=iso,
                     shell_commands=opts.shell_commands or None,
                     interactive=not opts.shell_commands and sys.stdin.isatty())
    except KeyboardInterrupt:
        print("\nrun: interrupted; QEMU stopped", file=sys.stderr)
        return 130
    return _report(r, opts)


def _report(r, opts):
    if r.message:
        print(f"run: {r.message}", file=sys.stderr)
    elif r.status != 0:
        print(f"run: guest reported status {r.status}", file=sys.stderr)
    if opts.cost:
        _cost_summary(opts.cost.out)
    return r.status


def _cost_summary(path):
    """After a --cost-model run: its regions, per operation, on stderr."""
    shown = os.path.relpath(path) if path.startswith(REPO + os.sep) else path
    if not os.path.exists(path):
        print(f"run: the cost model wrote nothing ({shown})", file=sys.stderr)
        return
    counts = atoll_costmodel.load(path)
    print(f"run: cost model counts in {shown}:", file=sys.stderr)
    for line in atoll_costmodel.summary(counts):
        print("  " + line, file=sys.stderr)


def bochs_dry_run(machine, iso):
    """--dry-run under Bochs: a configuration to run by hand (the console on
    Bochs's stdout, mixed with its debugger's prompt) and how."""
    text = atoll_bochs.config(machine, machine.mem // MiB, iso, None, "bochs.log")
    return ("# Bochs configuration for this machine. Save it as FILE, run `bochs -q -f FILE`,\n"
            "# and type c at the debugger's prompt. tools/run connects the console to a socket instead.\n"
            + text)


def _main_bochs(machine, opts, iso):
    if not atoll_bochs.installed():
        raise ConfigError("--emulator bochs: Bochs is not installed (tools/install-deps)")
    if opts.print_cmd:
        print(bochs_dry_run(machine, iso), end="", file=sys.stderr)
    try:
        r = run_bochs(machine, iso, timeout=opts.timeout, log=opts.log, echo=not opts.quiet,
                      shell_commands=opts.shell_commands or None,
                      interactive=not opts.shell_commands and sys.stdin.isatty())
    except KeyboardInterrupt:
        print("\nrun: interrupted; Bochs stopped", file=sys.stderr)
        return 130
    return _report(r, opts)
