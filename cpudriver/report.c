/* JSON event lines; see report.h. */
#include "report.h"
#include "console.h"
#include "lib.h"

static void add(struct event *e, const char *s, size_t n)
{
    if (e->len + n + 2 >= sizeof e->buf) {
        e->overflow = true;
        return;
    }
    memcpy(e->buf + e->len, s, n);
    e->len += n;
}

static void adds(struct event *e, const char *s) { add(e, s, strlen(s)); }

static void addf(struct event *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct event *e, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    add(e, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A comma unless this is the first member of an object or array. */
static void sep(struct event *e)
{
    char last = e->len ? e->buf[e->len - 1] : '{';
    if (last != '{' && last != '[')
        add(e, ",", 1);
}

static void key(struct event *e, const char *k)
{
    sep(e);
    if (k) {
        addf(e, "\"%s\":", k);
    }
}

void event_begin(struct event *e, const char *name)
{
    e->len = 0;
    e->overflow = false;
    adds(e, "@atoll {");
    event_str(e, "event", name);
}

void event_u64(struct event *e, const char *k, uint64_t v) { key(e, k); addf(e, "%llu", (unsigned long long)v); }
void event_hex(struct event *e, const char *k, uint64_t v) { key(e, k); addf(e, "\"0x%llx\"", (unsigned long long)v); }
void event_bool(struct event *e, const char *k, bool v) { key(e, k); adds(e, v ? "true" : "false"); }

void event_fixed3(struct event *e, const char *k, uint64_t t)
{
    key(e, k);
    addf(e, "%llu.%03llu", (unsigned long long)(t / 1000), (unsigned long long)(t % 1000));
}

void event_strn(struct event *e, const char *k, const char *s, size_t n)
{
    key(e, k);
    add(e, "\"", 1);
    for (size_t i = 0; i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            add(e, esc, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            addf(e, "\\u%04x", c);
        } else {
            add(e, (const char *)&c, 1);
        }
    }
    add(e, "\"", 1);
}

void event_str(struct event *e, const char *k, const char *s) { event_strn(e, k, s, (size_t)-1); }
void event_array_begin(struct event *e, const char *k) { key(e, k); add(e, "[", 1); }
void event_elem_u64(struct event *e, uint64_t v) { sep(e); addf(e, "%llu", (unsigned long long)v); }
void event_array_end(struct event *e) { add(e, "]", 1); }

void event_end(struct event *e)
{
    if (e->overflow) {
        /* Never print broken JSON: say what happened instead. */
        e->len = 0;
        e->overflow = false;
        adds(e, "@atoll {\"event\":\"event_overflow\"");
    }
    /* add() always leaves room for these two bytes. */
    e->buf[e->len++] = '}';
    e->buf[e->len++] = '\n';
    console_write(e->buf, e->len);
}
