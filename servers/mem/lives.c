/*
 * Spawn/exit cycles against the memory service (docs/memory.md, Tests):
 *
 *   mem lives N PAR   spawns `mem life I` N times (after a warm-up of two
 *                     per core), round robin over every core, at most PAR
 *                     alive at once; before and after,
 *                     every node's pool (mem_table) and every monitor's free
 *                     RAM; one mem_lives event says whether all came back
 *   mem life I        one life: its heap placed on its node by the service
 *                     (mem_heap_place), 256 KiB malloc'ed and written, a
 *                     4 KiB Frame and 64 KiB of RAM taken and kept; then it
 *                     exits holding them all (every fifth ends by a fault):
 *                     its channel's end gives them back
 *
 * A life's own RAM (SLOT_RAM) is the service's too (mem_spawn, as the
 * shell's `run`): lent to its core's monitor, back when the life ends.
 */
#include <atoll/lib.h>
#include <atoll/mem.h>
#include <atoll/monitor_client.h>
#include <if/monclient_if.h>
#include "lives.h"

#define MAX_CORES 64
#define SETTLE_MS 30000

static struct idl_chan *mon;
static uint32_t ncores;
static uint8_t replybuf[monclient_size_max];

static uint64_t ms(void) { return now_ns() / 1000000; }

int life_run(uint32_t i)
{
    struct mem_block f, r;
    errval_t placed = mem_heap_place(MEM_NEAREST);
    volatile uint8_t *p = malloc(256 << 10);
    if (p)
        for (uint32_t k = 0; k < (256u << 10); k += 4096)
            p[k] = (uint8_t)k;
    errval_t fe = mem_alloc(CAP_FRAME, 4096, 0, MEM_NEAREST, &f);
    errval_t re = mem_alloc(CAP_RAM, 64 << 10, 0, MEM_NEAREST, &r);
    if (placed || !p || fe || re)
        printf("mem life %u: heap %s, malloc %s, frame %s, ram %s\n", i, err_name(placed), p ? "ok" : "NULL",
               err_name(fe), err_name(re));
    if (i % 5 == 4)
        *(volatile uint64_t *)0 = i;   /* a fault: it all comes back all the same */
    return placed || !p || fe || re ? 1 : 0;
}

static errval_t busy_total(uint64_t *total)
{
    *total = 0;
    for (uint32_t c = 0; c < ncores; c++) {
        uint64_t n = 0;
        errval_t rerr = ERR_OK, err = monclient_busy_rpc(mon, c, &rerr, &n);
        if (err || rerr)
            return err ? err : rerr;
        *total += n;
    }
    return ERR_OK;
}

struct picture {
    struct mem_node_stats pool[CORE_INFO_MAX_NODES];
    uint64_t borrowed[CORE_INFO_MAX_NODES];
    uint64_t ram_free[MAX_CORES], heap_in_use[MAX_CORES];
    uint32_t nnodes;
};

static errval_t picture(struct picture *p)
{
    errval_t err = mem_table(p->pool, p->borrowed, &p->nnodes);
    for (uint32_t c = 0; c < ncores && !err; c++) {
        const char *json;
        errval_t rerr = ERR_OK;
        if ((err = monclient_stats_rpc(mon, c, &rerr, &json, replybuf, sizeof replybuf)) || (err = rerr))
            break;
        const char *at = strstr(json, "\"ram_free\":"), *heap = strstr(json, "\"heap_in_use\":");
        p->ram_free[c] = at ? mem_number(&(const char *){ at + 11 }) : 0;
        p->heap_in_use[c] = heap ? mem_number(&(const char *){ heap + 14 }) : 0;
    }
    return err;
}

/* A monitor's heap keeps the frames it grew by (malloc never unmaps): with
 * more lives at once than during the warm-up it may hold a frame or more
 * with nothing more in use. That is a high-water mark, not a leak, when its
 * heap's bytes in use are back exactly and the RAM it took is at most
 * HEAP_GROWTH bytes (as user/churn judges it); counted in heap_grew. */
#define HEAP_GROWTH (256ull << 10)
static uint32_t heap_grew;

/* Nodes whose pool or lending differs, and cores whose monitor's RAM does: a
 * bit each. With `leaks_only`, a monitor with more free RAM in `b` than in
 * `a` does not count: something the baseline caught in flight (a page a
 * monitor was still taking back) came back after it, which is no leak. */
static void differ(const struct picture *a, const struct picture *b, bool leaks_only, uint64_t *nodes,
                   uint64_t *cores)
{
    heap_grew = 0;
    *nodes = *cores = 0;
    for (uint32_t n = 0; n < a->nnodes; n++)
        if (a->pool[n].free != b->pool[n].free || a->pool[n].lent != b->pool[n].lent ||
            a->borrowed[n] != b->borrowed[n] || a->pool[n].spawned != b->pool[n].spawned ||
            b->pool[n].free + b->pool[n].spawned != b->pool[n].total)
            *nodes |= 1ull << n;
    for (uint32_t c = 0; c < ncores; c++) {
        if (a->ram_free[c] == b->ram_free[c] || (leaks_only && b->ram_free[c] > a->ram_free[c]))
            continue;
        if (b->ram_free[c] < a->ram_free[c] && a->ram_free[c] - b->ram_free[c] <= HEAP_GROWTH &&
            a->heap_in_use[c] == b->heap_in_use[c])
            heap_grew++;
        else
            *cores |= 1ull << c;
    }
}

/* Every monitor's free RAM (KiB), as JSON numbers. */
static const char *rams(const struct picture *p, char *out, size_t size)
{
    size_t len = 0;
    out[0] = 0;
    for (uint32_t c = 0; c < ncores; c++) {
        int n = snprintf(out + len, size - len, "%s%llu", c ? "," : "", (unsigned long long)(p->ram_free[c] >> 10));
        if (n > 0 && (size_t)n < size - len)
            len += (size_t)n;
    }
    return out;
}

int lives_run(uint32_t lives, uint32_t par)
{
    static struct picture before, after;
    struct core_info m;
    sys_core_info(&m);
    ncores = m.ncores < MAX_CORES ? m.ncores : MAX_CORES;
    mon = monitor_chan();
    uint64_t base = 0, id, t0 = 0, nodes = 0, cores = 0;
    uint32_t failed = 0, from_service = 0;
    errval_t err = busy_total(&base);
    /* A warm-up of two lives per core first: the channels between the
     * instances (central's to every node's, opened at the first lend) are
     * made once and kept, a connection frame each on their monitors. */
    uint32_t warm = 2 * ncores;
    for (uint32_t i = 0; i < warm + lives && !err; i++) {
        if (i == warm) {
            for (uint64_t busy; !err && !(err = busy_total(&busy)) && busy > base;)
                sys_notify_wait(sys_notify_gen(), 1000, 0);
            /* The baseline once the warm-up has settled (a monitor may still
             * be taking a life's RAM back): the same picture twice, 100 ms apart. */
            static struct picture prev;
            uint64_t nd = 1, cd = 1, s0 = ms();
            while (!err && (nd || cd) && ms() - s0 < SETTLE_MS) {
                sys_notify_wait(sys_notify_gen(), 100000, 0);
                if (!(err = picture(&before)))
                    differ(&prev, &before, false, &nd, &cd);
                prev = before;
            }
            t0 = ms();
        }
        for (uint64_t busy; !err && !(err = busy_total(&busy)) && busy >= base + par;)
            sys_notify_wait(sys_notify_gen(), 1000, 0);
        char cmd[32];
        snprintf(cmd, sizeof cmd, "mem life %u", i);
        /* Its RAM from the service, as the shell's `run` does. */
        struct mem_spawned how;
        errval_t e = err ? err : mem_spawn(i % ncores, cmd, &id, &how);
        if (!err && e) {
            failed++;
            printf("mem lives: life %u on core %u: %s\n", i, i % ncores, err_name(e));
        } else if (!err) {
            from_service += how.from_service;
        }
    }
    for (uint64_t busy; !err && !(err = busy_total(&busy)) && busy > base;)
        sys_notify_wait(sys_notify_gen(), 1000, 0);
    uint64_t took = ms() - t0, settle0 = ms();
    /* The instances free what an ended client held once its channel hangs
     * up, and the monitors reclaim a domain's RAM after its obituary. */
    while (!err && !(err = picture(&after))) {
        differ(&before, &after, true, &nodes, &cores);
        if ((!nodes && !cores) || ms() - settle0 > SETTLE_MS)
            break;
        sys_notify_wait(sys_notify_gen(), 100000, 0);
    }
    static char ab[16 * MAX_CORES], aa[16 * MAX_CORES];
    uint64_t free_before = 0, free_after = 0;
    for (uint32_t n = 0; n < before.nnodes; n++)
        free_before += before.pool[n].free, free_after += after.pool[n].free;
    printf("@atoll {\"event\":\"mem_lives\",\"lives\":%u,\"warm\":%u,\"failed\":%u,\"ram_from_service\":%u,\"ok\":%s,\"err\":\"%s\",\"ms\":%llu,"
           "\"settle_ms\":%llu,\"nodes_differ\":%llu,\"cores_differ\":%llu,\"pool_free_before\":%llu,"
           "\"pool_free_after\":%llu,\"monitor_heap_grew\":%u,\"ram_free_before\":[%s],\"ram_free_after\":[%s]}\n",
           lives, warm, failed, from_service, !err && !failed && !nodes && !cores ? "true" : "false", err_name(err),
           (unsigned long long)took, (unsigned long long)(ms() - settle0), (unsigned long long)nodes,
           (unsigned long long)cores, (unsigned long long)free_before, (unsigned long long)free_after, heap_grew, rams(&before, ab, sizeof ab),
           rams(&after, aa, sizeof aa));
    return err || failed || nodes || cores;
}
