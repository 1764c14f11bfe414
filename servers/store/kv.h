/*
 * The store's state machine (servers/store, docs/store.md): a sorted table
 * of keys and values that every replica changes only by applying log
 * entries in index order, so replicas that applied the same prefix of the
 * log hold the same table. Pure: no I/O, host-tested (tests/host/test_kv.c).
 */
#ifndef ATOLL_STORE_KV_H
#define ATOLL_STORE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define STORE_KEY_MAX 64       /* bytes of a key, printable ASCII, not empty */
#define STORE_VALUE_MAX 256    /* bytes of a value */
#define STORE_KEYS_MAX 512     /* keys in the table */

enum kv_op { KV_PUT = 1, KV_DEL = 2, KV_CAS = 3 };

struct kv_entry {
    uint64_t version;          /* the log index of the write that made it */
    uint16_t key_len, value_len;
    char key[STORE_KEY_MAX + 1];
    uint8_t value[STORE_VALUE_MAX];
};

struct kv {
    struct kv_entry *e[STORE_KEYS_MAX];   /* sorted by key (memcmp, then length) */
    uint32_t n;
};

/* One write as the log carries it. */
struct kv_write {
    enum kv_op op;
    const char *key;
    bool present;                 /* KV_CAS: expect the key present with `expect`;
                                     KV_DEL: delete only if its value is `expect` */
    const uint8_t *expect;
    size_t expect_len;
    const uint8_t *value;
    size_t value_len;
};

/* ERR_STORE_KEY unless 1..STORE_KEY_MAX printable characters (no space). */
errval_t kv_check_key(const char *key);
/* The checks a write passes before it is sequenced (key, value sizes, op). */
errval_t kv_check_write(const struct kv_write *w);

void kv_init(struct kv *t);
void kv_clear(struct kv *t);
const struct kv_entry *kv_get(const struct kv *t, const char *key);
/* Apply write `w` as log entry `index`: ERR_OK, ERR_NOT_FOUND (delete of a
 * missing key), ERR_CAS_FAILED, ERR_TOO_MANY (table full), ERR_NO_MEMORY;
 * the table is unchanged on error. Deterministic: the same table and write
 * give the same result at every replica. */
errval_t kv_apply(struct kv *t, uint64_t index, const struct kv_write *w);
/* Set a key outright (state transfer). */
errval_t kv_set(struct kv *t, const char *key, const uint8_t *value, size_t len, uint64_t version);
/* Keys with `prefix`: the index of the first in t->e, and how many. */
uint32_t kv_prefix(const struct kv *t, const char *prefix, uint32_t *count);

#endif
