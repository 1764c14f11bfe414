#!/usr/bin/env python3
"""Kernel symbol table for symbolized backtraces.

    nm -n stage1.elf | ksyms.py > ksyms.S    table of code symbols
    ksyms.py --empty > ksyms.S               empty table (first link)
    ksyms.py --check stage1.elf final.elf    code addresses must not move

The table is an array of {uint64 addr, uint32 name offset, uint32 pad} sorted
by address, followed by the names; cpudriver/ksyms.c looks addresses up in it.
"""
import subprocess
import sys


def emit(syms):
    out = ['    .section .ksyms, "a"', "    .balign 8",
           "    .globl ksyms_count", "ksyms_count:", f"    .quad {len(syms)}",
           "    .globl ksyms_table", "ksyms_table:"]
    off = 0
    for addr, name in syms:
        out.append(f"    .quad 0x{addr:x}\n    .long {off}, 0")
        off += len(name) + 1
    out += ["    .globl ksyms_names", "ksyms_names:"]
    out += [f'    .asciz "{name}"' for _, name in syms]
    out.append('    .section .note.GNU-stack, "", @progbits')
    return "\n".join(out) + "\n"


def code_symbols(lines):
    syms = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("T", "t", "W", "w"):
            syms.append((int(parts[0], 16), parts[2]))
    return sorted(set(syms))


def main():
    if sys.argv[1:] == ["--empty"]:
        sys.stdout.write(emit([]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--check":
        nm = lambda f: code_symbols(subprocess.run(["nm", "-n", f], check=True,
                                                   capture_output=True, text=True).stdout.splitlines())
        a, b = nm(sys.argv[2]), nm(sys.argv[3])
        if a != b:
            sys.exit("ksyms: code moved between the two kernel links; "
                     "the .ksyms section must come after all code")
    else:
        sys.stdout.write(emit(code_symbols(sys.stdin)))


if __name__ == "__main__":
    main()
