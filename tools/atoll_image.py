"""Bootable GRUB2 (BIOS) ISO images for Atoll, made with grub-mkrescue.

The ISO holds the kernel as /boot/atoll.elf, one file per module as
/boot/<basename>, and a grub.cfg that boots at once on the serial console:

    set timeout=0
    serial --unit=0 --speed=115200
    terminfo serial dumb
    terminal_input serial; terminal_output serial
    menuentry 'Atoll' {
      multiboot2 /boot/atoll.elf <kernel command line>
      module2 /boot/<basename> <name> <args>      (one line per module)
      boot
    }

`terminfo serial dumb` keeps GRUB from writing VT100 escape sequences (screen
clears, cursor moves) into the console that the runner streams. When GRUB
cannot load a file it prints an `@atoll {"event":"grub_error",...}` line and
powers the machine off, so a broken image ends in a second instead of sitting
in GRUB's menu.

Command lines are split into words on whitespace and every word is quoted for
GRUB's script parser, so `$`, `;`, `#`, `{` and quotes reach the kernel
literally. GRUB itself rebuilds the multiboot2 command line from those words:
it joins them with single spaces and puts a backslash before every `\\`, `'`
and `"` (grub_create_loader_cmdline). Plain words arrive byte for byte.

Library use (standard library only):

    from atoll_image import build_iso, cached_iso, Module
    iso = cached_iso("build/cpudriver/atoll.elf", [Module.parse("build/usr/init=-v")],
                     "poweroff")

cached_iso() names the image by a hash of everything that goes into it (kernel
bytes, module bytes, names and arguments, command line), so tests that boot
with different command lines each get their own image once and share it
afterwards; images are written to a temporary file and renamed into place, so
parallel test workers never see a half-written ISO.
"""
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(REPO, "build", "images")
GRUB_PLATFORM_DIR = "/usr/lib/grub/i386-pc"
KERNEL_ISO_PATH = "/boot/atoll.elf"

# GRUB modules copied onto the ISO (grub-mkrescue adds their dependencies).
# multiboot2: the loader; normal: runs grub.cfg; serial, terminal, terminfo:
# the serial console; echo, test, halt: the error path in grub.cfg. The core
# image already holds what is needed to read the CD (biosdisk, iso9660).
GRUB_MODULES = ("multiboot2", "normal", "serial", "terminal", "terminfo", "echo", "test", "halt")

# Bump when the image layout or grub.cfg format changes: old cache entries
# then simply stop being used.
IMAGE_FORMAT = 3   # 2: programs go on the image without debugging sections; 3: the kernel too

# Drop cached images unused for this long, once the cache holds more than
# CACHE_KEEP of them (checked whenever a new image is built).
CACHE_KEEP = 200
CACHE_MAX_AGE_S = 24 * 3600


class ImageError(Exception):
    """A bad input (missing file, clashing module names) or grub-mkrescue failing."""


@dataclasses.dataclass(frozen=True)
class Module:
    """One multiboot2 module: the file at `path`, copied to /boot/<basename>.
    The module's command line is `name` followed by `args` (name defaults to
    the file's basename)."""
    path: str
    args: str = ""
    name: str = ""

    @classmethod
    def parse(cls, spec):
        """'PATH' or 'PATH=ARGS' (split at the first '=')."""
        path, sep, args = spec.partition("=")
        if not path:
            raise ImageError(f"bad module {spec!r}: expected PATH or PATH=ARGS")
        return cls(path=path, args=args if sep else "")

    @property
    def basename(self):
        return os.path.basename(os.path.normpath(self.path))

    @property
    def module_name(self):
        return self.name or self.basename

    @property
    def iso_path(self):
        return "/boot/" + self.basename


def as_module(m):
    """Accepts a Module, a 'PATH[=ARGS]' string or a (path, args) pair."""
    if isinstance(m, Module):
        return m
    if isinstance(m, str):
        return Module.parse(m)
    if isinstance(m, (tuple, list)) and len(m) == 2:
        return Module(path=str(m[0]), args=str(m[1] or ""))
    raise ImageError(f"bad module {m!r}: expected Module, 'PATH[=ARGS]' or (path, args)")


# -- grub.cfg -----------------------------------------------------------------
_SAFE_WORD = re.compile(r"[A-Za-z0-9_./,:=+@%^-]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def split_words(cmdline):
    """The words of a command line: split on whitespace, no shell quoting."""
    if cmdline is None:
        return []
    if _CONTROL.search(cmdline):
        raise ImageError(f"command line {cmdline!r} contains a control character")
    return cmdline.split()


def grub_quote(word):
    """One word, quoted so GRUB's script parser passes it through unchanged.
    Safe words stay bare; anything else goes in single quotes (which GRUB
    treats literally), with a single quote itself written as '\\''."""
    if word == "":
        return "''"
    if _SAFE_WORD.match(word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def _grub_line(words):
    return " ".join(grub_quote(w) for w in words)


def _json_str(s):
    # JSON string literal for the error events; grub_quote protects it from GRUB.
    return json.dumps(s)


def grub_cfg(cmdline="", modules=()):
    """The text of grub.cfg for a kernel command line and a list of modules."""
    modules = [as_module(m) for m in modules]
    _check_module_names(modules)
    kernel_words = split_words(cmdline)
    lines = [
        "# Generated by tools/atoll_image.py. Boots Atoll at once on the serial console.",
        "set timeout=0",
        "serial --unit=0 --speed=115200",
        "terminfo serial dumb",
        "terminal_input serial; terminal_output serial",
        "menuentry 'Atoll' {",
        "  multiboot2 " + _grub_line([KERNEL_ISO_PATH] + kernel_words),
        _on_error("multiboot2", KERNEL_ISO_PATH),
    ]
    for m in modules:
        words = [m.iso_path, m.module_name] + split_words(m.args)
        lines.append("  module2 " + _grub_line(words))
        lines.append(_on_error("module2", m.iso_path))
    lines += [
        "  boot",
        _on_error("boot", KERNEL_ISO_PATH, always=True),
        "}",
        "",
    ]
    return "\n".join(lines)


def _on_error(command, path, always=False):
    event = '@atoll {"event":"grub_error","command":%s,"file":%s}' % (
        _json_str(command), _json_str(path))
    action = "echo " + grub_quote(event) + "; halt"
    if always:
        return "  " + action
    return '  if [ "$?" != 0 ]; then ' + action + "; fi"


def _check_module_names(modules):
    seen = {}
    for m in modules:
        b = m.basename
        if b in ("", ".", "..", "grub", "atoll.elf"):
            raise ImageError(f"module {m.path!r}: the name {b!r} is reserved on the image")
        prev = seen.get(b)
        if prev is not None and os.path.realpath(prev) != os.path.realpath(m.path):
            raise ImageError(f"modules {prev!r} and {m.path!r} would both be /boot/{b} "
                             "on the image; rename one")
        seen[b] = m.path


# -- building -----------------------------------------------------------------
def _check_inputs(kernel, modules):
    if not os.path.isfile(kernel):
        raise ImageError(f"kernel {kernel!r} not found (run `make` first?)")
    for m in modules:
        if not os.path.isfile(m.path):
            raise ImageError(f"module {m.path!r} not found")


def mkrescue_command(root, out):
    """The grub-mkrescue command that turns the folder `root` into `out`."""
    return [
        "grub-mkrescue",
        "-d", GRUB_PLATFORM_DIR,          # BIOS only, even if GRUB EFI files are installed
        "--compress=gz",                  # GRUB's own modules, gzipped: ~170 KiB less
        "--install-modules=" + " ".join(GRUB_MODULES),
        "--locales=", "--fonts=", "--themes=",
        "-o", out, root,
        # xorriso's default 300 KiB of padding is mostly waste, but some is
        # needed: GRUB reads the CD in 32 KiB blocks and fails on a read
        # past the end ("error: incompatible license" on the last module).
        "--", "-padding", "64k",
    ]


def _copy_module(src, dst):
    """Put a module or the kernel on the image. An ELF goes without its
    debugging sections (its symbols stay): GRUB loads every module into the
    guest's memory, and the kernel's sections too (for the multiboot2 ELF
    sections tag), and the DWARF is most of each file (a boot with 8 MiB of
    RAM ran out of memory in GRUB, and every byte GRUB reads through the
    BIOS costs time under TCG: the kernel is 547 KiB with it, 132 KiB
    without). The build keeps the full ELF for gdb."""
    with open(src, "rb") as f:
        is_elf = f.read(4) == b"\x7fELF"
    if is_elf and shutil.which("objcopy"):
        p = subprocess.run(["objcopy", "--strip-debug", src, dst], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode == 0:
            return
    shutil.copyfile(src, dst)


def build_iso(kernel, modules=(), cmdline="", out="atoll.iso"):
    """Make the ISO `out` (written atomically); returns `out`."""
    modules = [as_module(m) for m in modules]
    cfg = grub_cfg(cmdline, modules)
    _check_inputs(kernel, modules)
    if shutil.which("grub-mkrescue") is None:
        raise ImageError("grub-mkrescue not found: run tools/install-deps "
                         "(Debian packages grub-pc-bin grub-common xorriso mtools)")
    outdir = os.path.dirname(os.path.abspath(out))
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".mkimage-", dir=outdir)
    try:
        root = os.path.join(work, "root")
        os.makedirs(os.path.join(root, "boot", "grub"))
        _copy_module(kernel, os.path.join(root, "boot", "atoll.elf"))
        for m in modules:
            dst = os.path.join(root, "boot", m.basename)
            if not os.path.exists(dst):
                _copy_module(m.path, dst)
        with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as f:
            f.write(cfg)
        tmp_iso = os.path.join(work, "out.iso")
        p = subprocess.run(mkrescue_command(root, tmp_iso), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0 or not os.path.isfile(tmp_iso):
            text = p.stdout.decode(errors="replace")
            useful = "\n".join(l for l in text.splitlines() if "UPDATE" not in l)
            raise ImageError(f"grub-mkrescue failed (exit {p.returncode}):\n{useful}")
        os.chmod(tmp_iso, 0o644)
        os.replace(tmp_iso, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_key(kernel, modules=(), cmdline=""):
    """The cache key: a hash of the kernel, the modules and the command line
    (through the grub.cfg text, which holds module names and arguments)."""
    modules = [as_module(m) for m in modules]
    _check_inputs(kernel, modules)
    h = hashlib.sha256()
    h.update(f"atoll-image {IMAGE_FORMAT}\n".encode())
    h.update(grub_cfg(cmdline, modules).encode())
    h.update(f"kernel {_file_digest(kernel)}\n".encode())
    for m in modules:
        h.update(f"module {m.basename} {_file_digest(m.path)}\n".encode())
    return h.hexdigest()[:24]


def cached_iso_path(kernel, modules=(), cmdline="", cache_dir=None):
    """Where cached_iso() keeps the image for these inputs (may not exist yet)."""
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    return os.path.join(cache_dir, image_key(kernel, modules, cmdline) + ".iso")


def cached_iso(kernel, modules=(), cmdline="", cache_dir=None):
    """The ISO for these inputs, built only if no identical one is cached.
    Safe to call from many processes at once."""
    path = cached_iso_path(kernel, modules, cmdline, cache_dir)
    if os.path.isfile(path):
        try:
            os.utime(path)   # recently used: keep it when pruning
        except OSError:
            pass
        return path
    build_iso(kernel, modules, cmdline, path)
    _prune(os.path.dirname(path), keep=path)
    return path


def _prune(cache_dir, keep):
    try:
        names = [n for n in os.listdir(cache_dir) if n.endswith(".iso")]
    except OSError:
        return
    if len(names) <= CACHE_KEEP:
        return
    now = time.time()
    for n in names:
        p = os.path.join(cache_dir, n)
        if p == keep:
            continue
        try:
            if now - os.stat(p).st_mtime > CACHE_MAX_AGE_S:
                os.unlink(p)
        except OSError:
            pass


def read_iso_file(iso, path):
    """The bytes of one file inside an ISO (via xorriso); for tests and debugging."""
    work = tempfile.mkdtemp(prefix=".isoread-")
    try:
        dst = os.path.join(work, "f")
        p = subprocess.run(["xorriso", "-osirrox", "on", "-indev", iso, "-extract", path, dst],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if p.returncode != 0 or not os.path.isfile(dst):
            raise ImageError(f"cannot read {path} from {iso}:\n"
                             + p.stdout.decode(errors="replace"))
        with open(dst, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
