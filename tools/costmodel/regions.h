/*
 * Measured regions: the guest's markers (include/atoll/costmodel.h) turned
 * into counts, written as JSON lines (docs/costmodel.md lists every field).
 *
 * A region is a difference of two snapshots of the totals (counts.h): taken
 * at its BEGIN marker and at its END marker, whichever CPUs execute them.
 * Every line is written with one fwrite and flushed, so a QEMU killed on a
 * timeout leaves whole lines behind.
 */
#ifndef COSTMODEL_REGIONS_H
#define COSTMODEL_REGIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "counts.h"
#include "directory.h"

#define CM_MAX_ARGS 8
#define CM_MAX_OPEN 16

struct cm_arg {
    uint8_t key;
    uint32_t value;
};

struct cm_region {
    bool open;
    uint8_t tag;
    uint64_t seq;               /* regions begun before this one */
    unsigned cpu;               /* the CPU that began it */
    unsigned nargs;
    struct cm_arg args[CM_MAX_ARGS];
    struct cm_counts start;
    size_t log_start;           /* its first event in the log */
    uint32_t chain_epoch;       /* the directory's chain restarted at its BEGIN */
};

/* What a CPU has spelled so far with markers. */
struct cm_spell {
    uint32_t value;
    unsigned bits;
    unsigned nargs;
    struct cm_arg args[CM_MAX_ARGS];
};

struct cm_regions {
    const struct cm_machine *m;
    const struct cm_counts *now;
    struct cm_dir *dir;         /* for the chain; NULL: no chain in the lines */
    FILE *out;
    bool pairs;                 /* write per-pair counts */
    unsigned hot;               /* write the region's N hottest lines (needs log) */
    struct cm_log *log;         /* the directory's events, or NULL */
    uint64_t seq;
    uint64_t bad_markers;       /* too many args, END without BEGIN, ... */
    struct cm_region open[CM_MAX_OPEN];
    struct cm_spell spell[CM_MAX_CPUS];
    struct cm_counts scratch;
};

/* Start counting for machine m whose totals are `now`, writing to out. The
 * config line is written, and a `boot` region opened at reset. dir (or
 * NULL): each region's BEGIN restarts its chain, and a region no other
 * began inside reports its END CPU's chain (directory.h). hot > 0:
 * each region names its `hot` lines with the most transfers, from `log`
 * (which the directory fills; emptied whenever no region is open). 0, or
 * -1 when out of memory. */
int cm_regions_init(struct cm_regions *r, const struct cm_machine *m, const struct cm_counts *now,
                    struct cm_dir *dir, FILE *out, bool pairs, unsigned hot, struct cm_log *log,
                    const char *extra_config_json);
void cm_regions_free(struct cm_regions *r);

/* A marker executed by CPU `cpu`: op and operand from its displacement;
 * `after`: instructions after it in its translation block, which the
 * totals already count (a region starts, or ends, exactly at the marker). */
void cm_regions_marker(struct cm_regions *r, unsigned cpu, unsigned op, unsigned operand,
                       unsigned after);

/* At exit: every region still open (marked unclosed) and the whole run's
 * totals, then flush. */
void cm_regions_finish(struct cm_regions *r, uint64_t directory_pages);

/* The name of a tag, key or word (NULL when unknown). */
const char *cm_tag_name(unsigned tag);
const char *cm_key_name(unsigned key);
const char *cm_word_name(unsigned word);

#endif
