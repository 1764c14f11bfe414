/*
 * A coherence directory in the manner of MESI, one entry per 64-byte line
 * of guest physical memory, kept only for lines some CPU touched.
 *
 * Per line: the set of CPUs holding a copy, and the CPU that wrote it last
 * (always one of the holders: only another write takes its copy away).
 * Caches are infinite and never evict, so a line stays wherever it was read
 * until someone writes it. For an access by CPU c:
 *
 *   read, c holds a copy               hit: nothing counted
 *   read, c holds none                 c joins the holders; if the line has a
 *                                      last writer w, its data came from w's
 *                                      cache: one transfer w -> c
 *   write, c the only holder           hit (Modified/Exclusive)
 *   write, c holds a copy, others too  upgrade: every other copy is dropped,
 *                                      one invalidation holder -> c each;
 *                                      no data moves
 *   write, c holds none, others do     read-for-ownership: one transfer to c
 *                                      (from the last writer, or from the
 *                                      nearest holder of a line nobody wrote)
 *                                      and one invalidation per other holder
 *   write or read, nobody holds it     from memory: nothing counted
 *
 * So a line bouncing between two CPUs that each read then write it costs
 * one transfer and one invalidation per move. Accesses that straddle two
 * lines touch both.
 *
 * The chain: the longest sequence of transfers each of which needed the one
 * before, a critical path that stands in for latency (no timing is kept).
 * Each CPU has a clock in hops, and each line the clock of its last write.
 * A read that misses takes one hop: the reader's clock becomes one more
 * than the later of its own and the line's (the data leaves the writer
 * when written, or the reader when it asks). A write costs its writer
 * nothing (a store buffer hides it) and stamps the line with the writer's
 * clock; an atomic read-modify-write, which QEMU reports as a read then a
 * write, stalls on its read. Work on a CPU's own lines costs nothing, and
 * an interrupt is no hop of its own: the handler's reads of the data it
 * was sent for carry the dependence. The weighted chain adds each hop's
 * SLIT distance / 10 instead of 1. Clocks start again at 0 whenever
 * cm_dir_chain_restart is called (at each region's start), so what came
 * before the region does not count.
 */
#ifndef COSTMODEL_DIRECTORY_H
#define COSTMODEL_DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "counts.h"

#define CM_LINE_SHIFT 6
#define CM_LINE (1u << CM_LINE_SHIFT)

struct cm_dir;

/* Optional: every transfer and invalidation as it happens, for the "hot
 * lines" of a region (regions.c, plugin argument hot=N). Bounded: events
 * past `cap` are dropped and `truncated` is set. */
enum { CM_EV_TRANSFER, CM_EV_INVALIDATION };
struct cm_event {
    uint64_t line;          /* physical address >> CM_LINE_SHIFT */
    uint16_t from, to;      /* transfer: src -> dst; invalidation: holder -> writer */
    uint8_t kind;
};
struct cm_log {
    struct cm_event *ev;
    size_t len, cap;
    bool truncated;
};

/* A directory for machine m (ncpus >= 1) that counts into c (same ncpus).
 * NULL when out of memory. Both must outlive it. */
struct cm_dir *cm_dir_new(const struct cm_machine *m, struct cm_counts *c);
void cm_dir_free(struct cm_dir *d);
/* Record events into log from now on (NULL: stop). */
void cm_dir_set_log(struct cm_dir *d, struct cm_log *log);

/* One data access of `size` bytes (1..4096) at guest physical address
 * `phys` by CPU `cpu` (< ncpus). Returns false only when out of memory (the
 * access is then not recorded). */
bool cm_dir_access(struct cm_dir *d, unsigned cpu, uint64_t phys, unsigned size, bool write);

/* Start every clock at 0 again (every line's stamp too). */
void cm_dir_chain_restart(struct cm_dir *d);
/* Restarts so far: a region is whole when no other began inside it. */
uint32_t cm_dir_chain_epoch(const struct cm_dir *d);
/* CPU cpu's clock since the last restart: hops, and hops weighted by
 * distance in tenths (10 per hop between CPUs of one node). */
void cm_dir_chain_of(const struct cm_dir *d, unsigned cpu, uint64_t *hops, uint64_t *weighted10);

/* How many 4 KiB pages have directory entries (for the report and tests). */
uint64_t cm_dir_pages(const struct cm_dir *d);

#endif
