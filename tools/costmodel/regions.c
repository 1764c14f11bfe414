/* Measured regions and their JSON lines (regions.h). */
#include "regions.h"

#include <atoll/costmodel.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* -- names ------------------------------------------------------------------- */
#define NAME_CASE(n, name) case n: return #name;
#define KEY_CASE(n, name, sym) case n: return #name;
#define SYM_CASE(n, name, sym) case n: return sym;

const char *cm_tag_name(unsigned tag)
{
    switch (tag) {
    CM_TAGS(NAME_CASE)
    default: return NULL;
    }
}

const char *cm_key_name(unsigned key)
{
    switch (key) {
    CM_KEYS(KEY_CASE)
    default: return NULL;
    }
}

static bool key_symbolic(unsigned key)
{
    switch (key) {
    CM_KEYS(SYM_CASE)
    default: return false;
    }
}

const char *cm_word_name(unsigned word)
{
    switch (word) {
    CM_WORDS(NAME_CASE)
    default: return NULL;
    }
}

/* -- a growing line buffer ----------------------------------------------------- */
struct sbuf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct sbuf *b, const char *fmt, ...)
{
    for (;;) {
        if (b->failed)
            return;
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int k = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)k < room) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len <= (size_t)k)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void write_line(struct cm_regions *r, struct sbuf *b)
{
    put(b, "\n");
    if (!b->failed) {
        fwrite(b->s, 1, b->len, r->out);
        fflush(r->out);
    }
    free(b->s);
}

static void put_u64_list(struct sbuf *b, const char *name, const uint64_t *v, unsigned n)
{
    put(b, "\"%s\":[", name);
    for (unsigned i = 0; i < n; i++)
        put(b, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
    put(b, "]");
}

/* A count kept in tenths of a local transfer (distance-weighted), as a
 * decimal: ,"name":12.5 */
static void put_tenths(struct sbuf *b, const char *name, uint64_t tenths)
{
    put(b, ",\"%s\":%llu.%llu", name, (unsigned long long)(tenths / CM_LOCAL_DISTANCE),
        (unsigned long long)(tenths % CM_LOCAL_DISTANCE));
}

/* The count fields of a difference `d` (a region or the whole run). */
static void put_counts(struct cm_regions *r, struct sbuf *b, const struct cm_counts *d)
{
    unsigned n = d->n;
    uint64_t xfer = 0, inval = 0, weighted10 = 0, ipis = 0, insns = 0, reads = 0, writes = 0;
    uint64_t by_dist[256] = { 0 };
    for (unsigned s = 0; s < n; s++)
        for (unsigned t = 0; t < n; t++) {
            uint64_t x = d->xfer[(size_t)s * n + t];
            unsigned dist = cm_cpu_dist(r->m, s, t);
            xfer += x;
            inval += d->inval[(size_t)s * n + t];
            weighted10 += x * dist;
            by_dist[dist] += x;
        }
    for (unsigned i = 0; i < n; i++) {
        ipis += d->ipis[i];
        insns += d->insns[i];
        reads += d->reads[i];
        writes += d->writes[i];
    }
    put(b, ",\"transfers\":%llu", (unsigned long long)xfer);
    put_tenths(b, "transfers_weighted", weighted10);
    put(b, ",\"by_distance\":{");
    bool first = true;
    for (unsigned k = 0; k < 256; k++)
        if (by_dist[k]) {
            put(b, "%s\"%u\":%llu", first ? "" : ",", k, (unsigned long long)by_dist[k]);
            first = false;
        }
    put(b, "},\"invalidations\":%llu,\"ipis\":%llu,\"instructions\":%llu,\"reads\":%llu,"
           "\"writes\":%llu,\"per_cpu\":{",
        (unsigned long long)inval, (unsigned long long)ipis, (unsigned long long)insns,
        (unsigned long long)reads, (unsigned long long)writes);
    put_u64_list(b, "instructions", d->insns, n);
    put(b, ",");
    put_u64_list(b, "ipis", d->ipis, n);
    put(b, "}");
    if (r->pairs) {
        /* [from, to, transfers from->to, invalidations of from's copy by to] */
        put(b, ",\"pairs\":[");
        first = true;
        for (unsigned s = 0; s < n; s++)
            for (unsigned t = 0; t < n; t++) {
                uint64_t x = d->xfer[(size_t)s * n + t], v = d->inval[(size_t)s * n + t];
                if (!x && !v)
                    continue;
                put(b, "%s[%u,%u,%llu,%llu]", first ? "" : ",", s, t, (unsigned long long)x,
                    (unsigned long long)v);
                first = false;
            }
        put(b, "]");
    }
}

static void put_args(struct sbuf *b, const struct cm_arg *args, unsigned nargs)
{
    put(b, ",\"args\":{");
    for (unsigned i = 0; i < nargs; i++) {
        const char *key = cm_key_name(args[i].key);
        if (i)
            put(b, ",");
        if (key)
            put(b, "\"%s\":", key);
        else
            put(b, "\"key%u\":", args[i].key);
        const char *word = key_symbolic(args[i].key) ? cm_word_name(args[i].value) : NULL;
        if (word)
            put(b, "\"%s\"", word);
        else
            put(b, "%lu", (unsigned long)args[i].value);
    }
    put(b, "}");
}

/* d = now - start (elementwise). */
static void diff(struct cm_counts *d, const struct cm_counts *now, const struct cm_counts *start)
{
    size_t n = now->n;
    for (size_t i = 0; i < n * n; i++) {
        d->xfer[i] = now->xfer[i] - start->xfer[i];
        d->inval[i] = now->inval[i] - start->inval[i];
    }
    for (size_t i = 0; i < n; i++) {
        d->insns[i] = now->insns[i] - start->insns[i];
        d->ipis[i] = now->ipis[i] - start->ipis[i];
        d->reads[i] = now->reads[i] - start->reads[i];
        d->writes[i] = now->writes[i] - start->writes[i];
    }
}

/* -- hot lines --------------------------------------------------------------------- */
struct line_count {
    uint64_t line, xfer, inval;
};

static int by_line(const void *a, const void *b)
{
    const struct line_count *x = a, *y = b;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int by_heat(const void *a, const void *b)
{
    const struct line_count *x = a, *y = b;
    if (x->xfer != y->xfer)
        return x->xfer > y->xfer ? -1 : 1;
    if (x->inval != y->inval)
        return x->inval > y->inval ? -1 : 1;
    return by_line(a, b);
}

/* "hot_lines": [[address, transfers, invalidations], ...] of the events
 * since `start`, hottest first. */
static void put_hot(struct cm_regions *r, struct sbuf *b, size_t start, bool truncated)
{
    size_t n = r->log->len > start ? r->log->len - start : 0;
    struct line_count *v = n ? malloc(n * sizeof *v) : NULL;
    size_t k = 0;
    if (v) {
        for (size_t i = 0; i < n; i++) {
            const struct cm_event *e = &r->log->ev[start + i];
            v[i] = (struct line_count){ e->line, e->kind == CM_EV_TRANSFER,
                                        e->kind == CM_EV_INVALIDATION };
        }
        qsort(v, n, sizeof *v, by_line);
        for (size_t i = 0; i < n; i++) {
            if (k && v[k - 1].line == v[i].line) {
                v[k - 1].xfer += v[i].xfer;
                v[k - 1].inval += v[i].inval;
            } else {
                v[k++] = v[i];
            }
        }
        qsort(v, k, sizeof *v, by_heat);
    }
    put(b, ",\"hot_lines\":[");
    for (size_t i = 0; i < k && i < r->hot; i++)
        put(b, "%s[\"0x%llx\",%llu,%llu]", i ? "," : "",
            (unsigned long long)(v[i].line << CM_LINE_SHIFT), (unsigned long long)v[i].xfer,
            (unsigned long long)v[i].inval);
    put(b, "]");
    if (truncated || (n && !v))
        put(b, ",\"hot_lines_truncated\":true");
    free(v);
}

/* -- regions -------------------------------------------------------------------- */
static void emit_region(struct cm_regions *r, struct cm_region *g, int end_cpu, unsigned after,
                        const struct cm_arg *more, unsigned nmore)
{
    diff(&r->scratch, r->now, &g->start);
    if (end_cpu >= 0 && r->scratch.insns[end_cpu] >= after)
        r->scratch.insns[end_cpu] -= after;   /* the rest of END's block is outside */
    /* END's arguments complete or override BEGIN's. */
    struct cm_arg args[2 * CM_MAX_ARGS];
    unsigned nargs = 0;
    for (unsigned i = 0; i < g->nargs; i++)
        args[nargs++] = g->args[i];
    for (unsigned i = 0; i < nmore; i++) {
        unsigned j = 0;
        while (j < nargs && args[j].key != more[i].key)
            j++;
        args[j] = more[i];
        if (j == nargs)
            nargs++;
    }
    struct sbuf b = { 0 };
    const char *name = cm_tag_name(g->tag);
    put(&b, "{\"type\":\"region\",\"region\":");
    if (name)
        put(&b, "\"%s\"", name);
    else
        put(&b, "\"tag%u\"", g->tag);
    put(&b, ",\"seq\":%llu,\"cpu\":%u", (unsigned long long)g->seq, g->cpu);
    if (end_cpu >= 0)
        put(&b, ",\"end_cpu\":%d", end_cpu);
    else
        put(&b, ",\"unclosed\":true");
    put_args(&b, args, nargs);
    put_counts(r, &b, &r->scratch);
    if (end_cpu >= 0 && r->dir && g->chain_epoch == cm_dir_chain_epoch(r->dir)) {
        uint64_t hops, w10;
        cm_dir_chain_of(r->dir, (unsigned)end_cpu, &hops, &w10);
        put(&b, ",\"chain\":%llu", (unsigned long long)hops);
        put_tenths(&b, "chain_weighted", w10);
    }
    if (r->hot && r->log)
        put_hot(r, &b, g->log_start, r->log->truncated);
    put(&b, "}");
    write_line(r, &b);
}

static struct cm_region *find_open(struct cm_regions *r, unsigned tag)
{
    for (unsigned i = 0; i < CM_MAX_OPEN; i++)
        if (r->open[i].open && r->open[i].tag == tag)
            return &r->open[i];
    return NULL;
}

static void begin(struct cm_regions *r, unsigned tag, unsigned cpu, unsigned after,
                  const struct cm_spell *sp)
{
    bool any_open = false;
    for (unsigned i = 0; i < CM_MAX_OPEN; i++)
        any_open |= r->open[i].open;
    if (!any_open && r->log) {
        r->log->len = 0;        /* no region needs the events so far */
        r->log->truncated = false;
    }
    struct cm_region *g = find_open(r, tag);    /* BEGIN again restarts it */
    for (unsigned i = 0; !g && i < CM_MAX_OPEN; i++)
        if (!r->open[i].open)
            g = &r->open[i];
    if (!g) {
        r->bad_markers++;       /* more open regions than the table holds */
        return;
    }
    g->open = true;
    g->tag = (uint8_t)tag;
    g->seq = r->seq++;
    g->cpu = cpu;
    g->nargs = sp ? sp->nargs : 0;
    if (sp)
        memcpy(g->args, sp->args, sizeof g->args);
    cm_counts_copy(&g->start, r->now);
    if (r->dir) {
        cm_dir_chain_restart(r->dir);
        g->chain_epoch = cm_dir_chain_epoch(r->dir);
    }
    g->log_start = r->log ? r->log->len : 0;
    if (g->start.insns[cpu] >= after)
        g->start.insns[cpu] -= after;   /* the rest of BEGIN's block is inside */
}

int cm_regions_init(struct cm_regions *r, const struct cm_machine *m, const struct cm_counts *now,
                    struct cm_dir *dir, FILE *out, bool pairs, unsigned hot, struct cm_log *log,
                    const char *extra_config_json)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->now = now;
    r->dir = dir;
    r->out = out;
    r->pairs = pairs;
    r->hot = hot;
    r->log = log;
    if (cm_counts_init(&r->scratch, m->ncpus))
        return -1;
    for (unsigned i = 0; i < CM_MAX_OPEN; i++)
        if (cm_counts_init(&r->open[i].start, m->ncpus)) {
            cm_regions_free(r);
            return -1;
        }
    struct sbuf b = { 0 };
    put(&b, "{\"type\":\"config\",\"plugin\":\"atoll-costmodel\",\"cpus\":%u,\"line_bytes\":%u,"
            "\"nodes\":[", m->ncpus, 64u);
    for (unsigned k = 0; k < m->nnodes; k++) {
        put(&b, "%s[", k ? "," : "");
        bool first = true;
        for (unsigned c = 0; c < m->ncpus; c++)
            if (m->node_of[c] == k) {
                put(&b, "%s%u", first ? "" : ",", c);
                first = false;
            }
        put(&b, "]");
    }
    put(&b, "],\"dist\":[");
    for (unsigned i = 0; i < m->nnodes; i++) {
        put(&b, "%s[", i ? "," : "");
        for (unsigned j = 0; j < m->nnodes; j++)
            put(&b, "%s%u", j ? "," : "", m->dist[i][j]);
        put(&b, "]");
    }
    put(&b, "]%s%s}", extra_config_json && *extra_config_json ? "," : "",
        extra_config_json ? extra_config_json : "");
    write_line(r, &b);
    begin(r, CM_TAG_boot, 0, 0, NULL);
    return 0;
}

void cm_regions_free(struct cm_regions *r)
{
    cm_counts_free(&r->scratch);
    for (unsigned i = 0; i < CM_MAX_OPEN; i++)
        cm_counts_free(&r->open[i].start);
}

static void push_arg(struct cm_regions *r, struct cm_spell *sp, unsigned key)
{
    uint32_t v = sp->value;
    bool overflow = sp->bits > 32;
    sp->value = 0;
    sp->bits = 0;
    if (overflow) {
        r->bad_markers++;
        return;
    }
    for (unsigned i = 0; i < sp->nargs; i++)
        if (sp->args[i].key == key) {
            sp->args[i].value = v;
            return;
        }
    if (sp->nargs == CM_MAX_ARGS) {
        r->bad_markers++;
        return;
    }
    sp->args[sp->nargs].key = (uint8_t)key;
    sp->args[sp->nargs].value = v;
    sp->nargs++;
}

void cm_regions_marker(struct cm_regions *r, unsigned cpu, unsigned op, unsigned operand,
                       unsigned after)
{
    if (cpu >= r->m->ncpus)
        return;
    struct cm_spell *sp = &r->spell[cpu];
    switch (op) {
    case CM_OP_BIT0:
    case CM_OP_BIT1:
        sp->value = sp->value << 1 | (op == CM_OP_BIT1);
        sp->bits++;
        break;
    case CM_OP_ARG:
        push_arg(r, sp, operand & 0xff);
        break;
    case CM_OP_BEGIN:
        begin(r, operand & 0xff, cpu, after, sp);
        sp->nargs = 0;
        break;
    case CM_OP_END: {
        struct cm_region *g = find_open(r, operand & 0xff);
        if (g) {
            emit_region(r, g, (int)cpu, after, sp->args, sp->nargs);
            g->open = false;
        } else {
            r->bad_markers++;
        }
        sp->nargs = 0;
        break;
    }
    default:
        r->bad_markers++;
        break;
    }
}

void cm_regions_finish(struct cm_regions *r, uint64_t directory_pages)
{
    for (unsigned i = 0; i < CM_MAX_OPEN; i++)
        if (r->open[i].open) {
            emit_region(r, &r->open[i], -1, 0, NULL, 0);
            r->open[i].open = false;
        }
    struct sbuf b = { 0 };
    put(&b, "{\"type\":\"total\",\"regions\":%llu,\"bad_markers\":%llu,\"directory_pages\":%llu",
        (unsigned long long)r->seq, (unsigned long long)r->bad_markers,
        (unsigned long long)directory_pages);
    put_counts(r, &b, r->now);
    put(&b, "}");
    write_line(r, &b);
}
