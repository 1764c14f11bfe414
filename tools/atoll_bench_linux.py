"""The Linux yardstick: Debian's own kernel booted in exactly the QEMU
machine tools/run gives Atoll, straight into the benchmark programs of
bench/linux/ from a small initramfs.

    progs = build_programs()                    # static binaries in build/bench/linux/
    initrd = build_initramfs(progs)             # cpio newc, written here in Python
    cmd = linux_command(machine, find_kernel(), initrd, kernel_cmdline(["pingpong"], {}))

The QEMU command is atoll_run.qemu_command()'s, with -cdrom/-boot replaced
by -kernel/-initrd/-append: same -machine, -cpu, -smp, -m, NUMA nodes and
distances, devices, -no-reboot and isa-debug-exit. The guest's /init
(bench/linux/init.c) exits QEMU through isa-debug-exit, so the exit status
means the same as for Atoll. Standard library only.
"""
import glob
import os
import re
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import atoll_run  # noqa: E402

REPO = atoll_run.REPO
SRC_DIR = os.path.join(REPO, "bench", "linux")
BUILD_DIR = os.path.join(REPO, "build", "bench", "linux")
CC = "gcc"
# include/: the cost model's markers (<atoll/costmodel.h>), shared with Atoll.
CFLAGS = ["-static", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread",
          "-I", os.path.join(REPO, "include")]
COMMON = ["bench.c"]
HEADERS = ["bench.h", os.path.join(REPO, "include", "atoll", "costmodel.h")]
# Program name -> its own sources (COMMON is linked into every one). /init
# runs /bin/NAME for each NAME in the kernel command line's bench= list.
PROGRAMS = {
    "init": ["init.c"],
    "boot": ["boot.c"],
    "pingpong": ["pingpong.c"],
    "unmap": ["unmap.c"],
    "local": ["local.c"],
    "store": ["store.c"],
    "mem": ["mem.c"],
}
# Kernel command line words before the benchmark words. panic=-1: a panic
# (e.g. /init dying) resets the machine at once, and -no-reboot turns the
# reset into QEMU exiting, so a broken guest never hangs the sweep.
BASE_APPEND = ["console=ttyS0", "panic=-1", "quiet"]
KERNEL_GLOB = "/boot/vmlinuz-*"
KERNEL_PACKAGE = "linux-image-amd64"


class LinuxError(Exception):
    """Building the programs or the initramfs failed, or no kernel: the reason."""


# -- programs ------------------------------------------------------------------------
def build_programs(out_dir=BUILD_DIR, src_dir=SRC_DIR, cc=CC, force=False):
    """Build the static benchmark programs (only those older than a source)
    into out_dir. Returns {name: path}. Raises LinuxError with gcc's output."""
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for name, srcs in PROGRAMS.items():
        paths = [os.path.join(src_dir, s) for s in srcs + COMMON]
        deps = paths + [os.path.join(src_dir, h) for h in HEADERS]
        exe = os.path.join(out_dir, name)
        if force or not os.path.exists(exe) or any(
                os.path.getmtime(d) > os.path.getmtime(exe) for d in deps):
            tmp = f"{exe}.tmp{os.getpid()}"    # points on one node may build at once
            cmd = [cc] + CFLAGS + ["-o", tmp] + paths
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as e:
                raise LinuxError(f"cannot run {cc}: {e.strerror}") from None
            if r.returncode != 0:
                raise LinuxError(f"building {name} failed:\n$ {' '.join(cmd)}\n"
                                 + r.stderr.strip())
            os.replace(tmp, exe)
        out[name] = exe
    return out


# -- initramfs -----------------------------------------------------------------------
def cpio_newc(entries):
    """A cpio archive in the kernel's "newc" format (SVR4 with no CRC).

    entries: (name, mode, data, rdev) tuples; name without a leading '/',
    mode with the file type bits (stat.S_IFREG | 0o755, stat.S_IFDIR | ...,
    stat.S_IFCHR | ...), data bytes (b"" for directories and devices), rdev
    (major, minor) for devices. Owner root, mtime 0: the same input gives
    the same bytes."""
    out = bytearray()

    def pad4():
        out.extend(b"\0" * (-len(out) % 4))

    def entry(ino, name, mode, data, rdev):
        nb = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(nb)
        pad4()
        out.extend(data)
        pad4()

    for ino, (name, mode, data, rdev) in enumerate(entries, start=1):
        name = name.lstrip("/")
        if not name or name == "TRAILER!!!":
            raise ValueError(f"bad cpio entry name {name!r}")
        entry(ino, name, mode, bytes(data or b""), tuple(rdev or (0, 0)))
    entry(0, "TRAILER!!!", 0, b"", (0, 0))
    return bytes(out)


def parse_cpio_newc(blob):
    """The entries of a newc archive as (name, mode, data, (rmaj, rmin)),
    without the trailer (for tests and checks)."""
    entries, off = [], 0
    while True:
        if blob[off:off + 6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {off}")
        f = [int(blob[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        off += 110
        name = blob[off:off + namesize - 1].decode()
        off += namesize
        off += -off % 4
        data = blob[off:off + size]
        off += size
        off += -off % 4
        if name == "TRAILER!!!":
            return entries
        entries.append((name, mode, data, (rmaj, rmin)))


def initramfs_entries(programs):
    """/init, /bin/NAME for every other program, and the mount points."""
    d = stat.S_IFDIR | 0o755
    x = stat.S_IFREG | 0o755
    entries = [("bin", d, b"", None), ("dev", d, b"", None), ("proc", d, b"", None),
               ("sys", d, b"", None), ("tmp", d | 0o1777, b"", None),
               ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1))]
    if "init" not in programs:
        raise LinuxError("the initramfs needs an init program")
    for name in sorted(programs):
        with open(programs[name], "rb") as f:
            data = f.read()
        entries.append(("init" if name == "init" else "bin/" + name, x, data, None))
    return entries


def build_initramfs(programs, out_path=None):
    """Write the initramfs (uncompressed newc cpio) if its bytes changed; returns its path."""
    out_path = out_path or os.path.join(BUILD_DIR, "initramfs.cpio")
    blob = cpio_newc(initramfs_entries(programs))
    try:
        with open(out_path, "rb") as f:
            if f.read() == blob:
                return out_path
    except OSError:
        pass
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    tmp = f"{out_path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, out_path)
    return out_path


# -- kernel and QEMU command -------------------------------------------------------------
def _version_key(path):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", os.path.basename(path))]


def find_kernel(pattern=KERNEL_GLOB):
    """The newest readable /boot/vmlinuz-*; raises LinuxError saying how to get one."""
    found = sorted(glob.glob(pattern), key=_version_key)
    if not found:
        raise LinuxError(f"no Linux kernel ({pattern}): install Debian's {KERNEL_PACKAGE} "
                         "with tools/install-deps --bench")
    k = found[-1]
    if not os.access(k, os.R_OK):
        raise LinuxError(f"{k} is not readable by this user")
    return k


def kernel_cmdline(benchmarks, options, extra=""):
    """The -append string: console, panic=-1, quiet, bench=A,B and one
    NAME.key=value word per option ({"pingpong": {"samples": 5}})."""
    for b in benchmarks:
        if not re.fullmatch(r"[a-z0-9_]+", b):
            raise LinuxError(f"bad benchmark name {b!r}")
    words = list(BASE_APPEND) + ["bench=" + ",".join(benchmarks)]
    for b in benchmarks:
        for k, v in sorted((options.get(b) or {}).items()):
            v = str(v)
            if not re.fullmatch(r"[A-Za-z0-9_]+", k) or not re.fullmatch(r"[A-Za-z0-9_,.:+-]+", v):
                raise LinuxError(f"bad option {b}.{k}={v!r}: use letters, digits and ,.:+-")
            words.append(f"{b}.{k}={v}")
    if extra:
        words += extra.split()
    return " ".join(words)


def linux_command(machine, kernel, initrd, append, cost=None):
    """qemu_command(machine, ...) with -kernel/-initrd/-append instead of the
    ISO; cost: a CostModel, to count with the cost model plugin."""
    placeholder = "@@ISO@@"
    cmd = atoll_run.qemu_command(machine, placeholder, cost=cost)
    out, i = [], 0
    while i < len(cmd):
        if cmd[i] in ("-cdrom", "-boot") and i + 1 < len(cmd):
            i += 2
            continue
        out.append(cmd[i])
        i += 1
    if any(placeholder in a for a in out):
        raise LinuxError("atoll_run.qemu_command no longer boots with -cdrom; update "
                         "linux_command()")
    return out + ["-kernel", kernel, "-initrd", initrd, "-append", append]
