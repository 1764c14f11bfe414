/*
 * Host unit tests of the store's table (servers/store/kv.c): every write
 * and its errors, order and prefixes, the bounds, and two tables fed the
 * same log staying equal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kv.h"

static struct kv_write put(const char *k, const char *v)
{
    return (struct kv_write){ .op = KV_PUT, .key = k, .value = (const uint8_t *)v, .value_len = strlen(v) };
}

static struct kv_write cas(const char *k, const char *x, const char *v)
{
    return (struct kv_write){ .op = KV_CAS, .key = k, .present = x != NULL, .expect = (const uint8_t *)x,
                              .expect_len = x ? strlen(x) : 0, .value = (const uint8_t *)v, .value_len = strlen(v) };
}

static struct kv_write del(const char *k) { return (struct kv_write){ .op = KV_DEL, .key = k }; }

static bool holds(const struct kv *t, const char *k, const char *v)
{
    const struct kv_entry *e = kv_get(t, k);
    return v ? e && e->value_len == strlen(v) && !memcmp(e->value, v, e->value_len) : e == NULL;
}

static void test_writes(void)
{
    static struct kv t;
    kv_init(&t);
    struct kv_write w = put("a", "1");
    CHECK_ERR(kv_apply(&t, 1, &w), ERR_OK);
    CHECK(holds(&t, "a", "1") && kv_get(&t, "a")->version == 1);
    w = cas("a", "2", "3");
    CHECK_ERR(kv_apply(&t, 2, &w), ERR_CAS_FAILED);
    CHECK(holds(&t, "a", "1") && kv_get(&t, "a")->version == 1);
    w = cas("a", "1", "3");
    CHECK_ERR(kv_apply(&t, 3, &w), ERR_OK);
    CHECK(holds(&t, "a", "3") && kv_get(&t, "a")->version == 3);
    w = cas("a", NULL, "4");   /* expects it absent */
    CHECK_ERR(kv_apply(&t, 4, &w), ERR_CAS_FAILED);
    w = cas("b", NULL, "");
    CHECK_ERR(kv_apply(&t, 5, &w), ERR_OK);
    CHECK(holds(&t, "b", ""));
    w = cas("c", "", "x");     /* expects an empty value: c is absent */
    CHECK_ERR(kv_apply(&t, 6, &w), ERR_CAS_FAILED);
    w = del("b");
    CHECK_ERR(kv_apply(&t, 7, &w), ERR_OK);
    CHECK(holds(&t, "b", NULL));
    CHECK_ERR(kv_apply(&t, 8, &w), ERR_NOT_FOUND);
    CHECK_EQ(t.n, 1);
    kv_clear(&t);
    CHECK_EQ(t.n, 0);
}

/* A delete that names the value it expects (the name server's: a record
 * deleted only if nobody took it over meanwhile). */
static void test_conditional_delete(void)
{
    static struct kv t;
    kv_init(&t);
    struct kv_write w = put("a", "1");
    CHECK_ERR(kv_apply(&t, 1, &w), ERR_OK);
    w = (struct kv_write){ .op = KV_DEL, .key = "a", .present = true, .expect = (const uint8_t *)"2", .expect_len = 1 };
    CHECK_ERR(kv_apply(&t, 2, &w), ERR_CAS_FAILED);
    CHECK(holds(&t, "a", "1") && kv_get(&t, "a")->version == 1);
    w.expect = (const uint8_t *)"1";
    CHECK_ERR(kv_apply(&t, 3, &w), ERR_OK);
    CHECK(holds(&t, "a", NULL));
    CHECK_ERR(kv_apply(&t, 4, &w), ERR_NOT_FOUND);
    kv_clear(&t);
}

static void test_bounds(void)
{
    static struct kv t;
    static char key[STORE_KEY_MAX + 2], value[STORE_VALUE_MAX + 2];
    kv_init(&t);
    memset(key, 'k', STORE_KEY_MAX);
    memset(value, 'v', STORE_VALUE_MAX);
    struct kv_write w = put(key, value);
    CHECK_ERR(kv_apply(&t, 1, &w), ERR_OK);   /* exactly at both bounds */
    key[STORE_KEY_MAX] = 'k';
    w = put(key, "x");
    CHECK_ERR(kv_apply(&t, 2, &w), ERR_STORE_KEY);
    value[STORE_VALUE_MAX] = 'v';
    w = put("ok", value);
    CHECK_ERR(kv_apply(&t, 3, &w), ERR_STORE_VALUE);
    w = cas("ok", value, "x");
    CHECK_ERR(kv_apply(&t, 3, &w), ERR_STORE_VALUE);
    CHECK_ERR(kv_check_key(""), ERR_STORE_KEY);
    CHECK_ERR(kv_check_key("a b"), ERR_STORE_KEY);
    CHECK_ERR(kv_check_key("a\x01"), ERR_STORE_KEY);
    CHECK_ERR(kv_check_key("a\x7f"), ERR_STORE_KEY);
    CHECK_ERR(kv_check_key("~!/.:"), ERR_OK);
    w = put("x", "y");
    w.op = 9;
    CHECK_ERR(kv_apply(&t, 4, &w), ERR_INVALID_ARG);
    CHECK_EQ(t.n, 1);
    /* The table is full at STORE_KEYS_MAX: the next key is refused, the
     * ones there still change. */
    for (unsigned i = 1; i < STORE_KEYS_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "n%05u", i);
        w = put(k, "z");
        CHECK_ERR(kv_apply(&t, 10 + i, &w), ERR_OK);
    }
    CHECK_EQ(t.n, STORE_KEYS_MAX);
    w = put("zzz", "1");
    CHECK_ERR(kv_apply(&t, 9000, &w), ERR_TOO_MANY);
    w = put("n00001", "changed");
    CHECK_ERR(kv_apply(&t, 9001, &w), ERR_OK);
    kv_clear(&t);
}

static void test_order_and_prefix(void)
{
    static struct kv t;
    const char *keys[] = { "b", "ab", "a", "abc", "ac", "b0", "" };
    kv_init(&t);
    for (unsigned i = 0; keys[i][0]; i++) {
        struct kv_write w = put(keys[i], keys[i]);
        CHECK_ERR(kv_apply(&t, i + 1, &w), ERR_OK);
    }
    const char *sorted[] = { "a", "ab", "abc", "ac", "b", "b0" };
    CHECK_EQ(t.n, 6);
    for (unsigned i = 0; i < 6 && i < t.n; i++)
        CHECK(!strcmp(t.e[i]->key, sorted[i]));
    uint32_t n, first = kv_prefix(&t, "ab", &n);
    CHECK(first == 1 && n == 2);
    first = kv_prefix(&t, "a", &n);
    CHECK(first == 0 && n == 4);
    first = kv_prefix(&t, "", &n);
    CHECK(first == 0 && n == 6);
    kv_prefix(&t, "abcd", &n);
    CHECK_EQ(n, 0);
    kv_prefix(&t, "z", &n);
    CHECK_EQ(n, 0);
    kv_clear(&t);
}

/* Two replicas applying one random log hold the same table. */
static void test_replicas_agree(void)
{
    static struct kv a, b;
    kv_init(&a);
    kv_init(&b);
    unsigned seed = 7;
    for (unsigned i = 1; i <= 5000; i++) {
        seed = seed * 1103515245 + 12345;
        char k[8], v[8], x[8];
        snprintf(k, sizeof k, "k%u", (seed >> 8) % 40);
        snprintf(v, sizeof v, "%u", (seed >> 4) % 5);
        snprintf(x, sizeof x, "%u", (seed >> 12) % 5);
        struct kv_write w = (seed >> 20) % 3 == 0 ? put(k, v) : (seed >> 20) % 3 == 1 ? del(k) : cas(k, x, v);
        CHECK_EQ(kv_apply(&a, i, &w), kv_apply(&b, i, &w));
    }
    CHECK_EQ(a.n, b.n);
    for (uint32_t i = 0; i < a.n && i < b.n; i++)
        CHECK(!strcmp(a.e[i]->key, b.e[i]->key) && a.e[i]->version == b.e[i]->version &&
              a.e[i]->value_len == b.e[i]->value_len && !memcmp(a.e[i]->value, b.e[i]->value, a.e[i]->value_len));
    /* State transfer: b rebuilt from a's entries equals a. */
    kv_clear(&b);
    for (uint32_t i = 0; i < a.n; i++)
        CHECK_ERR(kv_set(&b, a.e[i]->key, a.e[i]->value, a.e[i]->value_len, a.e[i]->version), ERR_OK);
    CHECK_EQ(a.n, b.n);
    kv_clear(&a);
    kv_clear(&b);
}

int main(void)
{
    test_writes();
    test_conditional_delete();
    test_bounds();
    test_order_and_prefix();
    test_replicas_agree();
    return check_done();
}
