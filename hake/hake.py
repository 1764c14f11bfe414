#!/usr/bin/env python3
"""hake: turns the per-folder build descriptions (Hakefile.py) into make rules.

Each Hakefile.py is plain Python run with a few declaration functions in scope
(kernel, host_test, host_program, image) and `here`, its folder relative to the
source root. hake writes one makefile, build/rules.mk, with every rule
out-of-tree under build/ and header dependencies tracked through gcc's -MMD.
The top-level Makefile regenerates it whenever a Hakefile or hake itself
changes. Standard library only.

    python3 hake/hake.py SRCROOT BUILDDIR
"""
import os
import sys

# Flags for code that runs in the guest: freestanding C11, no red zone (the
# CPU takes interrupts on the kernel stack), no SSE (the kernel never saves
# FPU state), frame pointers for the backtrace, kernel code model (linked in
# the top 2 GiB).
GUEST_CFLAGS = [
    "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror",
    "-ffreestanding", "-fno-builtin", "-nostdinc", "-fno-stack-protector", "-fno-pic", "-fno-pie",
    "-mno-red-zone", "-mcmodel=kernel", "-mgeneral-regs-only", "-mno-sse", "-mno-mmx",
    "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
    "-fno-strict-aliasing",
]
# gcc's own freestanding headers (stdint.h, stddef.h, stdbool.h, stdarg.h)
# are allowed; the host libc's are not.
GUEST_ASFLAGS = ["-g", "-Wa,--noexecstack"]
HOST_CFLAGS = [
    "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-DATOLL_HOST",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
]
HOST_LDFLAGS = ["-fsanitize=address,undefined"]


class Build:
    def __init__(self, src, out):
        self.src = src
        self.out = out
        self.rules = []       # makefile text chunks
        self.all = []         # default targets
        self.host_tests = []  # binaries run by the test suite
        self.objects = set()  # objects with a rule already

    # -- helpers -------------------------------------------------------------
    def obj(self, kind, here, src, cflags, incs):
        """Rule for one object; returns its path. kind: guest or host."""
        path = os.path.normpath(os.path.join(here, src))
        o = os.path.join(self.out, kind, os.path.splitext(path)[0] + ".o")
        if o in self.objects:
            return o
        self.objects.add(o)
        incflags = " ".join("-I" + i for i in incs)
        if kind == "guest":
            if path.endswith(".S"):
                cmd = f"$(GUEST_CC) $(GUEST_ASFLAGS) {incflags} {cflags} -MMD -MP -c $< -o $@"
            else:
                cmd = f"$(GUEST_CC) $(GUEST_CFLAGS) {incflags} {cflags} -MMD -MP -c $< -o $@"
        else:
            cmd = f"$(HOST_CC) $(HOST_CFLAGS) {incflags} {cflags} -MMD -MP -c $< -o $@"
        self.rules.append(
            f"{o}: {path}\n\t@mkdir -p $(@D)\n\t@echo '  CC  {kind:5} {path}'\n\t@{cmd}\n"
            f"-include {o[:-2]}.d\n")
        return o

    # -- declarations available to Hakefiles ---------------------------------
    def kernel(self, here, name, srcs, ldscript, includes=(), cflags=""):
        """A kernel ELF, linked twice: the second link embeds the symbol table
        made from the first, for symbolized backtraces. The table sits after
        all code, so code addresses are the same in both links; the final
        link is checked for that."""
        incs = ["include", here] + [os.path.normpath(os.path.join(here, i)) for i in includes]
        objs = [self.obj("guest", here, s, cflags, incs) for s in srcs]
        d = os.path.join(self.out, here)
        lds = os.path.join(here, ldscript)
        elf = os.path.join(d, name + ".elf")
        st1 = os.path.join(d, name + ".stage1.elf")
        syms_s = os.path.join(d, name + ".ksyms.S")
        syms_o = os.path.join(d, name + ".ksyms.o")
        empty_o = os.path.join(d, name + ".ksyms-empty.o")
        gen = "hake/ksyms.py"
        objstr = " ".join(objs)
        link = "$(GUEST_LD) -n -z max-page-size=0x1000 -z noexecstack --no-warn-rwx-segments -T " + lds
        self.rules.append(f"""
{empty_o}: {gen}
\t@mkdir -p $(@D)
\t@$(PYTHON) {gen} --empty > {syms_s}.empty.S
\t@$(GUEST_CC) $(GUEST_ASFLAGS) -c {syms_s}.empty.S -o $@
{st1}: {objstr} {empty_o} {lds}
\t@echo '  LD  guest {st1}'
\t@{link} -o $@ {objstr} {empty_o}
{syms_o}: {st1} {gen}
\t@$(GUEST_NM) -n {st1} | $(PYTHON) {gen} > {syms_s}
\t@$(GUEST_CC) $(GUEST_ASFLAGS) -c {syms_s} -o $@
{elf}: {objstr} {syms_o} {lds}
\t@echo '  LD  guest {elf}'
\t@{link} -o $@ {objstr} {syms_o}
\t@$(PYTHON) {gen} --check {st1} {elf}
""")
        self.all.append(elf)
        return elf

    def host_program(self, here, name, srcs, includes=(), cflags="", test=False):
        incs = ["include", here] + [os.path.normpath(os.path.join(here, i)) for i in includes]
        objs = [self.obj("host", here, s, cflags, incs) for s in srcs]
        exe = os.path.join(self.out, "host", here, name)
        self.rules.append(
            f"{exe}: {' '.join(objs)}\n\t@mkdir -p $(@D)\n\t@echo '  LD  host  {exe}'\n"
            f"\t@$(HOST_CC) $(HOST_LDFLAGS) -o $@ {' '.join(objs)}\n")
        self.all.append(exe)
        if test:
            self.host_tests.append(exe)
        return exe

    def host_test(self, here, name, srcs, includes=(), cflags=""):
        """A host unit-test binary: exits 0 when every check passed. The test
        suite runs each one (tests/test_host_units.py)."""
        return self.host_program(here, name, srcs, includes, cflags, test=True)

    def image(self, here, name, kernel, modules=()):
        """A bootable GRUB ISO holding `kernel` and `modules` (paths of built
        files), made by tools/mkimage with the default kernel command line."""
        iso = os.path.join(self.out, name + ".iso")
        deps = " ".join([kernel] + list(modules))
        mods = " ".join("--module " + m for m in modules)
        self.rules.append(
            f"{iso}: {deps} tools/mkimage tools/atoll_image.py\n\t@echo '  ISO       {iso}'\n"
            f"\t@$(PYTHON) tools/mkimage --kernel {kernel} {mods} -o $@\n")
        self.all.append(iso)
        return iso

    # -- output ----------------------------------------------------------------
    def write(self, hakefiles):
        head = f"""# Generated by hake/hake.py from {len(hakefiles)} Hakefile.py files. Do not edit.
GUEST_CC ?= gcc
GUEST_LD ?= ld
GUEST_NM ?= nm
HOST_CC ?= gcc
PYTHON ?= python3
GUEST_CFLAGS := {' '.join(GUEST_CFLAGS)} -isystem $(shell $(GUEST_CC) -print-file-name=include)
GUEST_ASFLAGS := {' '.join(GUEST_ASFLAGS)}
HOST_CFLAGS := {' '.join(HOST_CFLAGS)}
HOST_LDFLAGS := {' '.join(HOST_LDFLAGS)}
.SUFFIXES:
.DELETE_ON_ERROR:
.PHONY: all
all: {' '.join(self.all)}
"""
        listing = "".join(t + "\n" for t in self.host_tests)
        os.makedirs(self.out, exist_ok=True)
        tmp = os.path.join(self.out, "rules.mk.tmp")
        with open(tmp, "w") as f:
            f.write(head + "\n".join(self.rules))
        os.replace(tmp, os.path.join(self.out, "rules.mk"))
        with open(os.path.join(self.out, "host-tests.txt"), "w") as f:
            f.write(listing)


def find_hakefiles(src):
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "build"
                         and d != "__pycache__")
        if "Hakefile.py" in files:
            found.append(os.path.relpath(os.path.join(root, "Hakefile.py"), src))
    return sorted(found)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    os.chdir(src)
    b = Build(src, out)
    hakefiles = find_hakefiles(".")
    for hf in hakefiles:
        here = os.path.dirname(hf) or "."
        scope = {
            "here": here,
            "kernel": lambda *a, **k: b.kernel(here, *a, **k),
            "host_test": lambda *a, **k: b.host_test(here, *a, **k),
            "host_program": lambda *a, **k: b.host_program(here, *a, **k),
            "image": lambda *a, **k: b.image(here, *a, **k),
            "build_dir": out,
        }
        with open(hf) as f:
            code = compile(f.read(), hf, "exec")
        try:
            exec(code, scope)
        except Exception as e:  # name the Hakefile, not hake's internals
            sys.exit(f"hake: {hf}: {type(e).__name__}: {e}")
    b.write(hakefiles)


if __name__ == "__main__":
    main()
