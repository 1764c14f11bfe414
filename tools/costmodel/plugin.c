/*
 * The cost model: a QEMU TCG plugin that counts what moves between virtual
 * CPUs (docs/costmodel.md).
 *
 * At translation every instruction gets a memory callback (QEMU calls it
 * only for instructions that access memory), every block a callback that
 * counts its instructions, and every marker no-op (include/atoll/costmodel.h)
 * a callback of its own. A memory access is followed by guest physical
 * address: RAM goes to the coherence directory (directory.c), a write to
 * the local APIC's interrupt command register counts one IPI. Markers open
 * and close measured regions (regions.c), written as JSON lines.
 *
 * One lock guards the directory and the totals. Under single-threaded TCG
 * (what tools/run --cost-model uses) it is never contended; under MTTCG it
 * keeps the directory whole, though the order in which accesses of two CPUs
 * reach it then depends on the host and so do the counts.
 */
#include <atoll/costmodel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "counts.h"
#include "directory.h"
#include "qemu_plugin_api.h"
#include "regions.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* hot=N logs every transfer and invalidation (16 bytes each) while a
 * region is open; past this many a region's hot lines are marked truncated. */
#define HOT_LOG_EVENTS (1u << 22)

static struct {
    struct cm_config cfg;
    struct cm_counts now;
    struct cm_dir *dir;
    struct cm_regions regions;
    struct cm_log log;
    FILE *out;
    uint64_t icr;           /* physical address of the ICR's low word */
    bool out_of_memory;
} cm;

static char lock_word;

static void lock(void)
{
    while (__atomic_test_and_set(&lock_word, __ATOMIC_ACQUIRE)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}

static void unlock(void) { __atomic_clear(&lock_word, __ATOMIC_RELEASE); }

static void say(const char *fmt, const char *what)
{
    char msg[600];
    snprintf(msg, sizeof msg, fmt, what);
    /* QEMU's log goes to standard error unless -D says otherwise; the
     * refusal must be seen whatever the log settings. */
    fputs(msg, stderr);
    fflush(stderr);
}

/* -- callbacks --------------------------------------------------------------------- */
static void on_mem(unsigned int cpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata)
{
    (void)udata;
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    if (!hw || cpu >= cm.now.n)
        return;
    bool store = qemu_plugin_mem_is_store(info);
    if (qemu_plugin_hwaddr_is_io(hw)) {
        if (store && qemu_plugin_hwaddr_phys_addr(hw) == cm.icr) {
            lock();
            cm.now.ipis[cpu]++;
            unlock();
        }
        return;
    }
    uint64_t phys = qemu_plugin_hwaddr_phys_addr(hw);
    unsigned size = 1u << qemu_plugin_mem_size_shift(info);
    lock();
    if (store)
        cm.now.writes[cpu]++;
    else
        cm.now.reads[cpu]++;
    if (!cm_dir_access(cm.dir, cpu, phys, size, store) && !cm.out_of_memory) {
        cm.out_of_memory = true;
        say("costmodel: %s\n", "out of memory for the directory: counts from now on are low");
    }
    unlock();
}

static void on_block(unsigned int cpu, void *udata)
{
    if (cpu >= cm.now.n)
        return;
    /* Only this CPU's thread adds to its counter; region snapshots read it
     * under the lock, which is enough for single-threaded TCG and leaves a
     * block's worth of skew under MTTCG. */
    __atomic_store_n(&cm.now.insns[cpu],
                     __atomic_load_n(&cm.now.insns[cpu], __ATOMIC_RELAXED) + (uintptr_t)udata,
                     __ATOMIC_RELAXED);
}

/* udata: op << 24 | operand << 16 | instructions after the marker in its block */
static void on_marker(unsigned int cpu, void *udata)
{
    uintptr_t u = (uintptr_t)udata;
    lock();
    cm_regions_marker(&cm.regions, cpu, (unsigned)(u >> 24) & 0xff, (unsigned)(u >> 16) & 0xff,
                      (unsigned)u & 0xffff);
    unlock();
}

/* The marker's op and operand, or 0 when insn is not a marker. */
static unsigned marker_of(struct qemu_plugin_insn *insn)
{
    if (qemu_plugin_insn_size(insn) != 8)
        return 0;
    const uint8_t *b = qemu_plugin_insn_data(insn);
    if (!b || b[0] != 0x0f || b[1] != 0x1f || b[2] != 0x84 || b[3] != 0x00)
        return 0;
    uint32_t disp = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
                    (uint32_t)b[7] << 24;
    if (disp >> 16 != CM_MAGIC || ((disp >> 8) & 0xff) == 0)
        return 0;
    return disp & 0xffff;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        qemu_plugin_register_vcpu_mem_cb(insn, on_mem, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                         NULL);
        unsigned mark = marker_of(insn);
        if (mark) {
            size_t after = n - 1 - i;
            uintptr_t u = (uintptr_t)mark << 16 | (after > 0xffff ? 0xffff : after);
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)u);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    (void)id;
    (void)udata;
    lock();
    cm_regions_finish(&cm.regions, cm_dir_pages(cm.dir));
    if (cm.out != stderr)
        fclose(cm.out);
    cm.out = NULL;
    unlock();
}

/* -- install ------------------------------------------------------------------------ */
QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    char err[512];
    int ncpus = info->system_emulation ? info->system.smp_vcpus : 0;
    if (cm_check_qemu(info->target_name, info->system_emulation, info->version.min,
                      info->version.cur, ncpus, err, sizeof err) ||
        cm_parse_args(argc, argv, (unsigned)ncpus, &cm.cfg, err, sizeof err)) {
        say("costmodel: %s\n", err);
        return -1;
    }
    cm.icr = cm.cfg.apic + CM_ICR_OFFSET;
    cm.out = stderr;
    if (cm.cfg.out) {
        cm.out = fopen(cm.cfg.out, "w");
        if (!cm.out) {
            snprintf(err, sizeof err, "out=%s: cannot open it for writing", cm.cfg.out);
            say("costmodel: %s\n", err);
            return -1;
        }
    }
    char extra[128];
    snprintf(extra, sizeof extra, "\"api\":%d,\"icr\":\"0x%llx\"", CM_API_VERSION,
             (unsigned long long)cm.icr);
    if (cm.cfg.hot) {
        cm.log.cap = HOT_LOG_EVENTS;
        cm.log.ev = malloc(cm.log.cap * sizeof *cm.log.ev);
    }
    if (cm_counts_init(&cm.now, (unsigned)ncpus) ||
        !(cm.dir = cm_dir_new(&cm.cfg.m, &cm.now)) || (cm.cfg.hot && !cm.log.ev) ||
        cm_regions_init(&cm.regions, &cm.cfg.m, &cm.now, cm.dir, cm.out, cm.cfg.pairs, cm.cfg.hot,
                        cm.cfg.hot ? &cm.log : NULL, extra)) {
        say("costmodel: %s\n", "out of memory");
        return -1;
    }
    if (cm.cfg.hot)
        cm_dir_set_log(cm.dir, &cm.log);
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
