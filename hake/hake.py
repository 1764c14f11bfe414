#!/usr/bin/env python3
"""hake: turns the per-folder build descriptions (Hakefile.py) into make rules.

Each Hakefile.py is plain Python run with a few declaration functions in scope
(kernel, user_library, user_program, host_test, host_program, host_plugin,
guest32_program, image, interface) and
`here`, its folder relative to the source root. hake writes one makefile, build/rules.mk, with every rule
out-of-tree under build/ and header dependencies tracked through gcc's -MMD.
The top-level Makefile regenerates it whenever a Hakefile or hake itself
changes. Standard library only.

    python3 hake/hake.py SRCROOT BUILDDIR
"""
import hashlib
import os
import shlex
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
# User domains: the same, but the small code model (they link at USER_MIN,
# 4 MiB, in include/atoll/abi/domain.h). -mgeneral-regs-only stays for now: the
# kernel does not save FPU/SSE state across context switches yet.
USER_CFLAGS = [f for f in GUEST_CFLAGS if f != "-mcmodel=kernel"] + ["-mcmodel=small", "-DATOLL_USER"]
# Every user program sees the shared interfaces and the user library's headers.
USER_INCLUDES = ["include", "lib/include"]
USER_LDSCRIPT = "lib/user.lds"
USER_LIB_DIR = "lib"          # build/lib/lib<name>.a
USER_PROG_DIR = "user"        # build/user/<name>.elf
# Headers tools/idlc generates from if/<name>.if: build/include/if/<name>_if.h,
# on the include path of every user and host object.
IDL_INCLUDE_DIR = "include"
# Object folders under build/ per kind of code.
OBJ_DIRS = {"guest": "guest", "user": "user/obj", "host": "host", "plugin": "plugin",
            "guest32": "guest32"}
# Bare 32-bit test guests that QEMU's multiboot loader starts with -kernel
# (it takes only 32-bit ELF): the guest flags for i386, no kernel code model.
GUEST32_CFLAGS = [f for f in GUEST_CFLAGS if f != "-mcmodel=kernel"] + ["-m32"]
HOST_CFLAGS = [
    "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-DATOLL_HOST",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
]
HOST_LDFLAGS = ["-fsanitize=address,undefined"]
# Shared objects QEMU loads (-plugin): position-independent, optimised, only
# qemu_plugin_* exported, and no sanitizer (ASan's runtime must be loaded
# before everything else, which a plugin of a QEMU built without it cannot
# arrange). Their logic is unit-tested with ASan and UBSan through host_test.
PLUGIN_CFLAGS = [
    "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-DATOLL_HOST",
    "-fPIC", "-fvisibility=hidden",
]
# Host code with threads that share memory (the URPC channel tests) builds
# with ThreadSanitizer instead: it cannot be combined with ASan.
SANITIZERS = {
    "address": ("-fsanitize=address,undefined", "-fsanitize=address,undefined"),
    "thread": ("-fsanitize=thread", "-fsanitize=thread"),
}


class Build:
    def __init__(self, src, out):
        self.src = src
        self.out = out
        self.rules = []       # makefile text chunks
        self.all = []         # default targets
        self.host_tests = []  # binaries run by the test suite
        self.objects = set()  # objects with a rule already
        self.targets = {}     # built file -> the declaration making it
        self.user_libs = {}   # user library name -> archive path
        self.images = []      # (iso, module paths), checked once all Hakefiles ran
        self.lib_uses = []    # (program, user library names), checked likewise
        self.idl_headers = [] # generated interface headers (interface())
        self.idl_include = os.path.join(out, IDL_INCLUDE_DIR)

    # -- helpers -------------------------------------------------------------
    def obj(self, kind, here, src, cflags, incs, sanitize="address"):
        """Rule for one object; returns its path. kind: guest, user or host;
        sanitize (host only): "address" (ASan+UBSan) or "thread" (TSan)."""
        path = os.path.normpath(os.path.join(here, src))
        stem = os.path.splitext(path)[0]
        if cflags:
            # The same source built with other flags (say, renamed symbols in
            # a host test) is another object, never a stale reuse.
            stem += "-" + hashlib.sha1(cflags.encode()).hexdigest()[:8]
        if kind == "host" and sanitize != "address":
            stem += "-" + sanitize
        o = os.path.join(self.out, OBJ_DIRS[kind], stem + ".o")
        if o in self.objects:
            return o
        self.objects.add(o)
        incflags = " ".join("-I" + i for i in incs)
        if kind == "plugin":
            cmd = f"$(HOST_CC) $(PLUGIN_CFLAGS) {incflags} {cflags} -MMD -MP -c $< -o $@"
        elif kind == "guest32":
            flags = "-m32 $(GUEST_ASFLAGS)" if path.endswith(".S") else "$(GUEST32_CFLAGS)"
            cmd = f"$(GUEST_CC) {flags} {incflags} {cflags} -MMD -MP -c $< -o $@"
        elif kind in ("guest", "user"):
            flags = "$(GUEST_ASFLAGS)" if path.endswith(".S") else (
                "$(GUEST_CFLAGS)" if kind == "guest" else "$(USER_CFLAGS)")
            cmd = f"$(GUEST_CC) {flags} {incflags} {cflags} -MMD -MP -c $< -o $@"
        else:
            san = "" if sanitize == "address" else (
                f"$(filter-out -fsanitize=%,$(HOST_CFLAGS)) {SANITIZERS[sanitize][0]}")
            flags = "$(HOST_CFLAGS)" if not san else san
            cc = "$(HOST_CC)"
            if path.endswith(".cpp"):
                # C++ (only the host benchmark's Boost harness): the same
                # flags but the language standard.
                cc, flags = "$(HOST_CXX)", f"$(filter-out -std=%,{flags}) -std=gnu++17"
            cmd = f"{cc} {flags} {incflags} {cflags} -MMD -MP -c $< -o $@"
        # Generated interface headers exist before the first compile (-MMD
        # tracks them from then on).
        order = " | $(IDL_HEADERS)" if kind != "guest" else ""
        self.rules.append(
            f"{o}: {path}{order}\n\t@mkdir -p $(@D)\n\t@echo '  CC  {kind:5} {path}'\n\t@{cmd}\n"
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
        self.target(elf, f"kernel({name!r}) in {here}")
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

    def target(self, path, what):
        """Record that `what` builds `path`; two declarations may not."""
        if path in self.targets:
            raise ValueError(f"{path} is built twice: by {self.targets[path]} and by {what}")
        self.targets[path] = what

    def user_includes(self, here, includes):
        return USER_INCLUDES + [self.idl_include, here] + [
            os.path.normpath(os.path.join(here, i)) for i in includes]

    def user_library(self, here, name, srcs, includes=(), cflags=""):
        """A static library for user domains, build/lib/lib<name>.a, built
        with the user flags. user_program links `atoll` (lib/) by default."""
        incs = self.user_includes(here, includes)
        objs = [self.obj("user", here, s, cflags, incs) for s in srcs]
        a = os.path.join(self.out, USER_LIB_DIR, f"lib{name}.a")
        self.target(a, f"user_library({name!r}) in {here}")
        self.user_libs[name] = a
        self.rules.append(
            f"{a}: {' '.join(objs)}\n\t@mkdir -p $(@D)\n\t@echo '  AR  user  {a}'\n"
            f"\t@rm -f $@\n\t@$(GUEST_AR) rcsD $@ {' '.join(objs)}\n")
        self.all.append(a)
        return a

    def user_program(self, here, name, srcs, includes=(), cflags="", libs=("atoll",), spawn_policy=False):
        """A user domain, build/user/<name>.elf: freestanding C compiled with
        the user flags, linked statically at USER_MIN by lib/user.lds with
        the user libraries `libs` (crt0's _start is the entry). Boot it by
        listing the path as a module of an image; the kernel finds it by the
        name without .elf. `spawn_policy`: link the memory service's client
        even if the program calls none of it, so that `+mem=WORD` at spawn
        places its heap (lib/start.c). Not by default: the client costs a
        domain about 170 KiB of its 4 MiB (hello's 3 MiB malloc then fails),
        and a program that uses <atoll/mem.h> has it anyway."""
        incs = self.user_includes(here, includes)
        objs = [self.obj("user", here, s, cflags, incs) for s in srcs]
        elf = os.path.join(self.out, USER_PROG_DIR, name + ".elf")
        self.target(elf, f"user_program({name!r}) in {here}")
        archives = [os.path.join(self.out, USER_LIB_DIR, f"lib{l}.a") for l in libs]
        objstr = " ".join(objs)
        libstr = " ".join(archives)
        undef = "-u mem_heap_place_word" if spawn_policy else ""
        self.rules.append(f"""
{elf}: {objstr} {libstr} {USER_LDSCRIPT}
\t@mkdir -p $(@D)
\t@echo '  LD  user  {elf}'
\t@$(GUEST_LD) -static -nostdlib -z max-page-size=0x1000 -z noexecstack -u _start {undef} -T {USER_LDSCRIPT} -o $@ {objstr} --start-group {libstr} --end-group
""")
        self.all.append(elf)
        self.lib_uses.append((elf, libs))
        return elf

    def host_program(self, here, name, srcs, includes=(), cflags="", test=False, sanitize="address",
                     libs=""):
        """A host executable under build/host/<here>/. sanitize: "address"
        (ASan+UBSan, the default) or "thread" (TSan, for code whose threads
        share memory). libs: extra linker arguments, e.g. "-lpthread"."""
        if sanitize not in SANITIZERS:
            raise ValueError(f"host_program({name!r}): sanitize must be one of {sorted(SANITIZERS)}")
        incs = ["include", self.idl_include, here] + [
            os.path.normpath(os.path.join(here, i)) for i in includes]
        objs = [self.obj("host", here, s, cflags, incs, sanitize) for s in srcs]
        exe = os.path.join(self.out, "host", here, name)
        ld = "$(HOST_CXX)" if any(s.endswith(".cpp") for s in srcs) else "$(HOST_CC)"
        self.target(exe, f"host_program({name!r}) in {here}")
        self.rules.append(
            f"{exe}: {' '.join(objs)}\n\t@mkdir -p $(@D)\n\t@echo '  LD  host  {exe}'\n"
            f"\t@{ld} {SANITIZERS[sanitize][1]} -o $@ {' '.join(objs)} {libs}\n")
        self.all.append(exe)
        if test:
            self.host_tests.append(exe)
        return exe

    def host_plugin(self, here, name, srcs, includes=(), cflags=""):
        """A shared object for QEMU's -plugin, build/host/<here>/<name>.so,
        built with PLUGIN_CFLAGS (no sanitizer: see there). Its undefined
        qemu_plugin_* symbols are QEMU's, resolved when QEMU loads it."""
        incs = ["include", here] + [os.path.normpath(os.path.join(here, i)) for i in includes]
        objs = [self.obj("plugin", here, s, cflags, incs) for s in srcs]
        so = os.path.join(self.out, "host", here, name + ".so")
        self.target(so, f"host_plugin({name!r}) in {here}")
        self.rules.append(
            f"{so}: {' '.join(objs)}\n\t@mkdir -p $(@D)\n\t@echo '  LD  host  {so}'\n"
            f"\t@$(HOST_CC) -shared -o $@ {' '.join(objs)}\n")
        self.all.append(so)
        return so

    def guest32_program(self, here, name, srcs, ldscript, includes=(), cflags=""):
        """A bare 32-bit guest, build/<here>/<name>.elf, for QEMU's -kernel
        (its multiboot loader takes only 32-bit ELF): freestanding C and
        assembly with the guest flags for i386, linked by `ldscript`."""
        incs = ["include", here] + [os.path.normpath(os.path.join(here, i)) for i in includes]
        objs = [self.obj("guest32", here, s, cflags, incs) for s in srcs]
        elf = os.path.join(self.out, here, name + ".elf")
        lds = os.path.join(here, ldscript)
        self.target(elf, f"guest32_program({name!r}) in {here}")
        self.rules.append(
            f"{elf}: {' '.join(objs)} {lds}\n\t@mkdir -p $(@D)\n\t@echo '  LD  guest {elf}'\n"
            f"\t@$(GUEST_LD) -m elf_i386 -nostdlib -z max-page-size=0x1000 -z noexecstack "
            f"--no-warn-rwx-segments -T {lds} -o $@ {' '.join(objs)}\n")
        self.all.append(elf)
        return elf

    def host_test(self, here, name, srcs, includes=(), cflags="", sanitize="address", libs=""):
        """A host unit-test binary: exits 0 when every check passed. The test
        suite runs each one (tests/test_host_units.py)."""
        return self.host_program(here, name, srcs, includes, cflags, test=True, sanitize=sanitize,
                                 libs=libs)

    def interface(self, here, name):
        """The C header for the interface in <here>/<name>.if, generated by
        tools/idlc as build/include/if/<name>_if.h: every user and host
        object can `#include <if/<name>_if.h>` (docs/interfaces.md)."""
        src = os.path.normpath(os.path.join(here, name + ".if"))
        h = os.path.join(self.idl_include, "if", name + "_if.h")
        self.target(h, f"interface({name!r}) in {here}")
        self.idl_headers.append(h)
        self.rules.append(
            f"{h}: {src} tools/idlc tools/atoll_idl.py\n\t@echo '  IDL       {src}'\n"
            f"\t@$(PYTHON) tools/idlc {src} -o $@\n")
        self.all.append(h)
        return h

    def image(self, here, name, kernel, modules=()):
        """A bootable GRUB ISO holding `kernel` and `modules`, made by
        tools/mkimage with the default kernel command line. Each module is
        a path, or 'PATH=ARGS' for a module with a command line; a path
        under build/ must be something a Hakefile builds (user_program
        gives build/user/<name>.elf), and the image depends on it."""
        iso = os.path.join(self.out, name + ".iso")
        paths = [os.path.normpath(m.partition("=")[0]) for m in modules]
        self.images.append((iso, [os.path.normpath(kernel)] + paths))
        deps = " ".join([kernel] + paths)
        mods = " ".join("--module " + shlex.quote(m) for m in modules)
        self.rules.append(
            f"{iso}: {deps} tools/mkimage tools/atoll_image.py\n\t@echo '  ISO       {iso}'\n"
            f"\t@$(PYTHON) tools/mkimage --kernel {kernel} {mods} -o $@\n")
        self.all.append(iso)
        return iso

    def check(self):
        """Every built file an image needs has a rule (else make would only
        say 'No rule to make target')."""
        for elf, libs in self.lib_uses:
            for l in libs:
                if l not in self.user_libs:
                    raise ValueError(f"{elf} links user library {l!r}, which no "
                                     "user_library() declares")
        prefix = os.path.normpath(self.out) + os.sep
        for iso, paths in self.images:
            for p in paths:
                if p.startswith(prefix) and p not in self.targets:
                    raise ValueError(f"image {iso}: {p} is under {self.out}/ but no Hakefile "
                                     "builds it (a user_program named "
                                     f"{os.path.splitext(os.path.basename(p))[0]!r}?)")

    # -- output ----------------------------------------------------------------
    def write(self, hakefiles):
        head = f"""# Generated by hake/hake.py from {len(hakefiles)} Hakefile.py files. Do not edit.
GUEST_CC ?= gcc
GUEST_LD ?= ld
GUEST_NM ?= nm
GUEST_AR ?= ar
HOST_CC ?= gcc
HOST_CXX ?= g++
PYTHON ?= python3
GUEST_CFLAGS := {' '.join(GUEST_CFLAGS)} -isystem $(shell $(GUEST_CC) -print-file-name=include)
GUEST_ASFLAGS := {' '.join(GUEST_ASFLAGS)}
USER_CFLAGS := {' '.join(USER_CFLAGS)} -isystem $(shell $(GUEST_CC) -print-file-name=include)
HOST_CFLAGS := {' '.join(HOST_CFLAGS)}
HOST_LDFLAGS := {' '.join(HOST_LDFLAGS)}
PLUGIN_CFLAGS := {' '.join(PLUGIN_CFLAGS)}
GUEST32_CFLAGS := {' '.join(GUEST32_CFLAGS)} -isystem $(shell $(GUEST_CC) -print-file-name=include)
IDL_HEADERS := {' '.join(self.idl_headers)}
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
            "user_library": lambda *a, **k: b.user_library(here, *a, **k),
            "user_program": lambda *a, **k: b.user_program(here, *a, **k),
            "host_test": lambda *a, **k: b.host_test(here, *a, **k),
            "host_program": lambda *a, **k: b.host_program(here, *a, **k),
            "host_plugin": lambda *a, **k: b.host_plugin(here, *a, **k),
            "guest32_program": lambda *a, **k: b.guest32_program(here, *a, **k),
            "image": lambda *a, **k: b.image(here, *a, **k),
            "interface": lambda *a, **k: b.interface(here, *a, **k),
            "build_dir": out,
        }
        with open(hf) as f:
            code = compile(f.read(), hf, "exec")
        try:
            exec(code, scope)
        except Exception as e:  # name the Hakefile, not hake's internals
            sys.exit(f"hake: {hf}: {type(e).__name__}: {e}")
    try:
        b.check()
    except ValueError as e:
        sys.exit(f"hake: {e}")
    b.write(hakefiles)


if __name__ == "__main__":
    main()
