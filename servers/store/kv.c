/* The store's table (kv.h): a sorted array of entries, binary search. */
#include "kv.h"
#ifdef ATOLL_USER
#include <atoll/lib.h>
#else
#include <stdlib.h>
#include <string.h>
#endif

errval_t kv_check_key(const char *key)
{
    size_t n = 0;
    for (; key[n]; n++)
        if (n >= STORE_KEY_MAX || key[n] <= ' ' || key[n] > '~')
            return ERR_STORE_KEY;
    return n ? ERR_OK : ERR_STORE_KEY;
}

errval_t kv_check_write(const struct kv_write *w)
{
    if (w->op != KV_PUT && w->op != KV_DEL && w->op != KV_CAS)
        return ERR_INVALID_ARG;
    errval_t err = kv_check_key(w->key);
    if (err)
        return err;
    if (w->value_len > STORE_VALUE_MAX || w->expect_len > STORE_VALUE_MAX)
        return ERR_STORE_VALUE;
    return ERR_OK;
}

void kv_init(struct kv *t) { t->n = 0; }

void kv_clear(struct kv *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->e[i]);
    t->n = 0;
}

static int cmp(const struct kv_entry *e, const char *key, size_t len)
{
    size_t m = e->key_len < len ? e->key_len : len;
    int c = memcmp(e->key, key, m);
    return c ? c : (int)e->key_len - (int)len;
}

/* The first index whose key is >= key. */
static uint32_t lower(const struct kv *t, const char *key, size_t len)
{
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmp(t->e[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct kv_entry *kv_get(const struct kv *t, const char *key)
{
    size_t len = strlen(key);
    uint32_t i = lower(t, key, len);
    return i < t->n && !cmp(t->e[i], key, len) ? t->e[i] : NULL;
}

errval_t kv_set(struct kv *t, const char *key, const uint8_t *value, size_t vlen, uint64_t version)
{
    size_t len = strlen(key);
    if (len > STORE_KEY_MAX || vlen > STORE_VALUE_MAX)
        return ERR_INVALID_ARG;
    uint32_t i = lower(t, key, len);
    struct kv_entry *e = i < t->n && !cmp(t->e[i], key, len) ? t->e[i] : NULL;
    if (!e) {
        if (t->n >= STORE_KEYS_MAX)
            return ERR_TOO_MANY;
        if (!(e = malloc(sizeof *e)))
            return ERR_NO_MEMORY;
        memmove(&t->e[i + 1], &t->e[i], (t->n - i) * sizeof t->e[0]);
        t->e[i] = e;
        t->n++;
        memcpy(e->key, key, len);
        e->key[len] = 0;
        e->key_len = (uint16_t)len;
    }
    if (vlen)
        memcpy(e->value, value, vlen);
    e->value_len = (uint16_t)vlen;
    e->version = version;
    return ERR_OK;
}

errval_t kv_apply(struct kv *t, uint64_t index, const struct kv_write *w)
{
    errval_t err = kv_check_write(w);
    if (err)
        return err;
    size_t len = strlen(w->key);
    uint32_t i = lower(t, w->key, len);
    struct kv_entry *e = i < t->n && !cmp(t->e[i], w->key, len) ? t->e[i] : NULL;
    switch (w->op) {
    case KV_DEL:
        if (!e)
            return ERR_NOT_FOUND;
        if (w->present && (e->value_len != w->expect_len || (w->expect_len && memcmp(e->value, w->expect, w->expect_len))))
            return ERR_CAS_FAILED;   /* a delete of a value that changed meanwhile */
        free(e);
        memmove(&t->e[i], &t->e[i + 1], (t->n - i - 1) * sizeof t->e[0]);
        t->n--;
        return ERR_OK;
    case KV_CAS:
        if (!w->present ? e != NULL
                        : !e || e->value_len != w->expect_len || (w->expect_len && memcmp(e->value, w->expect, w->expect_len)))
            return ERR_CAS_FAILED;
        /* fall through */
    case KV_PUT:
        return kv_set(t, w->key, w->value, w->value_len, index);
    }
    return ERR_INVALID_ARG;
}

uint32_t kv_prefix(const struct kv *t, const char *prefix, uint32_t *count)
{
    size_t len = strlen(prefix);
    uint32_t first = lower(t, prefix, len), i = first;
    while (i < t->n && t->e[i]->key_len >= len && !memcmp(t->e[i]->key, prefix, len))
        i++;
    *count = i - first;
    return first;
}
