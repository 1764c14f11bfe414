/* Plugin arguments and QEMU checks (args.h). Every value is checked. */
#include "args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A decimal number in [lo, hi] spanning exactly s[0..len). */
static bool number(const char *s, size_t len, unsigned long lo, unsigned long hi, unsigned long *out)
{
    unsigned long v = 0;
    if (len == 0 || len > 10)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "0x" and 1..16 hexadecimal digits, nothing else. */
static bool hex_address(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
        return false;
    for (s += 2; *s; s++, n++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return false;
        if (n == 16)
            return false;
        v = v << 4 | d;
    }
    *out = v;
    return n > 0;
}

/* "0-3+8" -> marks node k on those CPUs. */
static int parse_node(const char *val, unsigned k, struct cm_machine *m, bool *seen, char *err,
                      size_t errlen)
{
    const char *p = val;
    if (!*p)
        return fail(err, errlen, "node=: empty CPU list (use ranges like 0-3+8-11)");
    while (*p) {
        const char *end = strchr(p, '+');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *dash = memchr(p, '-', len);
        unsigned long a, b;
        bool ok = dash ? number(p, (size_t)(dash - p), 0, CM_MAX_CPUS - 1, &a) &&
                             number(dash + 1, len - (size_t)(dash - p) - 1, 0, CM_MAX_CPUS - 1, &b)
                       : number(p, len, 0, CM_MAX_CPUS - 1, &a) && (b = a, true);
        if (!ok || b < a)
            return fail(err, errlen, "node=%s: bad CPU range '%.*s' (use ranges like 0-3+8-11)",
                        val, (int)len, p);
        for (unsigned long c = a; c <= b; c++) {
            if (c >= m->ncpus)
                return fail(err, errlen, "node=%s: CPU %lu does not exist (the machine has %u)",
                            val, c, m->ncpus);
            if (seen[c])
                return fail(err, errlen, "node=%s: CPU %lu is in node %u already", val, c,
                            m->node_of[c]);
            seen[c] = true;
            m->node_of[c] = (uint8_t)k;
        }
        p += len;
        if (*p == '+')
            p++;
        if (end && !*p)
            return fail(err, errlen, "node=%s: empty range after '+'", val);
    }
    return 0;
}

static int parse_dist(const char *val, struct cm_machine *m, char *err, size_t errlen)
{
    unsigned k = m->nnodes, i = 0;
    const char *p = val;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned long v;
        if (!number(p, len, 0, 255, &v))
            return fail(err, errlen, "dist=%s: '%.*s' is not a distance 10..255", val, (int)len, p);
        if (i >= k * k)
            return fail(err, errlen, "dist=%s: more than %u values for %u nodes", val, k * k, k);
        unsigned row = i / k, col = i % k;
        if (row == col && v != CM_LOCAL_DISTANCE)
            return fail(err, errlen, "dist=%s: node %u's distance to itself must be 10, not %lu",
                        val, row, v);
        if (row != col && (v <= CM_LOCAL_DISTANCE || v > 255))
            return fail(err, errlen, "dist=%s: distance %u-%u = %lu: remote distances are 11..255",
                        val, row, col, v);
        m->dist[row][col] = (uint8_t)v;
        i++;
        p += len;
        if (*p == ':' && !*++p)
            return fail(err, errlen, "dist=%s: trailing ':'", val);
    }
    if (i != k * k)
        return fail(err, errlen, "dist=%s: %u values; %u nodes need %u (row by row)", val, i, k,
                    k * k);
    return 0;
}

int cm_parse_args(int argc, char **argv, unsigned ncpus, struct cm_config *cfg, char *err,
                  size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->apic = CM_DEFAULT_APIC;
    cfg->pairs = true;
    struct cm_machine *m = &cfg->m;
    if (ncpus == 0 || ncpus > CM_MAX_CPUS - 1)
        return fail(err, errlen, "the machine has %u CPUs; the cost model handles 1..%u", ncpus,
                    CM_MAX_CPUS - 1);
    m->ncpus = ncpus;
    bool seen[CM_MAX_CPUS] = { false };
    const char *dist = NULL;
    unsigned nodes = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        if (!eq)
            return fail(err, errlen, "argument '%s': expected KEY=VALUE", a);
        size_t klen = (size_t)(eq - a);
        const char *val = eq + 1;
        if (klen == 3 && !strncmp(a, "out", 3)) {
            if (!*val)
                return fail(err, errlen, "out=: empty file name");
            cfg->out = val;
        } else if (klen == 4 && !strncmp(a, "node", 4)) {
            if (nodes == CM_MAX_NODES)
                return fail(err, errlen, "more than %u node= arguments", CM_MAX_NODES);
            if (parse_node(val, nodes, m, seen, err, errlen))
                return -1;
            nodes++;
        } else if (klen == 4 && !strncmp(a, "dist", 4)) {
            dist = val;
        } else if (klen == 4 && !strncmp(a, "apic", 4)) {
            if (!hex_address(val, &cfg->apic) || (cfg->apic & 0xfff))
                return fail(err, errlen, "apic=%s: expected a page-aligned hexadecimal address "
                            "such as 0xfee00000", val);
        } else if (klen == 5 && !strncmp(a, "pairs", 5)) {
            if (!strcmp(val, "on"))
                cfg->pairs = true;
            else if (!strcmp(val, "off"))
                cfg->pairs = false;
            else
                return fail(err, errlen, "pairs=%s: use on or off", val);
        } else if (klen == 3 && !strncmp(a, "hot", 3)) {
            unsigned long v;
            if (!number(val, strlen(val), 0, 1000, &v))
                return fail(err, errlen, "hot=%s: expected a number of lines 0..1000", val);
            cfg->hot = (unsigned)v;
        } else {
            return fail(err, errlen, "unknown argument '%.*s' (known: out, node, dist, apic, "
                        "pairs, hot)", (int)klen, a);
        }
    }
    if (nodes == 0) {
        m->nnodes = 1;              /* node_of is all 0 already */
    } else {
        m->nnodes = nodes;
        for (unsigned c = 0; c < ncpus; c++)
            if (!seen[c])
                return fail(err, errlen, "CPU %u is in no node=: the nodes must cover CPUs 0-%u",
                            c, ncpus - 1);
    }
    for (unsigned i = 0; i < m->nnodes; i++)
        for (unsigned j = 0; j < m->nnodes; j++)
            m->dist[i][j] = i == j ? CM_LOCAL_DISTANCE : 20;
    if (dist) {
        if (m->nnodes < 2)
            return fail(err, errlen, "dist= needs at least two node= arguments");
        if (parse_dist(dist, m, err, errlen))
            return -1;
    }
    return 0;
}

int cm_check_qemu(const char *target, bool system_emulation, int api_min, int api_cur,
                  int ncpus, char *err, size_t errlen)
{
    if (api_min > CM_API_VERSION || api_cur != CM_API_VERSION)
        return fail(err, errlen, "this plugin is built for QEMU's plugin API version %d (QEMU "
                    "7.2); this QEMU implements version %d (oldest loadable %d): declare its API "
                    "in tools/costmodel/qemu_plugin_api.h and rebuild",
                    CM_API_VERSION, api_cur, api_min);
    if (!system_emulation)
        return fail(err, errlen, "needs full-system emulation (qemu-system-x86_64), not user mode");
    if (!target || strcmp(target, "x86_64"))
        return fail(err, errlen, "needs an x86_64 guest (this QEMU emulates %s)",
                    target ? target : "an unknown target");
    if (ncpus < 1 || ncpus > CM_MAX_CPUS - 1)
        return fail(err, errlen, "the machine has %d CPUs; the cost model handles 1..%d", ncpus,
                    CM_MAX_CPUS - 1);
    return 0;
}
