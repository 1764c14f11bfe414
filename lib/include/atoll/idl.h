/*
 * The runtime of the interfaces that tools/idlc generates from if/<name>.if
 * (docs/interfaces.md): the generic channel a generated stub talks through,
 * the wire form of a capability, and the little-endian encode/decode
 * helpers the generated code calls. Everything is static inline and needs
 * only <stdint.h>, <stddef.h>, <stdbool.h> and <atoll/abi/errors.h>, so the same
 * generated headers build in the guest and on the host.
 *
 * Every helper works on (buffer, size, *offset) and never touches a byte at
 * or past `size`; the decoders return false on anything malformed and then
 * leave their output unspecified.
 */
#ifndef ATOLL_IDL_H
#define ATOLL_IDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

/* The largest message any channel must carry: URPC_MSG_MAX of
 * <atoll/urpc.h> (56-byte payload x 64 fragments). tools/atoll_idl.py
 * refuses an interface with a longer message; tests/test_idlc.py checks the
 * three agree. */
#define IDL_MSG_MAX 3584u
/* Bytes before the first argument: uint16 type, uint16 reserved (zero). */
#define IDL_HEADER_SIZE 4u

/* A capability as it travels in a message: what cap_export says about a
 * slot on the sending side, and what cap_import makes a slot from on the
 * receiving side. The layout is fixed (cross-core capability transfer
 * depends on it); on the wire it is these five fields, little-endian, in
 * this order. */
struct cap_wire {
    uint32_t type;      /* enum cap_type */
    uint32_t rights;
    uint64_t base;
    uint64_t bytes;
    uint64_t badge;
};
_Static_assert(sizeof(struct cap_wire) == 32, "struct cap_wire is 32 bytes on the wire and in memory");
#define IDL_CAP_WIRE_SIZE 32u

/* A channel, as generated code sees it: two transport operations and two
 * capability hooks. The transport fills them in (say, over a struct
 * urpc_chan kept in `state`); `user` is for the handlers. */
struct idl_chan {
    /* Send one whole message of len bytes. */
    errval_t (*send)(struct idl_chan *ch, const void *msg, size_t len, unsigned flags);
    /* Receive one whole message into buf (size bytes); *len is its length.
     * A message longer than size: ERR_MSG_TOO_LONG. */
    errval_t (*recv)(struct idl_chan *ch, void *buf, size_t size, size_t *len, unsigned flags);
    /* Describe the capability in `slot` for the peer. NULL: capabilities
     * cannot travel over this channel (ERR_CAP_NOT_TRANSFERABLE). */
    errval_t (*cap_export)(struct idl_chan *ch, uint64_t slot, struct cap_wire *out);
    /* Make a capability in a fresh slot from what the peer sent. NULL: as above. */
    errval_t (*cap_import)(struct idl_chan *ch, const struct cap_wire *in, uint64_t *slot);
    void *state;        /* the transport's own (e.g. a struct urpc_chan *) */
    void *user;         /* for handlers */
};

/* -- encoding: each returns ERR_MSG_TOO_LONG when the buffer is full ------ */

static inline errval_t idl_put_uint(uint8_t *buf, size_t size, size_t *off, uint64_t v, unsigned n)
{
    if (*off > size || size - *off < n)
        return ERR_MSG_TOO_LONG;
    for (unsigned i = 0; i < n; i++)
        buf[*off + i] = (uint8_t)(v >> (8 * i));
    *off += n;
    return ERR_OK;
}

static inline errval_t idl_put_raw(uint8_t *buf, size_t size, size_t *off, const void *p, size_t n)
{
    if (*off > size || size - *off < n)
        return ERR_MSG_TOO_LONG;
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        buf[*off + i] = s[i];
    *off += n;
    return ERR_OK;
}

/* The message header: type, then two reserved zero bytes. */
static inline errval_t idl_put_header(uint8_t *buf, size_t size, size_t *off, unsigned type)
{
    *off = 0;
    errval_t err = idl_put_uint(buf, size, off, type, 2);
    return err ? err : idl_put_uint(buf, size, off, 0, 2);
}

/* uint16 length, the text, one NUL. A string longer than `bound`, or NULL:
 * ERR_MSG_TOO_LONG / ERR_INVALID_ARG. */
static inline errval_t idl_put_string(uint8_t *buf, size_t size, size_t *off, const char *s,
                                      size_t bound)
{
    if (!s)
        return ERR_INVALID_ARG;
    size_t n = 0;
    while (n <= bound && s[n])
        n++;
    if (n > bound)
        return ERR_MSG_TOO_LONG;
    errval_t err = idl_put_uint(buf, size, off, n, 2);
    if (!err)
        err = idl_put_raw(buf, size, off, s, n);
    return err ? err : idl_put_uint(buf, size, off, 0, 1);
}

/* uint16 length, the bytes. NULL data is allowed only with length 0. */
static inline errval_t idl_put_bytes(uint8_t *buf, size_t size, size_t *off, const uint8_t *p,
                                     size_t n, size_t bound)
{
    if (!p && n)
        return ERR_INVALID_ARG;
    if (n > bound)
        return ERR_MSG_TOO_LONG;
    errval_t err = idl_put_uint(buf, size, off, n, 2);
    return err ? err : idl_put_raw(buf, size, off, p, n);
}

static inline errval_t idl_put_cap(uint8_t *buf, size_t size, size_t *off, const struct cap_wire *w)
{
    if (!w)
        return ERR_INVALID_ARG;
    errval_t err = idl_put_uint(buf, size, off, w->type, 4);
    if (!err)
        err = idl_put_uint(buf, size, off, w->rights, 4);
    if (!err)
        err = idl_put_uint(buf, size, off, w->base, 8);
    if (!err)
        err = idl_put_uint(buf, size, off, w->bytes, 8);
    return err ? err : idl_put_uint(buf, size, off, w->badge, 8);
}

/* -- decoding: false when the field does not fit or is invalid ----------- */

static inline bool idl_get_uint(const uint8_t *msg, size_t len, size_t *off, unsigned n, uint64_t *v)
{
    if (*off > len || len - *off < n)
        return false;
    uint64_t x = 0;
    for (unsigned i = 0; i < n; i++)
        x |= (uint64_t)msg[*off + i] << (8 * i);
    *off += n;
    *v = x;
    return true;
}

static inline bool idl_get_bool(const uint8_t *msg, size_t len, size_t *off, bool *b)
{
    uint64_t v;
    if (!idl_get_uint(msg, len, off, 1, &v) || v > 1)
        return false;
    *b = v != 0;
    return true;
}

/* A pointer into msg: the text, NUL-terminated in place. */
static inline bool idl_get_string(const uint8_t *msg, size_t len, size_t *off, size_t bound,
                                  const char **s)
{
    uint64_t n;
    if (!idl_get_uint(msg, len, off, 2, &n) || n > bound || len - *off < n + 1)
        return false;
    const uint8_t *p = msg + *off;
    for (size_t i = 0; i < n; i++)
        if (p[i] == 0)
            return false;
    if (p[n] != 0)
        return false;
    *s = (const char *)p;
    *off += n + 1;
    return true;
}

static inline bool idl_get_bytes(const uint8_t *msg, size_t len, size_t *off, size_t bound,
                                 const uint8_t **p, size_t *n)
{
    uint64_t k;
    if (!idl_get_uint(msg, len, off, 2, &k) || k > bound || len - *off < k)
        return false;
    *p = msg + *off;
    *n = (size_t)k;
    *off += (size_t)k;
    return true;
}

static inline bool idl_get_cap(const uint8_t *msg, size_t len, size_t *off, struct cap_wire *w)
{
    uint64_t t, r;
    if (!idl_get_uint(msg, len, off, 4, &t) || !idl_get_uint(msg, len, off, 4, &r) ||
        !idl_get_uint(msg, len, off, 8, &w->base) || !idl_get_uint(msg, len, off, 8, &w->bytes) ||
        !idl_get_uint(msg, len, off, 8, &w->badge))
        return false;
    w->type = (uint32_t)t;
    w->rights = (uint32_t)r;
    return true;
}

/* The header of a message: its type, or 0 when it is shorter than a header
 * or its reserved bytes are not zero. */
static inline unsigned idl_msg_type(const uint8_t *msg, size_t len)
{
    if (len < IDL_HEADER_SIZE || msg[2] != 0 || msg[3] != 0)
        return 0;
    return (unsigned)msg[0] | (unsigned)msg[1] << 8;
}

#endif
