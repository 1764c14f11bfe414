/*
 * Measured-region markers for the cost model (docs/costmodel.md).
 *
 * The cost model is a QEMU plugin (tools/costmodel/) that counts what moves
 * between virtual CPUs: cache-line transfers, IPIs, instructions. A guest
 * tells it where a measured region starts and ends, and what the region
 * did, with markers: each marker is one 8-byte no-op,
 *
 *     0f 1f 84 00 <disp32>        nopl disp32(%rax,%rax,1)
 *
 * whose displacement carries CM_MAGIC, an operation and an operand. The CPU
 * ignores the displacement (a NOP with a memory operand never touches
 * memory), so without the plugin a marker costs one instruction slot. Compilers
 * pad with the same opcode but displacement 0, never CM_MAGIC.
 *
 * The plugin (API v1) cannot read guest registers or memory, so a value
 * (the number of operations a region did, the two cores of a ping-pong) is
 * spelled in markers: one marker per bit, most significant first, then an
 * "argument" marker naming the key. Arguments given before a BEGIN or END
 * belong to that region (END's may complete what BEGIN's gave: a boot knows
 * how many cores came up only at the end).
 *
 *     cm_arg(protocol, CM_WORD_urpc);
 *     cm_arg(src, 0); cm_arg(dst, 1);
 *     cm_begin(pingpong);
 *     ... rounds round trips ...
 *     cm_arg(ops, rounds);
 *     cm_end(pingpong);
 *
 * Regions are system-wide (everything every CPU does between BEGIN and END
 * counts) and keyed by tag: different tags may overlap, a BEGIN of a tag
 * that is open restarts it. The plugin opens a `boot` region at reset; the
 * first END of `boot` closes it.
 *
 * Tags, keys and symbolic values are listed once here (X-macros): the
 * plugin prints their names, so nothing else needs the numbers.
 *
 * Freestanding: includes only <stdint.h>; used by the CPU driver, user
 * domains, the Linux benchmark programs (bench/linux) and the plugin.
 */
#ifndef ATOLL_COSTMODEL_H
#define ATOLL_COSTMODEL_H

#include <stdint.h>

#define CM_MAGIC 0xa7c3u       /* the displacement's top 16 bits */

/* Marker operations (the displacement's bits 8-15). */
#define CM_OP_BEGIN 1u   /* operand: tag */
#define CM_OP_END 2u     /* operand: tag */
#define CM_OP_BIT0 3u    /* shift a 0 bit into the value being spelled */
#define CM_OP_BIT1 4u    /* shift a 1 bit in */
#define CM_OP_ARG 5u     /* operand: key; the value spelled so far becomes its argument */

/* Region tags: X(number, name). Numbers are 1..255, never reused. */
#define CM_TAGS(X)                                                             \
    X(1, boot)          /* reset to ready: Atoll every core up, Linux /init */ \
    X(2, pingpong)      /* round trips between two cores */                    \
    X(3, unmap)         /* unmap/TLB shootdown calls */                        \
    X(4, local)         /* same-core round trips */                            \
    X(5, selftest)      /* the plugin's test guest (tests/costmodel/) */       \
    X(6, caps)          /* a capability operation across cores (capxfer) */    \
    X(7, store)         /* the store benchmark's round: N clients' operations */ \
    X(8, mem)           /* one client's alloc+free rounds (servers/mem) */   \
    X(9, lookup)        /* a name lookup, a connect or a call (user/echo) */

/* Argument keys: X(number, name, symbolic). A symbolic key's value is a
 * CM_WORDS number and is printed as its name. Numbers are 0..255. */
#define CM_KEYS(X)                                                             \
    X(0, ops, 0)        /* operations the region did: counts are per op */     \
    X(1, protocol, 1)   /* how (a CM_WORDS value) */                           \
    X(2, src, 0)        /* the initiating core */                              \
    X(3, dst, 0)        /* the other core */                                   \
    X(4, cores, 0)      /* cores taking part */                                \
    X(5, pattern, 1)    /* the self-test's access pattern */                   \
    X(6, pages, 0)      /* pages per operation */                              \
    X(7, holders, 0)    /* cores holding copies of the object (caps) */        \
    X(8, op, 1)         /* which operation (caps: revoke, delete) */       \
    X(9, replicas, 0)   /* the store's replicas (Atoll's store bench) */      \
    X(10, reads, 0)     /* the store bench's read percentage */          \
    X(11, relation, 1)  /* lookup: where the instance is from the client */

/* Symbolic values: X(number, name). Numbers are 1..255. */
#define CM_WORDS(X)                                                            \
    X(1, cacheline)  X(2, pipe)       X(3, eventfd)   X(4, futex)             \
    X(5, urpc)       X(6, urpc_wake)  X(7, lmp)       X(8, munmap)            \
    X(9, mprotect)   X(10, boot)      X(11, urpc_stream) X(12, lmp_cap)       \
    X(32, pingpong_line) X(33, own_data) X(34, ipi) X(35, readers)            \
    X(36, writer_upgrade) X(37, false_sharing) X(38, count_insns)            \
    X(13, holders_only) X(14, broadcast) X(15, revoke) X(16, delete)  \
    X(39, rwlock)    X(40, mutex)     X(41, store_fresh) X(42, store_stale)    \
    X(43, per_node)  X(44, central)   X(45, cache)                            \
    X(46, unicast)   X(47, multicast) X(48, numa_multicast)                   \
    X(49, name_lookup) X(50, connect) X(51, echo_call)                        \
    X(52, same_core) X(53, same_node) X(54, remote_node)                      \
    X(55, mmap_local) X(56, idle)

#define CM_ENUM_TAG(n, name) CM_TAG_##name = n,
#define CM_ENUM_KEY(n, name, sym) CM_KEY_##name = n,
#define CM_ENUM_WORD(n, name) CM_WORD_##name = n,
enum { CM_TAGS(CM_ENUM_TAG) CM_TAG_MAX_ = 256 };
enum { CM_KEYS(CM_ENUM_KEY) CM_KEY_MAX_ = 256 };
enum { CM_WORDS(CM_ENUM_WORD) CM_WORD_MAX_ = 256 };
#undef CM_ENUM_TAG
#undef CM_ENUM_KEY
#undef CM_ENUM_WORD

#define CM_DISP(op, operand) ((CM_MAGIC << 16) | ((uint32_t)(op) << 8) | (uint32_t)(operand))
/* One marker. A compiler barrier too, so a region's bounds stay where they
 * are written. The operand must be a compile-time constant. */
#define CM_MARK(op, operand)                                                   \
    __asm__ volatile(".byte 0x0f, 0x1f, 0x84, 0x00\n\t.long %c0"               \
                     : : "i"(CM_DISP(op, operand)) : "memory")

/* Spell v, most significant set bit first (0 spells nothing). */
static inline void cm_bits(uint32_t v)
{
    int top = 31;
    while (top >= 0 && !((v >> top) & 1))
        top--;
    for (int i = top; i >= 0; i--) {
        if ((v >> i) & 1)
            CM_MARK(CM_OP_BIT1, 0);
        else
            CM_MARK(CM_OP_BIT0, 0);
    }
}

#define cm_arg(key, v)                                                         \
    do {                                                                       \
        cm_bits((uint32_t)(v));                                                \
        CM_MARK(CM_OP_ARG, CM_KEY_##key);                                      \
    } while (0)
#define cm_begin(tag) CM_MARK(CM_OP_BEGIN, CM_TAG_##tag)
#define cm_end(tag) CM_MARK(CM_OP_END, CM_TAG_##tag)

#endif
