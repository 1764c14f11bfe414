/* The boot manifest; see manifest.h. Pure and freestanding. */
#include "manifest.h"
#include <atoll/fmt.h>
#include <atoll/string.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static bool plain_word(const char *w)
{
    if (!*w)
        return false;
    for (; *w; w++)
        if (!is_word_char(*w))
            return false;
    return true;
}

/* The next word of `line` into `out` (truncated words are refused by the
 * caller: *too_long). */
static const char *word(const char *p, char *out, size_t size, bool *too_long)
{
    while (is_space(*p))
        p++;
    size_t n = 0;
    while (*p && !is_space(*p)) {
        if (n + 1 < size)
            out[n++] = *p;
        else
            *too_long = true;
        p++;
    }
    out[n] = 0;
    return p;
}

static bool parse_uint(const char *s, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    if (s == end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > 100000)
            return false;
        v = v * 10 + (uint32_t)(*s - '0');
    }
    *out = v;
    return true;
}

static bool node_has_cores(const struct machine_shape *m, uint32_t node)
{
    for (uint32_t c = 0; c < m->ncores && c < MANIFEST_MAX_CORES; c++)
        if (m->core_node[c] == node)
            return true;
    return false;
}

/* "0,2" or "1-3" or "0,2-3": a bit per node. */
static bool parse_nodes(const char *s, const struct machine_shape *m, uint64_t *nodes, char *why, size_t size)
{
    *nodes = 0;
    while (*s) {
        const char *end = s;
        while (*end && *end != ',')
            end++;
        const char *dash = s;
        while (dash < end && *dash != '-')
            dash++;
        uint32_t a, b;
        if (!parse_uint(s, dash, &a) || !(dash == end ? (b = a, true) : parse_uint(dash + 1, end, &b)) || b < a) {
            snprintf(why, size, "bad node list (use nodes:0,2 or nodes:1-3)");
            return false;
        }
        for (uint32_t n = a; n <= b; n++) {
            if (n >= m->nnodes || n >= 64) {
                snprintf(why, size, "node %u does not exist (the machine has %u)", n, m->nnodes);
                return false;
            }
            if (!node_has_cores(m, n)) {
                snprintf(why, size, "node %u has no cores", n);
                return false;
            }
            *nodes |= 1ull << n;
        }
        s = *end ? end + 1 : end;
    }
    return *nodes != 0;
}

static bool parse_placement(struct manifest_service *s, const struct machine_shape *m, char *why, size_t size)
{
    const char *p = s->placement;
    static const char *const node_cores[] = { [NODE_FIRST] = "per-node", [NODE_LAST] = "per-node:last",
                                              [NODE_SPARE] = "per-node:spare" };
    for (unsigned i = 0; i < sizeof node_cores / sizeof node_cores[0]; i++)
        if (!strcmp(p, node_cores[i])) {
            s->kind = PLACE_PER_NODE;
            s->node_core = (enum node_core)i;
            return true;
        }
    if (!strcmp(p, "per-core")) {
        s->kind = PLACE_PER_CORE;
        return true;
    }
    if (!strncmp(p, "core:", 5)) {
        s->kind = PLACE_CORE;
        if (!parse_uint(p + 5, p + strlen(p), &s->core)) {
            snprintf(why, size, "bad core number in '%s'", p);
            return false;
        }
        if (s->core >= m->ncores) {
            snprintf(why, size, "core %u does not exist (the machine has %u)", s->core, m->ncores);
            return false;
        }
        return true;
    }
    if (!strncmp(p, "nodes:", 6)) {
        s->kind = PLACE_NODES;
        return parse_nodes(p + 6, m, &s->nodes, why, size);
    }
    snprintf(why, size, "unknown placement '%s' (core:K, per-node, per-node:last, per-node:spare, per-core, nodes:LIST)", p);
    return false;
}

static void refuse(struct manifest_service *s, const char *why)
{
    s->refused = true;
    snprintf(s->why, sizeof s->why, "line %u: %s: %s", s->line, s->name[0] ? s->name : "?", why);
}

/* "after=a,b" into s->deps. */
static bool parse_deps(struct manifest_service *s, const char *list, char *why, size_t size)
{
    while (*list) {
        if (s->ndeps == MANIFEST_MAX_DEPS) {
            snprintf(why, size, "more than %u dependencies", MANIFEST_MAX_DEPS);
            return false;
        }
        size_t n = 0;
        char *d = s->deps[s->ndeps];
        while (*list && *list != ',') {
            if (n + 1 >= MANIFEST_NAME_MAX) {
                snprintf(why, size, "dependency name too long");
                return false;
            }
            d[n++] = *list++;
        }
        d[n] = 0;
        if (!plain_word(d)) {
            snprintf(why, size, "bad dependency name in after=");
            return false;
        }
        s->ndeps++;
        if (*list)
            list++;
    }
    return true;
}

static void parse_line(struct manifest *mf, const char *line, unsigned lineno, const struct machine_shape *m)
{
    char first[MANIFEST_NAME_MAX];
    bool too_long = false;
    const char *p = word(line, first, sizeof first, &too_long);
    if (!first[0] || first[0] == '#')
        return;   /* blank or a comment */
    if (mf->n == MANIFEST_MAX_SERVICES) {
        mf->refused++;
        if (!mf->beyond++)
            mf->first_beyond = lineno;
        return;
    }
    struct manifest_service *s = &mf->svc[mf->n++];
    *s = (struct manifest_service){ .line = lineno };
    memcpy(s->name, first, sizeof s->name);
    char why[MANIFEST_WHY_MAX];
    p = word(p, s->program, sizeof s->program, &too_long);
    p = word(p, s->placement, sizeof s->placement, &too_long);
    if (!s->placement[0]) {
        refuse(s, "expected NAME PROGRAM PLACEMENT [after=DEPS] [restart=N] [backoff=MS] [heartbeat=yes|no] [ARGS]");
        return;
    }
    if (too_long) {
        refuse(s, "a word is too long");
        return;
    }
    if (!plain_word(s->name) || !plain_word(s->program)) {
        refuse(s, "names and programs are plain words (letters, digits, . _ -)");
        return;
    }
    for (unsigned i = 0; i + 1 < mf->n; i++)
        if (!strcmp(mf->svc[i].name, s->name)) {
            snprintf(why, sizeof why, "a service of this name is on line %u already", mf->svc[i].line);
            refuse(s, why);
            return;
        }
    if (!parse_placement(s, m, why, sizeof why)) {
        refuse(s, why);
        return;
    }
    s->restart_limit = MANIFEST_RESTART_DEFAULT;
    s->backoff_ms = MANIFEST_BACKOFF_DEFAULT_MS;
    /* Options, in any order, before the arguments: after=, restart=, backoff=, heartbeat=. */
    for (;;) {
        while (is_space(*p))
            p++;
        char opt[MANIFEST_ARGS_MAX];
        const char *q = word(p, opt, sizeof opt, &too_long);
        uint32_t v = 0;
        if (!strncmp(opt, "after=", 6)) {
            if (!parse_deps(s, opt + 6, why, sizeof why)) {
                refuse(s, why);
                return;
            }
        } else if (!strncmp(opt, "restart=", 8)) {
            if (!parse_uint(opt + 8, opt + strlen(opt), &v) || v > MANIFEST_RESTART_MAX) {
                snprintf(why, sizeof why, "restart= takes 0..%u (failed starts in a row)", MANIFEST_RESTART_MAX);
                refuse(s, why);
                return;
            }
            s->restart_limit = v;
        } else if (!strncmp(opt, "backoff=", 8)) {
            if (!parse_uint(opt + 8, opt + strlen(opt), &v) || v > MANIFEST_BACKOFF_MAX_MS) {
                snprintf(why, sizeof why, "backoff= takes 0..%u (milliseconds)", MANIFEST_BACKOFF_MAX_MS);
                refuse(s, why);
                return;
            }
            s->backoff_ms = v;
        } else if (!strcmp(opt, "heartbeat=yes") || !strcmp(opt, "heartbeat=no")) {
            s->heartbeat = opt[10] == 'y';
        } else {
            break;
        }
        p = q;
    }
    size_t n = strlen(p);
    while (n && is_space(p[n - 1]))
        n--;
    if (n >= sizeof s->args) {
        refuse(s, "arguments too long");
        return;
    }
    memcpy(s->args, p, n);
    s->args[n] = 0;
}

static int index_of(const struct manifest *mf, const char *name)
{
    for (unsigned i = 0; i < mf->n; i++)
        if (!strcmp(mf->svc[i].name, name))
            return (int)i;
    return -1;
}

/* Dependencies first (a depth-first walk); a service whose dependency is
 * missing or refused is refused; a cycle refuses every service on it. */
static void order(struct manifest *mf)
{
    enum { WHITE, GREY, BLACK } colour[MANIFEST_MAX_SERVICES] = { 0 };
    for (unsigned root = 0; root < mf->n; root++) {
        if (colour[root] != WHITE)
            continue;
        /* An explicit stack: (service, next dependency to look at). */
        unsigned stack[MANIFEST_MAX_SERVICES], next[MANIFEST_MAX_SERVICES], depth = 0;
        stack[depth] = root;
        next[depth++] = 0;
        colour[root] = GREY;
        while (depth) {
            unsigned i = stack[depth - 1];
            struct manifest_service *s = &mf->svc[i];
            if (!s->refused && next[depth - 1] < s->ndeps) {
                const char *dep = s->deps[next[depth - 1]++];
                int d = index_of(mf, dep);
                char why[MANIFEST_WHY_MAX];
                if (d < 0) {
                    snprintf(why, sizeof why, "needs '%s', which the manifest does not name", dep);
                    refuse(s, why);
                } else if (colour[d] == GREY) {
                    snprintf(why, sizeof why, "its dependencies go round in a circle (through '%s')", dep);
                    unsigned from = depth - 1;   /* the circle: from d up the stack to here */
                    while (from > 0 && stack[from] != (unsigned)d)
                        from--;
                    for (unsigned k = from; k < depth; k++)
                        if (!mf->svc[stack[k]].refused)
                            refuse(&mf->svc[stack[k]], why);
                } else if (colour[d] == WHITE) {
                    colour[d] = GREY;
                    stack[depth] = (unsigned)d;
                    next[depth++] = 0;
                } else if (mf->svc[d].refused) {
                    snprintf(why, sizeof why, "needs '%s', which was refused", dep);
                    refuse(s, why);
                }
                continue;
            }
            /* All its dependencies are placed (or it is refused). */
            for (unsigned k = 0; !s->refused && k < s->ndeps; k++) {
                int d = index_of(mf, s->deps[k]);
                if (d >= 0 && mf->svc[d].refused) {
                    char why[MANIFEST_WHY_MAX];
                    snprintf(why, sizeof why, "needs '%s', which was refused", s->deps[k]);
                    refuse(s, why);
                }
            }
            colour[i] = BLACK;
            if (!s->refused)
                mf->order[mf->norder++] = i;
            depth--;
        }
    }
    mf->refused = 0;
    for (unsigned i = 0; i < mf->n; i++)
        mf->refused += mf->svc[i].refused;
}

void manifest_parse(const char *text, size_t len, const struct machine_shape *m, struct manifest *out)
{
    *out = (struct manifest){ 0 };
    char line[256];
    unsigned lineno = 0;
    size_t i = 0;
    while (i < len) {
        size_t n = 0;
        bool long_line = false;
        lineno++;
        while (i < len && text[i] != '\n') {
            char c = text[i++];
            if (n + 1 < sizeof line)
                line[n++] = c ? c : ' ';
            else
                long_line = true;
        }
        i++;   /* the newline */
        line[n] = 0;
        unsigned before = out->n;
        parse_line(out, line, lineno, m);
        if (long_line && out->n > before)
            refuse(&out->svc[out->n - 1], "line too long (255 characters at most)");
    }
    order(out);
}

/* Whether no core after c shares its node. */
static bool last_of_node(const struct machine_shape *m, uint32_t c)
{
    for (uint32_t d = c + 1; d < m->ncores && d < MANIFEST_MAX_CORES; d++)
        if (m->core_node[d] == m->core_node[c])
            return false;
    return true;
}

static uint32_t cores_of_node(const struct machine_shape *m, uint32_t node)
{
    uint32_t n = 0;
    for (uint32_t c = 0; c < m->ncores && c < MANIFEST_MAX_CORES; c++)
        n += m->core_node[c] == node;
    return n;
}

/* Whether a per-node instance of s goes on its node's last core. */
static bool on_last_core(const struct manifest_service *s, const struct machine_shape *m, uint32_t node)
{
    return s->node_core == NODE_LAST ||
           (s->node_core == NODE_SPARE && cores_of_node(m, node) >= MANIFEST_SPARE_CORES);
}

unsigned manifest_cores(const struct manifest_service *s, const struct machine_shape *m, uint32_t *cores,
                        unsigned max)
{
    unsigned n = 0;
    bool seen[MANIFEST_MAX_NODES + 48] = { false };
    for (uint32_t c = 0; c < m->ncores && c < MANIFEST_MAX_CORES && n < max; c++) {
        uint32_t node = m->core_node[c];
        bool take = false;
        switch (s->kind) {
        case PLACE_CORE: take = c == s->core; break;
        case PLACE_PER_CORE: take = true; break;
        case PLACE_PER_NODE:
            take = node < sizeof seen && !seen[node] && (!on_last_core(s, m, node) || last_of_node(m, c));
            break;
        case PLACE_NODES: take = node < 64 && (s->nodes >> node & 1) && node < sizeof seen && !seen[node]; break;
        }
        if (take) {
            if (node < sizeof seen)
                seen[node] = true;
            cores[n++] = c;
        }
    }
    return n;
}

/* The placement's cores as runs, "0,4" or "0-7": a replicated service
 * learns its members from it ($cores). */
static void format_cores(const struct manifest_service *s, const struct machine_shape *m, char *out, size_t size)
{
    static uint32_t cores[MANIFEST_MAX_CORES];
    unsigned n = manifest_cores(s, m, cores, MANIFEST_MAX_CORES);
    size_t len = 0;
    out[0] = 0;
    for (unsigned i = 0; i < n && len < size;) {
        unsigned j = i;
        while (j + 1 < n && cores[j + 1] == cores[j] + 1)
            j++;
        int w = j > i ? snprintf(out + len, size - len, "%s%u-%u", len ? "," : "", cores[i], cores[j])
                      : snprintf(out + len, size - len, "%s%u", len ? "," : "", cores[i]);
        if (w < 0 || (size_t)w >= size - len) {
            out[0] = 0;   /* too many runs: the command will not fit either */
            return;
        }
        len += (size_t)w;
        i = j + 1;
    }
}

errval_t manifest_command(const struct manifest_service *s, const struct machine_shape *m, uint32_t core,
                          uint64_t key, uint32_t life, char *out, size_t size)
{
    size_t n = 0;
    int w = snprintf(out, size, "%s%s", s->program, s->args[0] ? " " : "");
    if (w < 0 || (size_t)w >= size)
        return ERR_MSG_TOO_LONG;
    n = (size_t)w;
    for (const char *p = s->args; *p;) {
        char piece[MANIFEST_ARGS_MAX];
        const char *add = piece;
        if (!strncmp(p, "$cores", 6)) {
            format_cores(s, m, piece, sizeof piece);
            if (!piece[0])
                return ERR_MSG_TOO_LONG;
            p += 6;
        } else if (!strncmp(p, "$name", 5)) {
            add = s->name;
            p += 5;
        } else if (!strncmp(p, "$life", 5)) {
            snprintf(piece, sizeof piece, "%u", life);
            p += 5;
        } else if (!strncmp(p, "$key", 4)) {
            snprintf(piece, sizeof piece, "%llx", (unsigned long long)key);
            p += 4;
        } else if (!strncmp(p, "$core", 5)) {
            snprintf(piece, sizeof piece, "%u", core);
            p += 5;
        } else {
            piece[0] = *p++;
            piece[1] = 0;
        }
        size_t k = strlen(add);
        if (n + k >= size)
            return ERR_MSG_TOO_LONG;
        memcpy(out + n, add, k);
        n += k;
    }
    out[n] = 0;
    return ERR_OK;
}
