/*
 * The plugin's arguments and its checks of the QEMU that loads it.
 *
 *   -plugin build/host/tools/costmodel/costmodel.so,out=FILE,node=0-1,node=2-3,dist=10:20:20:10
 *
 *   out=FILE       JSON lines go to FILE (default: QEMU's standard error)
 *   node=CPUS      one NUMA node's CPUs, in node order, ranges joined by '+'
 *                  (0-3+8-11); repeat per node. Without any, one node.
 *   dist=D:D:...   the SLIT, row by row (nodes x nodes values, 10 on the
 *                  diagonal, 11..255 elsewhere). Default 10 local, 20 remote.
 *   apic=ADDR      the local APIC's physical base (default 0xfee00000); a
 *                  write to its ICR (ADDR + 0x300) is one IPI sent
 *   pairs=on|off   per-pair counts in every region line (default on)
 *   hot=N          each region names its N lines with the most transfers
 *                  (default 0: none; a diagnostic, it logs every transfer)
 *
 * Every error names the argument and what was wrong; the plugin then
 * refuses to install and QEMU stops (docs/costmodel.md).
 */
#ifndef COSTMODEL_ARGS_H
#define COSTMODEL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counts.h"

#define CM_DEFAULT_APIC 0xfee00000ull
#define CM_ICR_OFFSET 0x300u
#define CM_API_VERSION 1

struct cm_config {
    struct cm_machine m;
    const char *out;            /* NULL: standard error */
    uint64_t apic;
    bool pairs;
    unsigned hot;
};

/* Parse argv (the words after file=) for a machine of ncpus CPUs. 0, or -1
 * with a message in err. */
int cm_parse_args(int argc, char **argv, unsigned ncpus, struct cm_config *cfg, char *err,
                  size_t errlen);

/* May the plugin run in this QEMU? It needs full-system x86_64 emulation
 * and exactly the plugin API version it was declared against. 0, or -1
 * with a message in err. */
int cm_check_qemu(const char *target, bool system_emulation, int api_min, int api_cur,
                  int ncpus, char *err, size_t errlen);

#endif
