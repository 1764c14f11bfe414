/*
 * Host unit tests for cpudriver/elf.c, the checker for user programs.
 *
 * ELF images are built here field by field (struct spec -> bytes), so each
 * test changes exactly one thing in a known-good file. Images are checked at
 * an odd address (the checker must read unaligned) in a heap buffer of
 * exactly their length (ASan catches any read past the end).
 *
 * With arguments, also checks each named file (say build/user/hello.elf) and
 * prints what it found: `test_elf FILE...` exits nonzero if one is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <atoll/abi/domain.h>
#include "check.h"
#include "elf.h"

#define PT_LOAD 1
#define PT_DYNAMIC 2
#define PT_INTERP 3
#define PT_NOTE 4
#define PT_PHDR 6
#define PT_GNU_STACK 0x6474e551u

struct ph {
    uint32_t type, flags;
    uint64_t offset, vaddr, filesz, memsz, align;
};

struct spec {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
    struct ph ph[40];
    unsigned nph;   /* program headers written (phnum may say otherwise) */
    size_t len;     /* file length */
};

/* A small, valid program: text (R+X), rodata (R), data+bss (R+W), plus a
 * PT_GNU_STACK header the checker must ignore. No section headers. The file
 * ends with the last segment's bytes, so every shorter length truncates. */
static struct spec good(void)
{
    struct spec s;
    memset(&s, 0, sizeof s);
    static const uint8_t ident[16] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0 };
    memcpy(s.ident, ident, sizeof ident);
    s.type = 2;
    s.machine = 62;
    s.version = 1;
    s.entry = 0x400210;
    s.phoff = 64;
    s.ehsize = 64;
    s.phentsize = 56;
    s.ph[0] = (struct ph){ PT_LOAD, PF_R | PF_X, 0x200, 0x400200, 0x100, 0x100, 0x1000 };
    s.ph[1] = (struct ph){ PT_LOAD, PF_R, 0x300, 0x401300, 0x40, 0x40, 0x1000 };
    s.ph[2] = (struct ph){ PT_LOAD, PF_R | PF_W, 0x340, 0x402340, 0x20, 0x1800, 0x1000 };
    s.ph[3] = (struct ph){ PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0, 0x10 };
    s.nph = 4;
    s.phnum = 4;
    s.len = 0x360;
    return s;
}

static void put(uint8_t *b, size_t len, uint64_t off, uint64_t v, int size)
{
    for (int i = 0; i < size; i++)
        if (off + (uint64_t)i < len)
            b[off + (uint64_t)i] = (uint8_t)(v >> (8 * i));
}

/* The bytes of s, in a buffer of s->len + 1 bytes; the image starts at +1. */
static uint8_t *build(const struct spec *s)
{
    uint8_t *buf = malloc(s->len + 1);
    if (!buf)
        abort();
    uint8_t *b = buf + 1;
    size_t len = s->len;
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(0xa5 ^ i);   /* segment contents: anything */
    for (size_t i = 0; i < 16; i++)
        put(b, len, i, s->ident[i], 1);
    put(b, len, 16, s->type, 2);
    put(b, len, 18, s->machine, 2);
    put(b, len, 20, s->version, 4);
    put(b, len, 24, s->entry, 8);
    put(b, len, 32, s->phoff, 8);
    put(b, len, 40, s->shoff, 8);
    put(b, len, 48, s->flags, 4);
    put(b, len, 52, s->ehsize, 2);
    put(b, len, 54, s->phentsize, 2);
    put(b, len, 56, s->phnum, 2);
    put(b, len, 58, s->shentsize, 2);
    put(b, len, 60, s->shnum, 2);
    put(b, len, 62, s->shstrndx, 2);
    for (unsigned i = 0; i < s->nph; i++) {
        uint64_t o = s->phoff + (uint64_t)i * 56;
        if (o < s->phoff || o >= len)
            break;
        const struct ph *p = &s->ph[i];
        put(b, len, o + 0, p->type, 4);
        put(b, len, o + 4, p->flags, 4);
        put(b, len, o + 8, p->offset, 8);
        put(b, len, o + 16, p->vaddr, 8);
        put(b, len, o + 24, p->vaddr, 8);   /* p_paddr: ignored */
        put(b, len, o + 32, p->filesz, 8);
        put(b, len, o + 40, p->memsz, 8);
        put(b, len, o + 48, p->align, 8);
    }
    return buf;
}

static errval_t run_info(const struct spec *s, struct elf_info *info)
{
    uint8_t *buf = build(s);
    errval_t err = elf_check(buf + 1, s->len, info);
    free(buf);
    return err;
}

static errval_t run(const struct spec *s)
{
    struct elf_info info;
    errval_t err = run_info(s, &info);
    if (err) {
        CHECK_EQ(info.nseg, 0);
        CHECK_EQ(info.entry, 0);
    }
    return err;
}

/* ---- the good file ------------------------------------------------------- */

static void test_good(void)
{
    struct spec s = good();
    struct elf_info info;
    memset(&info, 0xee, sizeof info);
    CHECK_ERR(run_info(&s, &info), ERR_OK);
    CHECK_EQ(info.entry, 0x400210);
    CHECK_EQ(info.nseg, 3);
    CHECK_EQ(info.seg[0].vaddr, 0x400200);
    CHECK_EQ(info.seg[0].memsz, 0x100);
    CHECK_EQ(info.seg[0].offset, 0x200);
    CHECK_EQ(info.seg[0].filesz, 0x100);
    CHECK_EQ(info.seg[0].flags, PF_R | PF_X);
    CHECK_EQ(info.seg[1].flags, PF_R);
    CHECK_EQ(info.seg[2].vaddr, 0x402340);
    CHECK_EQ(info.seg[2].memsz, 0x1800);
    CHECK_EQ(info.seg[2].filesz, 0x20);
    CHECK_EQ(info.seg[2].flags, PF_R | PF_W);
    /* NULL out is allowed; NULL image is not. */
    uint8_t *buf = build(&s);
    CHECK_ERR(elf_check(buf + 1, s.len, NULL), ERR_OK);
    /* Trailing bytes after the last segment are fine. */
    CHECK_ERR(elf_check(NULL, 0, &info), ERR_INVALID_ARG);
    free(buf);
    s.len += 100;
    CHECK_ERR(run(&s), ERR_OK);
}

static void test_truncation(void)
{
    struct spec s = good();
    size_t full = s.len;
    uint8_t *buf = build(&s);
    for (size_t len = 0; len < full; len++) {
        /* A fresh buffer of exactly `len` bytes, so ASan sees any overread. */
        uint8_t *cut = malloc(len + 1);
        memcpy(cut + 1, buf + 1, len);
        struct elf_info info;
        errval_t err = elf_check(cut + 1, len, &info);
        if (err != ERR_TRUNCATED)
            fprintf(stderr, "truncated to %zu bytes:\n", len);
        CHECK_ERR(err, ERR_TRUNCATED);
        free(cut);
    }
    free(buf);
}

/* ---- the ELF header -------------------------------------------------------- */

static void test_header(void)
{
    struct spec s;
    for (int i = 0; i < 4; i++) {
        s = good();
        s.ident[i] ^= 0x20;
        CHECK_ERR(run(&s), ERR_ELF_MAGIC);
    }
    s = good();   /* short but not ELF: the magic speaks first */
    s.ident[1] = 'X';
    s.len = 3;
    CHECK_ERR(run(&s), ERR_ELF_MAGIC);
    s = good();
    s.ident[4] = 1;   /* ELFCLASS32 */
    CHECK_ERR(run(&s), ERR_ELF_CLASS);
    s = good();
    s.ident[4] = 0;
    CHECK_ERR(run(&s), ERR_ELF_CLASS);
    s = good();
    s.ident[5] = 2;   /* big-endian */
    CHECK_ERR(run(&s), ERR_ELF_CLASS);
    s = good();
    s.machine = 3;    /* i386 */
    CHECK_ERR(run(&s), ERR_ELF_CLASS);
    s = good();
    s.machine = 183;  /* aarch64 */
    CHECK_ERR(run(&s), ERR_ELF_CLASS);
    s = good();
    s.ident[6] = 0;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.ident[7] = 3;   /* GNU/Linux */
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.ident[8] = 1;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.version = 2;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.flags = 1;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.ehsize = 52;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.phentsize = 32;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.phentsize = 64;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.phnum = 0;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = good();
    s.phnum = 0xffff;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    /* e_type: relocatable, shared object (PIE), core, OS-specific */
    static const uint16_t bad_types[] = { 0, 1, 3, 4, 0xfe00, 0xffff };
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++) {
        s = good();
        s.type = bad_types[i];
        CHECK_ERR(run(&s), ERR_ELF_TYPE);
    }
    /* The program-header table in bounds, overflow-safe. */
    s = good();
    s.phoff = s.len - 10;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.phoff = s.len;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.phoff = UINT64_MAX - 8;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.phoff = 1ull << 63;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.phnum = 200;   /* table runs past the end */
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.phnum = 3;     /* fewer headers than written: fine, the rest is data */
    CHECK_ERR(run(&s), ERR_OK);
    s = good();
    s.phnum = 1;
    CHECK_ERR(run(&s), ERR_OK);
    /* Section headers: optional, but sane when present. */
    s = good();
    s.shnum = 2;
    s.shentsize = 64;
    s.shoff = s.len;
    s.len += 128;
    s.shstrndx = 1;
    CHECK_ERR(run(&s), ERR_OK);
    struct spec with_sections = s;
    s.shentsize = 40;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = with_sections;
    s.shstrndx = 2;
    CHECK_ERR(run(&s), ERR_ELF_HEADER);
    s = with_sections;
    s.len -= 1;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = with_sections;
    s.shoff = UINT64_MAX - 63;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.shoff = 12345;   /* no sections: shoff is not looked at */
    CHECK_ERR(run(&s), ERR_OK);
}

/* ---- program headers ------------------------------------------------------- */

static void test_program_headers(void)
{
    struct spec s = good();
    s.ph[3].type = PT_INTERP;
    CHECK_ERR(run(&s), ERR_ELF_TYPE);
    s.ph[3].type = PT_DYNAMIC;
    CHECK_ERR(run(&s), ERR_ELF_TYPE);
    static const uint32_t ignored[] = { 0, PT_NOTE, PT_PHDR, 7 /* PT_TLS */, 0x6474e552 /* GNU_RELRO */,
                                        0x12345678, 0xffffffff };
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        s = good();
        s.ph[3] = (struct ph){ ignored[i], 0xffffffff, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1, 3 };
        CHECK_ERR(run(&s), ERR_OK);
    }
    s = good();   /* no PT_LOAD at all */
    for (int i = 0; i < 3; i++)
        s.ph[i].type = PT_NOTE;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* only empty PT_LOADs */
    for (int i = 0; i < 3; i++)
        s.ph[i].memsz = s.ph[i].filesz = 0;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    /* An empty PT_LOAD is checked, then left out. */
    s = good();
    s.ph[3] = (struct ph){ PT_LOAD, PF_R, 0x100, 0x400100, 0, 0, 0x1000 };
    struct elf_info info;
    CHECK_ERR(run_info(&s, &info), ERR_OK);
    CHECK_EQ(info.nseg, 3);
    s.ph[3].vaddr = 0x1000;   /* ...and still checked */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s.ph[3] = (struct ph){ PT_LOAD, PF_R | PF_W | PF_X, 0x100, 0x400100, 0, 0, 0x1000 };
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
}

static void test_segments(void)
{
    struct spec s;
    /* W^X and flags */
    s = good();
    s.ph[0].flags = PF_R | PF_W | PF_X;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].flags = PF_W | PF_X;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].flags = PF_R | 0x8;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].flags = PF_R | 0x00f00000;   /* PF_MASKOS */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].flags = 0;   /* no access at all: allowed (a reserved range) */
    CHECK_ERR(run(&s), ERR_OK);
    /* file bytes */
    s = good();
    s.ph[2].filesz = s.ph[2].memsz + 1;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].filesz = 0x21;   /* one byte past the end of the file */
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.ph[1].offset = 0x1300 + s.len;   /* congruent, but beyond the file */
    s.ph[1].vaddr = 0x401300 + s.len;
    CHECK_ERR(run(&s), ERR_TRUNCATED);
    s = good();
    s.ph[2].offset = UINT64_MAX - 0xf;   /* offset + filesz (0x20) wraps; congruent */
    s.ph[2].vaddr = 0x402ff0;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].filesz = 0;   /* pure bss */
    CHECK_ERR(run(&s), ERR_OK);
    /* alignment */
    s = good();
    s.ph[1].vaddr += 8;   /* page offset 0x308 vs 0x300 */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].align = 3;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].align = 0x200000;   /* congruent mod 4 KiB, not mod 2 MiB */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[0].align = s.ph[1].align = s.ph[2].align = 0;
    CHECK_ERR(run(&s), ERR_OK);
    s = good();
    s.ph[0].align = s.ph[1].align = s.ph[2].align = 16;   /* page congruence still required */
    CHECK_ERR(run(&s), ERR_OK);
    s.ph[1].vaddr += 0x10;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    /* addresses */
    s = good();
    s.ph[1].vaddr = USER_MIN - 0x1000 + 0x300;   /* just below USER_MIN */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].vaddr = 0x300;   /* page zero */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].vaddr = USER_STARTUP_VA + 0x300;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[0].vaddr = 0xffffffff80000200ull;   /* the kernel half */
    s.entry = 0xffffffff80000210ull;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[1].vaddr = 0x0000800000000300ull;   /* non-canonical hole */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].vaddr = USER_MAX - 0x1000 + 0x340;   /* ends exactly at USER_MAX */
    s.ph[2].memsz = 0x1000 - 0x340;
    CHECK_ERR(run(&s), ERR_OK);
    s.ph[2].memsz += 1;   /* one byte past it */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].memsz = UINT64_MAX - 0x100;   /* vaddr + memsz wraps */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();
    s.ph[2].memsz = UINT64_MAX;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* in the stack region */
    s.ph[2].vaddr = USER_STACK_TOP - 0x1000 + 0x340;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* reaching into it from below */
    s.ph[2].vaddr = USER_STACK_TOP - USER_STACK_SIZE - 0x1000 + 0x340;
    s.ph[2].memsz = 0xcc0;   /* ends exactly at the stack's bottom */
    CHECK_ERR(run(&s), ERR_OK);
    s.ph[2].memsz = 0xcc0 + 1;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* just above the stack: fine */
    s.ph[2].vaddr = USER_STACK_TOP + 0x340;
    CHECK_ERR(run(&s), ERR_OK);
}

static void test_overlap(void)
{
    struct spec s;
    s = good();   /* rodata in text's page */
    s.ph[1].vaddr = 0x400300;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* data's bss runs into the next segment's page */
    s.ph[1].vaddr = 0x404300;
    s.ph[2].memsz = 0x2000;   /* 0x402340..0x404340 touches page 0x404000 */
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s.ph[2].memsz = 0x1cc0;   /* ends exactly at 0x404000 */
    CHECK_ERR(run(&s), ERR_OK);
    s = good();   /* the same segment twice */
    s.ph[3] = s.ph[1];
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* a big segment covering another one entirely */
    s.ph[3] = (struct ph){ PT_LOAD, PF_R, 0, 0x3ff000 + 0x1000 * 0x100, 0, 0x1000000, 0x1000 };
    s.ph[3].vaddr = 0x400000;
    s.ph[0].vaddr = 0x500200;
    s.entry = 0x500210;
    CHECK_ERR(run(&s), ERR_ELF_SEGMENT);
    s = good();   /* out of address order but disjoint: fine */
    s.ph[0].vaddr = 0x410200;
    s.entry = 0x410210;
    CHECK_ERR(run(&s), ERR_OK);
}

static void test_entry(void)
{
    struct spec s = good();
    s.entry = 0x401310;   /* in rodata: not executable */
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0x402350;   /* in data */
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0x400300;   /* one past text's end */
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0x4001ff;   /* one before its start (same page) */
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0;
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0xffffffff80001000ull;
    CHECK_ERR(run(&s), ERR_ELF_ENTRY);
    s.entry = 0x400200;   /* first byte */
    CHECK_ERR(run(&s), ERR_OK);
    s.entry = 0x4002ff;   /* last byte */
    CHECK_ERR(run(&s), ERR_OK);
}

static void test_many_segments(void)
{
    /* n PT_LOADs of one page each, page i at 0x400000 + i * 0x1000. */
    for (unsigned n = 14; n <= 20; n++) {
        struct spec s = good();
        s.nph = s.phnum = (uint16_t)n;
        s.phoff = 64;
        for (unsigned i = 0; i < n; i++)
            s.ph[i] = (struct ph){ PT_LOAD, i == 0 ? PF_R | PF_X : PF_R, 0x10 * i + 0x600,
                                   0x400000 + 0x1000 * i + 0x10 * i + 0x600, 0x10, 0x10, 0x1000 };
        s.entry = s.ph[0].vaddr;
        s.len = 0x600 + 0x10 * n;
        struct elf_info info;
        errval_t err = run_info(&s, &info);
        if (n <= ELF_MAX_SEGMENTS) {
            CHECK_ERR(err, ERR_OK);
            CHECK_EQ(info.nseg, n);
        } else {
            CHECK_ERR(err, ERR_TOO_MANY);
        }
        /* Empty PT_LOADs do not count towards the limit. */
        if (n > ELF_MAX_SEGMENTS) {
            for (unsigned i = ELF_MAX_SEGMENTS; i < n; i++)
                s.ph[i].memsz = s.ph[i].filesz = 0;
            CHECK_ERR(run_info(&s, &info), ERR_OK);
            CHECK_EQ(info.nseg, ELF_MAX_SEGMENTS);
        }
    }
}

/* ---- random damage: never a crash or overread; whatever passes is sane ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check_sane(const struct elf_info *info, size_t len)
{
    CHECK(info->nseg >= 1 && info->nseg <= ELF_MAX_SEGMENTS);
    int entry_ok = 0;
    for (unsigned i = 0; i < info->nseg; i++) {
        const struct elf_segment *g = &info->seg[i];
        CHECK(g->vaddr >= USER_MIN && g->memsz > 0 && g->memsz <= USER_MAX - g->vaddr);
        CHECK(g->filesz <= g->memsz && g->offset <= len && g->filesz <= len - g->offset);
        CHECK(!((g->flags & PF_W) && (g->flags & PF_X)));
        if ((g->flags & PF_X) && info->entry >= g->vaddr && info->entry - g->vaddr < g->memsz)
            entry_ok = 1;
    }
    CHECK(entry_ok);
}

static void test_fuzz(void)
{
    struct spec s = good();
    uint8_t *orig = build(&s);
    int passed = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t *buf = malloc(s.len + 1);
        memcpy(buf, orig, s.len + 1);
        int flips = 1 + (int)(next_rand() % 4);
        for (int f = 0; f < flips; f++) {
            /* Mostly in the headers, where the checker looks. */
            size_t at = next_rand() % 3 ? next_rand() % (64 + 4 * 56) : next_rand() % s.len;
            buf[1 + at] = (uint8_t)next_rand();
        }
        size_t len = next_rand() % 8 ? s.len : next_rand() % s.len;
        uint8_t *img = malloc(len + 1);
        memcpy(img + 1, buf + 1, len);
        struct elf_info info;
        if (elf_check(img + 1, len, &info) == ERR_OK) {
            passed++;
            check_sane(&info, len);
        } else {
            CHECK_EQ(info.nseg, 0);
        }
        free(img);
        free(buf);
    }
    free(orig);
    CHECK(passed > 0);   /* some damage is harmless (padding, p_paddr, contents) */
    /* Pure noise. */
    for (int round = 0; round < 2000; round++) {
        size_t len = next_rand() % 512;
        uint8_t *img = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            img[1 + i] = (uint8_t)next_rand();
        if (len >= 4)
            memcpy(img + 1, "\x7f" "ELF", 4);
        struct elf_info info;
        if (elf_check(img + 1, len, &info) == ERR_OK)
            check_sane(&info, len);
        free(img);
    }
}

/* ---- real files ------------------------------------------------------------ */

static int check_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    static uint8_t data[16 << 20];
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    struct elf_info info;
    errval_t err = elf_check(data, len, &info);
    if (err) {
        printf("%s: refused: %s (%s)\n", path, err_name(err), err_text(err));
        return 1;
    }
    printf("%s: ok, entry %#llx\n", path, (unsigned long long)info.entry);
    for (unsigned i = 0; i < info.nseg; i++) {
        const struct elf_segment *g = &info.seg[i];
        printf("  %c%c%c vaddr %#llx memsz %#llx offset %#llx filesz %#llx\n", g->flags & PF_R ? 'R' : '-',
               g->flags & PF_W ? 'W' : '-', g->flags & PF_X ? 'X' : '-', (unsigned long long)g->vaddr,
               (unsigned long long)g->memsz, (unsigned long long)g->offset, (unsigned long long)g->filesz);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        int bad = 0;
        for (int i = 1; i < argc; i++)
            bad |= check_file(argv[i]);
        return bad;
    }
    test_good();
    test_truncation();
    test_header();
    test_program_headers();
    test_segments();
    test_overlap();
    test_entry();
    test_many_segments();
    test_fuzz();
    return check_done();
}
