/*
 * Where this logical CPU sits, from its own CPUID: the APIC id layout (how
 * many bits number the threads of a core and the cores of a package) and
 * its caches with the logical CPUs sharing each.
 *
 * Layout, in order of preference:
 *   - leaf 0x1f, else 0xb (x2APIC topology): the SMT level's shift and the
 *     last level's shift (everything below the package: cores, modules,
 *     tiles, dies, which Atoll folds into "cores");
 *   - leaf 1 fallback: EBX[23:16] logical processors per package (when HTT),
 *     cores per package from Intel leaf 4 EAX[31:26] or AMD 0x80000008
 *     ECX (ApicIdCoreIdSize / NC) and threads per core from AMD 0x8000001e.
 * Caches, in order of preference:
 *   - Intel leaf 4, else AMD 0x8000001d (with TOPOEXT): level, type, size,
 *     line, ways, and how many logical CPUs share each;
 *   - AMD's older 0x80000005 / 0x80000006: L1d, L1i and L2 per core, L3 per
 *     package (what Linux and hwloc assume for them). QEMU's TCG "max" CPU
 *     is such an AMD CPU, and the sizes it reports are QEMU's fixed legacy
 *     values (64 KiB L1d/L1i, 512 KiB L2, 16 MiB L3), not a model of any
 *     real cache: TCG emulates no cache at all.
 *
 * Checks across leaves (emulators' CPUID need not agree with itself; Bochs
 * 2.7's does not, tests/host/test_cpuid_topo.c has its values):
 *   - an x2APIC leaf's package is widened to leaf 1's addressable logical
 *     CPUs per package when that is larger;
 *   - leaf 4's sharing counts are used only when its cores per package
 *     (EAX[31:26]) fit the layout, else L1/L2 are per core, the rest per package;
 *   - no cache spans packages.
 *
 * The decoder is pure (host-tested): it reads CPUID through a callback.
 * Each core decodes itself once at boot; the record goes to user space in
 * the machine frame (<atoll/abi/machine.h>, topo_report.h).
 */
#ifndef ATOLL_X86_CPUID_TOPO_H
#define ATOLL_X86_CPUID_TOPO_H

#include <stdint.h>
#include <atoll/abi/machine.h>   /* struct cpu_place, struct cpuid_ident: user space reads them */

typedef void (*cpuid_fn)(void *ctx, uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);  /* eax..edx */

/* Decode the CPU that `fn` describes. `id` may be NULL. */
void cpuid_topo_decode(cpuid_fn fn, void *ctx, struct cpu_place *out, struct cpuid_ident *id);

/* The same for the CPU running this (executes CPUID). */
void cpuid_topo_self(struct cpu_place *out, struct cpuid_ident *id);

#endif
