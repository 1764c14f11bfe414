/*
 * The cost model's logic without QEMU (tools/costmodel/): the coherence
 * directory's counts for known access patterns, measured regions and their
 * JSON lines, the plugin's arguments and its checks of the QEMU loading it.
 * tests/test_costmodel.py runs the real plugin in QEMU.
 */
#include <atoll/costmodel.h>
#include <stdlib.h>

#include "args.h"
#include "check.h"
#include "counts.h"
#include "directory.h"
#include "regions.h"

/* -- helpers --------------------------------------------------------------------------- */
static struct cm_machine machine(unsigned ncpus, unsigned nodes)
{
    struct cm_machine m;
    memset(&m, 0, sizeof m);
    m.ncpus = ncpus;
    m.nnodes = nodes;
    for (unsigned c = 0; c < ncpus; c++)
        m.node_of[c] = (uint8_t)(c * nodes / ncpus);    /* contiguous blocks */
    for (unsigned i = 0; i < nodes; i++)
        for (unsigned j = 0; j < nodes; j++)
            m.dist[i][j] = i == j ? 10 : (uint8_t)(20 + 10 * (i > j ? i - j : j - i) - 10);
    return m;
}

static uint64_t sum(const uint64_t *v, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s;
}

struct rig {
    struct cm_machine m;
    struct cm_counts c;
    struct cm_dir *d;
};

static void rig_init(struct rig *r, unsigned ncpus, unsigned nodes)
{
    r->m = machine(ncpus, nodes);
    CHECK(!cm_counts_init(&r->c, ncpus));
    r->d = cm_dir_new(&r->m, &r->c);
    CHECK(r->d != NULL);
}

static void rig_free(struct rig *r)
{
    cm_dir_free(r->d);
    cm_counts_free(&r->c);
}

static uint64_t xfers(const struct rig *r) { return sum(r->c.xfer, (size_t)r->c.n * r->c.n); }
static uint64_t invals(const struct rig *r) { return sum(r->c.inval, (size_t)r->c.n * r->c.n); }
static uint64_t xfer(const struct rig *r, unsigned a, unsigned b) { return r->c.xfer[a * r->c.n + b]; }
static uint64_t inval(const struct rig *r, unsigned a, unsigned b) { return r->c.inval[a * r->c.n + b]; }

#define RD(r, cpu, addr) CHECK(cm_dir_access((r)->d, cpu, addr, 8, false))
#define WR(r, cpu, addr) CHECK(cm_dir_access((r)->d, cpu, addr, 8, true))

/* -- the directory ------------------------------------------------------------------------ */
static void test_memory_and_hits(void)
{
    struct rig r;
    rig_init(&r, 4, 1);
    /* Lines nobody wrote come from memory; re-reading is a hit. */
    RD(&r, 0, 0x1000);
    RD(&r, 1, 0x1008);
    RD(&r, 1, 0x1000);
    CHECK_EQ(xfers(&r), 0);
    /* A write to a line nobody else holds costs nothing, however often. */
    for (int i = 0; i < 100; i++)
        WR(&r, 2, 0x2000 + (uint64_t)(i % 8) * 8);
    CHECK_EQ(xfers(&r) + invals(&r), 0);
    CHECK_EQ(cm_dir_pages(r.d), 2);
    rig_free(&r);
}

/* Two CPUs taking turns on one line, each reading then writing it: one
 * transfer and one invalidation each way per round trip. */
static void test_pingpong(void)
{
    struct rig r;
    rig_init(&r, 2, 1);
    uint64_t line = 0x40000;
    WR(&r, 0, line);
    RD(&r, 1, line);            /* 1 polls: transfer 0 -> 1 */
    CHECK_EQ(xfer(&r, 0, 1), 1);
    for (int k = 0; k < 10; k++) {
        WR(&r, 0, line);        /* upgrade: 1's copy dropped */
        RD(&r, 0, line);        /* polling its own value: hits */
        RD(&r, 1, line);        /* transfer 0 -> 1 */
        RD(&r, 1, line);
        WR(&r, 1, line);        /* upgrade: 0's copy dropped */
        RD(&r, 0, line);        /* transfer 1 -> 0 */
    }
    CHECK_EQ(xfer(&r, 0, 1), 11);
    CHECK_EQ(xfer(&r, 1, 0), 10);
    CHECK_EQ(inval(&r, 1, 0), 10);
    CHECK_EQ(inval(&r, 0, 1), 10);
    rig_free(&r);
}

static void test_write_miss(void)
{
    struct rig r;
    rig_init(&r, 4, 2);         /* CPUs 0-1 node 0, 2-3 node 1 */
    /* Read-for-ownership of a line another CPU wrote: its data moves. */
    WR(&r, 0, 0x100);
    WR(&r, 3, 0x100);
    CHECK_EQ(xfer(&r, 0, 3), 1);
    CHECK_EQ(inval(&r, 0, 3), 1);
    /* Of a line nobody wrote but three read: from the nearest holder. */
    RD(&r, 1, 0x200);
    RD(&r, 2, 0x200);
    RD(&r, 0, 0x200);
    WR(&r, 3, 0x200);
    CHECK_EQ(xfer(&r, 2, 3), 1);
    CHECK_EQ(inval(&r, 0, 3) + inval(&r, 1, 3) + inval(&r, 2, 3), 1 + 3);
    CHECK_EQ(xfers(&r), 2);
    rig_free(&r);
}

/* One writer, three readers on two nodes: the readers' misses come from the
 * writer, the writer's next write drops every copy. */
static void test_readers(void)
{
    struct rig r;
    rig_init(&r, 4, 2);
    WR(&r, 0, 0x3000);
    for (unsigned c = 1; c < 4; c++)
        RD(&r, c, 0x3000);
    WR(&r, 0, 0x3000);
    CHECK_EQ(xfer(&r, 0, 1) + xfer(&r, 0, 2) + xfer(&r, 0, 3), 3);
    CHECK_EQ(invals(&r), 3);
    CHECK_EQ(cm_cpu_dist(&r.m, 0, 1), 10);
    CHECK_EQ(cm_cpu_dist(&r.m, 0, 3), 20);
    rig_free(&r);
}

static void test_straddle_and_pages(void)
{
    struct rig r;
    rig_init(&r, 2, 1);
    /* 8 bytes at 0x3c: lines 0x0 and 0x40 both. */
    CHECK(cm_dir_access(r.d, 0, 0x3c, 8, true));
    CHECK(cm_dir_access(r.d, 1, 0x00, 4, false));
    CHECK(cm_dir_access(r.d, 1, 0x40, 4, false));
    CHECK_EQ(xfer(&r, 0, 1), 2);
    /* Many pages: the table grows and every page keeps its state. */
    for (uint64_t p = 0; p < 100000; p++)
        WR(&r, 0, p << 12);
    CHECK_EQ(cm_dir_pages(r.d), 100000);
    for (uint64_t p = 0; p < 100000; p += 7)
        RD(&r, 1, p << 12);
    CHECK_EQ(xfer(&r, 0, 1), 2 + (100000 + 6) / 7);
    rig_free(&r);
}

/* More CPUs than one 64-bit word holds. */
static void test_many_cpus(void)
{
    struct rig r;
    rig_init(&r, 255, 4);
    WR(&r, 200, 0x8000);
    for (unsigned c = 0; c < 255; c++)
        RD(&r, c, 0x8000);
    CHECK_EQ(xfers(&r), 254);
    WR(&r, 130, 0x8000);        /* upgrade: 254 other copies dropped */
    CHECK_EQ(invals(&r), 254);
    CHECK_EQ(inval(&r, 200, 130), 1);
    CHECK_EQ(inval(&r, 0, 130), 1);
    CHECK_EQ(inval(&r, 254, 130), 1);
    RD(&r, 254, 0x8000);
    CHECK_EQ(xfer(&r, 130, 254), 1);
    CHECK(cm_dir_access(r.d, 255, 0x8000, 8, true));     /* no such CPU: ignored */
    CHECK_EQ(xfers(&r), 255);
    rig_free(&r);
}

static void test_log(void)
{
    struct rig r;
    rig_init(&r, 2, 1);
    struct cm_event ev[3];
    struct cm_log log = { ev, 0, 3, false };
    cm_dir_set_log(r.d, &log);
    WR(&r, 0, 0x1040);
    RD(&r, 1, 0x1040);
    WR(&r, 1, 0x1040);
    CHECK_EQ(log.len, 2);
    CHECK_EQ(ev[0].kind, CM_EV_TRANSFER);
    CHECK_EQ(ev[0].line, 0x1040 >> 6);
    CHECK_EQ(ev[0].from, 0);
    CHECK_EQ(ev[0].to, 1);
    CHECK_EQ(ev[1].kind, CM_EV_INVALIDATION);
    RD(&r, 0, 0x1040);
    WR(&r, 0, 0x1040);
    CHECK_EQ(log.len, 3);
    CHECK(log.truncated);
    rig_free(&r);
}

/* -- regions ------------------------------------------------------------------------------- */
/* Spell v as markers from `cpu`, then the argument marker. */
static void spell(struct cm_regions *g, unsigned cpu, unsigned key, uint32_t v)
{
    int top = 31;
    while (top >= 0 && !((v >> top) & 1))
        top--;
    for (int i = top; i >= 0; i--)
        cm_regions_marker(g, cpu, (v >> i) & 1 ? CM_OP_BIT1 : CM_OP_BIT0, 0, 0);
    cm_regions_marker(g, cpu, CM_OP_ARG, key, 0);
}

static char *read_all(FILE *f)
{
    static char buf[1 << 16];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    return buf;
}

/* The n-th line (0-based) of text, copied. */
static const char *line_of(const char *text, int n)
{
    static char buf[1 << 14];
    for (; n > 0 && text; n--) {
        text = strchr(text, '\n');
        if (text)
            text++;
    }
    if (!text || !*text)
        return "";
    const char *end = strchr(text, '\n');
    size_t len = end ? (size_t)(end - text) : strlen(text);
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, text, len);
    buf[len] = 0;
    return buf;
}

#define HAS(hay, needle)                                                         \
    do {                                                                         \
        const char *h_ = (hay);                                                  \
        check_count++;                                                           \
        if (!strstr(h_, needle)) {                                               \
            check_fail(__FILE__, __LINE__, "line has " #needle);                 \
            fprintf(stderr, "    line: %s\n", h_);                               \
        }                                                                        \
    } while (0)

static void test_regions(void)
{
    struct rig r;
    rig_init(&r, 4, 2);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    struct cm_event ev[64];
    struct cm_log log = { ev, 0, 64, false };
    cm_dir_set_log(r.d, &log);
    struct cm_regions g;
    CHECK(!cm_regions_init(&g, &r.m, &r.c, r.d, f, true, 2, &log, "\"extra\":1"));

    /* The boot region runs from reset to the first END of boot. */
    WR(&r, 0, 0x100);
    RD(&r, 1, 0x100);
    r.c.insns[0] = 1000;
    spell(&g, 2, CM_KEY_cores, 4);
    cm_regions_marker(&g, 2, CM_OP_END, CM_TAG_boot, 0);

    /* A ping-pong region 0 <-> 3 with arguments, begun and ended by CPU 0
     * in the middle of blocks (the instruction counts say where). */
    spell(&g, 0, CM_KEY_protocol, CM_WORD_cacheline);
    spell(&g, 0, CM_KEY_src, 0);
    spell(&g, 0, CM_KEY_dst, 3);
    r.c.insns[0] += 10;                     /* the block of BEGIN: 6 after it */
    cm_regions_marker(&g, 0, CM_OP_BEGIN, CM_TAG_pingpong, 6);
    for (int k = 0; k < 5; k++) {
        WR(&r, 0, 0x200);
        RD(&r, 3, 0x200);
        WR(&r, 3, 0x200);
        RD(&r, 0, 0x200);
    }
    r.c.ipis[3] += 2;
    r.c.insns[0] += 100;
    r.c.insns[0] += 8;                      /* the block of END: 5 after it */
    spell(&g, 0, CM_KEY_ops, 5);
    cm_regions_marker(&g, 0, CM_OP_END, CM_TAG_pingpong, 5);

    /* Problems are counted, never fatal. */
    cm_regions_marker(&g, 1, CM_OP_END, CM_TAG_unmap, 0);          /* never begun */
    cm_regions_marker(&g, 1, 9, 0, 0);                             /* no such op */
    for (int i = 0; i < 33; i++)
        cm_regions_marker(&g, 1, CM_OP_BIT1, 0, 0);
    cm_regions_marker(&g, 1, CM_OP_ARG, CM_KEY_ops, 0);            /* 33 bits */
    cm_regions_marker(&g, 7, CM_OP_BEGIN, CM_TAG_local, 0);        /* no CPU 7: ignored */
    cm_regions_marker(&g, 1, CM_OP_BEGIN, CM_TAG_local, 0);        /* left open */
    RD(&r, 2, 0x200);
    cm_regions_finish(&g, cm_dir_pages(r.d));

    const char *text = read_all(f);
    const char *cfg = line_of(text, 0);
    HAS(cfg, "{\"type\":\"config\",\"plugin\":\"atoll-costmodel\",\"cpus\":4");
    HAS(cfg, "\"nodes\":[[0,1],[2,3]],\"dist\":[[10,20],[20,10]],\"extra\":1}");

    const char *boot = line_of(text, 1);
    HAS(boot, "\"region\":\"boot\",\"seq\":0,\"cpu\":0,\"end_cpu\":2,\"args\":{\"cores\":4}");
    HAS(boot, "\"transfers\":1,");
    HAS(boot, "\"instructions\":1000,");
    HAS(boot, "\"chain\":0,");   /* CPU 2, which ended it, read nothing */

    const char *pp = line_of(text, 2);
    HAS(pp, "\"region\":\"pingpong\",\"seq\":1,\"cpu\":0,\"end_cpu\":0,");
    HAS(pp, "\"args\":{\"protocol\":\"cacheline\",\"src\":0,\"dst\":3,\"ops\":5}");
    /* Each round one transfer each way; the first write found the line in
     * no cache, so 9 invalidations. All at distance 20 (nodes 0 and 1). */
    HAS(pp, "\"transfers\":10,\"transfers_weighted\":20.0,\"by_distance\":{\"20\":10},"
            "\"invalidations\":9,\"ipis\":2,");
    /* 6 after BEGIN and 100 between are in, the 5 after END are not. */
    HAS(pp, "\"instructions\":109,");
    HAS(pp, "\"per_cpu\":{\"instructions\":[109,0,0,0],\"ipis\":[0,0,0,2]}");
    HAS(pp, "\"pairs\":[[0,3,5,5],[3,0,5,4]]");
    HAS(pp, "\"hot_lines\":[[\"0x200\",10,9]]");
    /* Each transfer needed the one before: the chain is all ten, at 2.0 each. */
    HAS(pp, "\"chain\":10,\"chain_weighted\":20.0");

    const char *open = line_of(text, 3);
    HAS(open, "\"region\":\"local\",\"seq\":2,\"cpu\":1,\"unclosed\":true");
    CHECK(!strstr(open, "chain"));
    HAS(open, "\"transfers\":1,");

    const char *total = line_of(text, 4);
    HAS(total, "{\"type\":\"total\",\"regions\":3,\"bad_markers\":3,\"directory_pages\":1,");
    HAS(total, "\"transfers\":12,");
    CHECK_STREQ(line_of(text, 5), "");

    cm_regions_free(&g);
    fclose(f);
    rig_free(&r);
}

/* END may override what BEGIN gave; BEGIN of an open tag restarts it. */
static void test_region_args(void)
{
    struct rig r;
    rig_init(&r, 2, 1);
    FILE *f = tmpfile();
    struct cm_regions g;
    CHECK(!cm_regions_init(&g, &r.m, &r.c, NULL, f, false, 0, NULL, NULL));
    cm_regions_marker(&g, 0, CM_OP_END, CM_TAG_boot, 0);
    spell(&g, 0, CM_KEY_ops, 3);
    cm_regions_marker(&g, 0, CM_OP_BEGIN, CM_TAG_unmap, 0);
    WR(&r, 1, 0x40);
    RD(&r, 0, 0x40);
    cm_regions_marker(&g, 0, CM_OP_BEGIN, CM_TAG_unmap, 0);         /* restart */
    spell(&g, 0, CM_KEY_ops, 7);
    spell(&g, 0, CM_KEY_pages, 0);
    cm_regions_marker(&g, 1, CM_OP_END, CM_TAG_unmap, 0);
    cm_regions_finish(&g, 0);
    const char *text = read_all(f);
    const char *u = line_of(text, 2);
    HAS(u, "\"region\":\"unmap\",\"seq\":2,\"cpu\":0,\"end_cpu\":1,\"args\":{}");
    HAS(u, "\"transfers\":0,");
    CHECK(!strstr(u, "pairs"));
    CHECK(!strstr(u, "chain"));     /* no directory given */
    CHECK(!strstr(u, "hot_lines"));
    /* Only CPU 0's spelling went to its BEGIN; CPU 0's second spelling was
     * never used (CPU 1 ended the region). */
    CHECK_STREQ(cm_tag_name(CM_TAG_selftest), "selftest");
    CHECK_STREQ(cm_key_name(CM_KEY_dst), "dst");
    CHECK_STREQ(cm_word_name(CM_WORD_urpc_wake), "urpc_wake");
    CHECK(cm_tag_name(200) == NULL);
    cm_regions_free(&g);
    fclose(f);
    rig_free(&r);
}

/* The chain (directory.h): the longest run of transfers each needing the
 * one before, whoever polls how often. */
static uint64_t chain(const struct rig *r, unsigned cpu, uint64_t *w10)
{
    uint64_t h, w;
    cm_dir_chain_of(r->d, cpu, &h, &w);
    if (w10)
        *w10 = w;
    return h;
}

static void test_chain(void)
{
    struct rig r;
    rig_init(&r, 4, 2);         /* CPUs 0, 1 on node 0; 2, 3 on node 1; distance 20 */
    uint64_t w;
    /* A ping-pong: one hop each way, however many times each side polls. */
    WR(&r, 0, 0x1000);
    cm_dir_chain_restart(r.d);  /* what came before the restart is free */
    CHECK_EQ(chain(&r, 0, NULL), 0);
    for (int k = 0; k < 10; k++) {
        WR(&r, 0, 0x1000);
        for (int i = 0; i < 3; i++)
            RD(&r, 1, 0x1000);
        WR(&r, 1, 0x1000);
        RD(&r, 0, 0x1000);
        RD(&r, 0, 0x1000);
    }
    CHECK_EQ(chain(&r, 0, &w), 20);
    CHECK_EQ(w, 200);
    CHECK_EQ(chain(&r, 1, NULL), 19);

    /* Fan out and in: CPU 0 writes a line for each of 1..3 (writes cost
     * their writer nothing), each reads its own and answers on a line of
     * its own; CPU 0 reads the answers one after another: each waits for
     * the one before. Weighted: CPU 1 is 1.0 away, 2 and 3 2.0. */
    cm_dir_chain_restart(r.d);
    for (unsigned c = 1; c < 4; c++)
        WR(&r, 0, 0x2000 + 64 * c);
    CHECK_EQ(chain(&r, 0, NULL), 0);
    for (unsigned c = 1; c < 4; c++) {
        RD(&r, c, 0x2000 + 64 * c);
        CHECK_EQ(chain(&r, c, NULL), 1);
        WR(&r, c, 0x3000 + 64 * c);
    }
    for (unsigned c = 1; c < 4; c++)
        RD(&r, 0, 0x3000 + 64 * c);
    CHECK_EQ(chain(&r, 0, &w), 4);
    CHECK_EQ(w, 10 + 10 + 20 + 20);    /* 1.0 out and back to CPU 1, then 2.0 for each of 2, 3 */
    /* A chain through a third CPU: 0 -> 2 -> 3 -> 0. */
    cm_dir_chain_restart(r.d);
    WR(&r, 0, 0x4000);
    RD(&r, 2, 0x4000);
    WR(&r, 2, 0x4040);
    RD(&r, 3, 0x4040);
    WR(&r, 3, 0x4080);
    RD(&r, 0, 0x4080);
    CHECK_EQ(chain(&r, 0, &w), 3);
    CHECK_EQ(w, 20 + 10 + 20);
    /* An atomic read-modify-write stalls on its read; a plain write to a
     * line another holds costs nothing; a CPU's own lines cost nothing. */
    cm_dir_chain_restart(r.d);
    WR(&r, 1, 0x5000);
    RD(&r, 0, 0x5000);          /* the read of a cmpxchg */
    WR(&r, 0, 0x5000);
    CHECK_EQ(chain(&r, 0, NULL), 1);
    RD(&r, 2, 0x5040);
    WR(&r, 0, 0x5040);          /* read-for-ownership, buffered */
    for (int i = 0; i < 100; i++)
        WR(&r, 0, 0x6000 + 64 * (uint64_t)(i % 8));
    CHECK_EQ(chain(&r, 0, NULL), 1);
    RD(&r, 2, 0x5040);          /* 2 gets 0's write: 0's clock then, plus one */
    CHECK_EQ(chain(&r, 2, NULL), 2);
    rig_free(&r);

    /* In regions: a region another began inside has no chain of its own. */
    rig_init(&r, 2, 1);
    FILE *f = tmpfile();
    CHECK(f != NULL);
    struct cm_regions g;
    CHECK(!cm_regions_init(&g, &r.m, &r.c, r.d, f, false, 0, NULL, NULL));
    cm_regions_marker(&g, 0, CM_OP_END, CM_TAG_boot, 0);
    cm_regions_marker(&g, 0, CM_OP_BEGIN, CM_TAG_unmap, 0);
    WR(&r, 0, 0x40);
    RD(&r, 1, 0x40);
    WR(&r, 1, 0x80);
    cm_regions_marker(&g, 1, CM_OP_BEGIN, CM_TAG_local, 0);
    RD(&r, 0, 0x80);            /* stamped before local began: one hop */
    cm_regions_marker(&g, 0, CM_OP_END, CM_TAG_local, 0);
    cm_regions_marker(&g, 0, CM_OP_END, CM_TAG_unmap, 0);
    cm_regions_finish(&g, 0);
    const char *text = read_all(f);
    HAS(line_of(text, 2), "\"region\":\"local\"");
    HAS(line_of(text, 2), "\"chain\":1,\"chain_weighted\":1.0");
    HAS(line_of(text, 3), "\"region\":\"unmap\"");
    CHECK(!strstr(line_of(text, 3), "chain"));
    cm_regions_free(&g);
    fclose(f);
    rig_free(&r);
}

/* -- arguments -------------------------------------------------------------------------------- */
static int parse(struct cm_config *cfg, unsigned ncpus, const char *line, char *err)
{
    static char copy[512];
    char *argv[16];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *t = strtok(copy, ","); t && argc < 16; t = strtok(NULL, ","))
        argv[argc++] = t;
    return cm_parse_args(argc, argv, ncpus, cfg, err, 256);
}

#define REFUSED(ncpus, line, needle)                                             \
    do {                                                                         \
        char e_[256] = "";                                                       \
        struct cm_config c_;                                                     \
        CHECK(parse(&c_, ncpus, line, e_) == -1);                                \
        HAS(e_, needle);                                                         \
    } while (0)

static void test_args(void)
{
    struct cm_config cfg;
    char err[256] = "";
    CHECK(!parse(&cfg, 4, "", err));
    CHECK_EQ(cfg.m.nnodes, 1);
    CHECK_EQ(cfg.m.dist[0][0], 10);
    CHECK_EQ(cfg.apic, 0xfee00000ull);
    CHECK(cfg.pairs);
    CHECK_EQ(cfg.hot, 0);
    CHECK(cfg.out == NULL);

    CHECK(!parse(&cfg, 8, "out=/tmp/x.jsonl,node=0-1+4-5,node=2-3+6-7,dist=10:31:31:10,"
                          "apic=0xFEC00000,pairs=off,hot=5", err));
    CHECK_STREQ(err, "");
    CHECK_STREQ(cfg.out, "/tmp/x.jsonl");
    CHECK_EQ(cfg.m.nnodes, 2);
    CHECK_EQ(cfg.m.node_of[4], 0);
    CHECK_EQ(cfg.m.node_of[6], 1);
    CHECK_EQ(cfg.m.dist[0][1], 31);
    CHECK_EQ(cm_cpu_dist(&cfg.m, 1, 7), 31);
    CHECK_EQ(cfg.apic, 0xfec00000ull);
    CHECK(!cfg.pairs);
    CHECK_EQ(cfg.hot, 5);
    CHECK(!parse(&cfg, 4, "node=0,node=1-3", err));
    CHECK_EQ(cfg.m.dist[1][0], 20);

    REFUSED(4, "speed=fast", "unknown argument 'speed'");
    REFUSED(4, "out", "argument 'out': expected KEY=VALUE");
    REFUSED(4, "out=", "out=: empty file name");
    REFUSED(4, "node=0-1,node=2", "CPU 3 is in no node=");
    REFUSED(4, "node=0-1,node=1-3", "CPU 1 is in node 0 already");
    REFUSED(4, "node=0-4", "CPU 4 does not exist");
    REFUSED(4, "node=3-1", "bad CPU range '3-1'");
    REFUSED(4, "node=a", "bad CPU range 'a'");
    REFUSED(4, "node=", "empty CPU list");
    REFUSED(4, "node=0-1+,node=2-3", "empty range after '+'");
    REFUSED(4, "node=0-1,node=2-3,dist=10:20:20", "3 values; 2 nodes need 4");
    REFUSED(4, "node=0-1,node=2-3,dist=10:20:20:10:20", "more than 4 values");
    REFUSED(4, "node=0-1,node=2-3,dist=11:20:20:10", "distance to itself must be 10");
    REFUSED(4, "node=0-1,node=2-3,dist=10:10:20:10", "remote distances are 11..255");
    REFUSED(4, "node=0-1,node=2-3,dist=10:256:20:10", "'256' is not a distance");
    REFUSED(4, "node=0-1,node=2-3,dist=10:20:20:", "trailing ':'");
    REFUSED(4, "dist=10:20:20:10", "dist= needs at least two node=");
    REFUSED(4, "apic=fee00000", "apic=fee00000: expected a page-aligned");
    REFUSED(4, "apic=0xfee00010", "page-aligned");
    REFUSED(4, "apic=0x1fee000000000000000", "page-aligned");
    REFUSED(4, "pairs=maybe", "pairs=maybe: use on or off");
    REFUSED(4, "hot=-1", "hot=-1: expected a number");
    REFUSED(4, "hot=5000", "hot=5000");
    REFUSED(0, "", "the machine has 0 CPUs");
    REFUSED(256, "", "the machine has 256 CPUs");
}

static void test_qemu_checks(void)
{
    char err[256] = "";
    CHECK(!cm_check_qemu("x86_64", true, 0, 1, 4, err, sizeof err));
    CHECK(!cm_check_qemu("x86_64", true, 1, 1, 255, err, sizeof err));
    CHECK(cm_check_qemu("x86_64", true, 2, 3, 4, err, sizeof err) == -1);
    HAS(err, "built for QEMU's plugin API version 1 (QEMU 7.2); this QEMU implements version 3 "
             "(oldest loadable 2)");
    CHECK(cm_check_qemu("x86_64", true, 0, 2, 4, err, sizeof err) == -1);
    HAS(err, "implements version 2");
    CHECK(cm_check_qemu("x86_64", false, 0, 1, 0, err, sizeof err) == -1);
    HAS(err, "full-system emulation");
    CHECK(cm_check_qemu("aarch64", true, 0, 1, 4, err, sizeof err) == -1);
    HAS(err, "needs an x86_64 guest (this QEMU emulates aarch64)");
    CHECK(cm_check_qemu("x86_64", true, 0, 1, 288, err, sizeof err) == -1);
    HAS(err, "288 CPUs");
}

/* The marker encoding the plugin decodes (plugin.c's marker_of). */
static void test_marker_encoding(void)
{
    CHECK_EQ(CM_DISP(CM_OP_BEGIN, CM_TAG_pingpong), 0xa7c30102u);
    CHECK_EQ(CM_DISP(CM_OP_ARG, CM_KEY_ops), 0xa7c30500u);
}

int main(void)
{
    test_memory_and_hits();
    test_pingpong();
    test_write_miss();
    test_readers();
    test_straddle_and_pages();
    test_many_cpus();
    test_log();
    test_regions();
    test_region_args();
    test_chain();
    test_args();
    test_qemu_checks();
    test_marker_encoding();
    return check_done();
}
