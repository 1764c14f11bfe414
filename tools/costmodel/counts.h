/*
 * The cost model's counters and the machine they are split by.
 *
 * Everything the plugin counts is a monotonic total since reset, kept per
 * virtual CPU or per ordered pair of virtual CPUs; a measured region is the
 * difference of two snapshots (regions.c). No QEMU types here: this and
 * directory.c are the part the host unit test (tests/host/test_costmodel.c)
 * runs under ASan and UBSan.
 */
#ifndef COSTMODEL_COUNTS_H
#define COSTMODEL_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_MAX_CPUS 256     /* TCG runs at most 255 */
#define CM_MAX_NODES 128    /* QEMU's MAX_NODES */
#define CM_LOCAL_DISTANCE 10

/* The machine as QEMU was told it: each CPU's NUMA node and the SLIT. */
struct cm_machine {
    unsigned ncpus;
    unsigned nnodes;                            /* 1 without NUMA */
    uint8_t node_of[CM_MAX_CPUS];
    uint8_t dist[CM_MAX_NODES][CM_MAX_NODES];   /* 10 local; 11..255 remote */
};

/* Distance between two CPUs' nodes. */
static inline unsigned cm_cpu_dist(const struct cm_machine *m, unsigned a, unsigned b)
{
    return m->dist[m->node_of[a]][m->node_of[b]];
}

/* Totals since reset. Pair arrays are n*n, indexed [from * n + to]. */
struct cm_counts {
    unsigned n;
    uint64_t *xfer;     /* [src][dst]: dst got the line's data from src's cache */
    uint64_t *inval;    /* [holder][writer]: writer's write dropped holder's copy */
    uint64_t *insns;    /* instructions executed, per CPU */
    uint64_t *ipis;     /* writes to the local APIC's ICR, per sending CPU */
    uint64_t *reads;    /* data reads of RAM, per CPU */
    uint64_t *writes;   /* data writes to RAM, per CPU */
};

/* 0, or -1 when out of memory. */
int cm_counts_init(struct cm_counts *c, unsigned n);
void cm_counts_free(struct cm_counts *c);
/* dst = src (both of the same n). */
void cm_counts_copy(struct cm_counts *dst, const struct cm_counts *src);

#endif
