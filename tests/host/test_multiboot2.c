/* Host unit tests for cpudriver/multiboot2.c, on blocks laid out as GRUB 2 passes them. */
#include <stdlib.h>
#include <string.h>
#include "multiboot2.h"
#include "check.h"
#include "qemu_acpi.h"   /* struct tbuf, put32 */

static struct mb2_info info;

/* ---- building boot information blocks ------------------------------------------ */

static void mb_begin(struct tbuf *t)
{
    *t = (struct tbuf){ 0 };
    tb_int(t, 0, 4);   /* total_size, set by mb_end */
    tb_int(t, 0, 4);   /* reserved */
}

/* Start a tag at the next 8-byte boundary; returns its offset for tag_end. */
static size_t tag_begin(struct tbuf *t, uint32_t type)
{
    while (t->n % 8)
        tb_int(t, 0, 1);
    size_t at = t->n;
    tb_int(t, type, 4);
    tb_int(t, 0, 4);
    return at;
}

static void tag_end(struct tbuf *t, size_t at)
{
    put32(t->b + at + 4, (uint32_t)(t->n - at));
}

static void tag_string(struct tbuf *t, uint32_t type, const char *s)
{
    size_t at = tag_begin(t, type);
    tb_bytes(t, s, strlen(s) + 1);
    tag_end(t, at);
}

static void tag_module(struct tbuf *t, uint32_t start, uint32_t end, const char *s)
{
    size_t at = tag_begin(t, 3);
    tb_int(t, start, 4);
    tb_int(t, end, 4);
    tb_bytes(t, s, strlen(s) + 1);
    tag_end(t, at);
}

struct e820 {
    uint64_t base, len;
    uint32_t type;
};

static void tag_mmap(struct tbuf *t, const struct e820 *e, size_t n, uint32_t entry_size)
{
    size_t at = tag_begin(t, 6);
    tb_int(t, entry_size, 4);
    tb_int(t, 0, 4);   /* entry_version */
    for (size_t i = 0; i < n; i++) {
        tb_int(t, e[i].base, 8);
        tb_int(t, e[i].len, 8);
        tb_int(t, e[i].type, 4);
        for (uint32_t k = 20; k < entry_size; k++)
            tb_int(t, 0, 1);
    }
    tag_end(t, at);
}

/* Without the end tag, for the tests that leave it out. */
static void mb_finish(struct tbuf *t)
{
    while (t->n % 8)
        tb_int(t, 0, 1);
    put32(t->b, (uint32_t)t->n);
}

static void mb_end(struct tbuf *t)
{
    size_t at = tag_begin(t, 0);
    tag_end(t, at);
    mb_finish(t);
}

/* Parse from a buffer of exactly `avail` bytes so ASan sees any overread;
 * the copy is kept until the next call because `info` points into it. */
static uint8_t *last_copy;

static errval_t parse(const struct tbuf *t, size_t avail)
{
    free(last_copy);
    last_copy = malloc(avail ? avail : 1);
    memcpy(last_copy, t->b, avail);
    return mb2_parse(last_copy, avail, &info);
}

/* QEMU q35 with 1 GiB under SeaBIOS, as GRUB reports it (order shuffled a
 * little to exercise the sort; GRUB passes it in firmware order). */
static const struct e820 qemu_e820[] = {
    { 0x100000, 0x3fee0000, MB2_MEM_AVAILABLE },
    { 0x0, 0x9fc00, MB2_MEM_AVAILABLE },
    { 0x9fc00, 0x400, MB2_MEM_RESERVED },
    { 0xf0000, 0x10000, MB2_MEM_RESERVED },
    { 0x3ffe0000, 0x20000, MB2_MEM_RESERVED },
    { 0xb0000000, 0x10000000, MB2_MEM_RESERVED },
    { 0xfed1c000, 0x4000, MB2_MEM_RESERVED },
    { 0xfeffc000, 0x4000, MB2_MEM_RESERVED },
    { 0xfffc0000, 0x40000, MB2_MEM_RESERVED },
};
#define QEMU_E820_N (sizeof qemu_e820 / sizeof qemu_e820[0])

static const uint8_t rsdp_v1[20] = "RSD PTR \x00" "BOCHS \x00\x00\x20\xfe\x7f";

/* A block like GRUB's: command line, loader name, modules, basic meminfo,
 * boot device, memory map, framebuffer-ish unknown tag, old ACPI RSDP. */
static void grub_block(struct tbuf *t)
{
    mb_begin(t);
    tag_string(t, 1, "/boot/atoll.elf console=serial smp=4");
    tag_string(t, 2, "GRUB 2.06-13+deb12u1");
    tag_module(t, 0x200000, 0x2345f8, "init verbose");
    tag_module(t, 0x235000, 0x235000, "");
    size_t at = tag_begin(t, 4);   /* basic meminfo: mem_lower, mem_upper */
    tb_int(t, 639, 4);
    tb_int(t, 1047424, 4);
    tag_end(t, at);
    at = tag_begin(t, 5);          /* boot device */
    tb_int(t, 0xe0, 4);
    tb_int(t, 0xffffffff, 4);
    tb_int(t, 0xffffffff, 4);
    tag_end(t, at);
    tag_mmap(t, qemu_e820, QEMU_E820_N, 24);
    at = tag_begin(t, 8);          /* framebuffer: not ours */
    tb_int(t, 0xb8000, 8);
    tb_int(t, 160, 4);
    tb_int(t, 80, 4);
    tb_int(t, 25, 4);
    tb_int(t, 0x0210, 2);
    tag_end(t, at);
    at = tag_begin(t, 14);
    tb_bytes(t, rsdp_v1, sizeof rsdp_v1);
    tag_end(t, at);
    mb_end(t);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_grub_block(void)
{
    struct tbuf t;
    grub_block(&t);
    CHECK_ERR(parse(&t, t.n), ERR_OK);
    CHECK_STREQ(info.cmdline, "/boot/atoll.elf console=serial smp=4");
    CHECK_STREQ(info.bootloader, "GRUB 2.06-13+deb12u1");
    CHECK_EQ(info.module_count, 2);
    CHECK_EQ(info.modules[0].start, 0x200000);
    CHECK_EQ(info.modules[0].end, 0x2345f8);
    CHECK_STREQ(info.modules[0].cmdline, "init verbose");
    CHECK_EQ(info.modules[1].start, 0x235000);
    CHECK_EQ(info.modules[1].end, 0x235000);
    CHECK_STREQ(info.modules[1].cmdline, "");
    CHECK_EQ(info.mmap_count, QEMU_E820_N);
    for (size_t i = 1; i < info.mmap_count; i++)
        CHECK(info.mmap[i - 1].base < info.mmap[i].base);
    CHECK_EQ(info.mmap[0].base, 0);
    CHECK_EQ(info.mmap[0].len, 0x9fc00);
    CHECK_EQ(info.mmap[0].type, MB2_MEM_AVAILABLE);
    CHECK_EQ(info.mmap[3].base, 0x100000);
    CHECK_EQ(info.mmap[3].len, 0x3fee0000);
    CHECK_EQ(info.mmap[5].type, MB2_MEM_RESERVED);
    CHECK_EQ(info.rsdp_tag, 14);
    CHECK_EQ(info.rsdp_len, 20);
    CHECK(info.rsdp && memcmp(info.rsdp, rsdp_v1, 20) == 0);
    /* Pointers point into the block itself. */
    CHECK((const uint8_t *)info.cmdline > last_copy && (const uint8_t *)info.cmdline < last_copy + t.n);

    /* avail larger than total_size is fine: only total_size bytes are read. */
    tb_int(&t, 0xee, 8);
    CHECK_ERR(parse(&t, t.n), ERR_OK);
    t.n -= 8;

    /* Every shorter avail: the header says more than we may read. */
    for (size_t avail = 0; avail < t.n; avail++) {
        errval_t err = parse(&t, avail);
        if (err != ERR_TRUNCATED) {
            fprintf(stderr, "  avail %zu of %zu\n", avail, t.n);
            CHECK_ERR(err, ERR_TRUNCATED);
        }
    }
    /* Every shorter total_size: some tag is cut or the end tag is gone. */
    for (size_t len = 8; len < t.n; len++) {
        uint8_t save[4];
        memcpy(save, t.b, 4);
        put32(t.b, (uint32_t)len);
        errval_t err = parse(&t, len);
        memcpy(t.b, save, 4);
        if (err != ERR_TRUNCATED && err != ERR_MB2_NO_END_TAG) {
            fprintf(stderr, "  total_size %zu of %zu\n", len, t.n);
            CHECK_ERR(err, ERR_TRUNCATED);
        }
    }
    tb_free(&t);
    free(last_copy);
    last_copy = NULL;
}

static void test_header_errors(void)
{
    struct tbuf t;
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_OK);
    CHECK_STREQ(info.cmdline, "");   /* absent tags read as "" */
    CHECK_STREQ(info.bootloader, "");
    CHECK(info.rsdp == NULL);
    CHECK_EQ(info.rsdp_tag, 0);
    CHECK_EQ(info.module_count, 0);

    put32(t.b, 7);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    put32(t.b, 0);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    put32(t.b, (uint32_t)t.n + 8);
    CHECK_ERR(parse(&t, t.n), ERR_TRUNCATED);
    put32(t.b, 8);                     /* a header and nothing else */
    CHECK_ERR(parse(&t, t.n), ERR_MB2_NO_END_TAG);
    put32(t.b, (uint32_t)t.n);

    CHECK_ERR(mb2_parse(NULL, 64, &info), ERR_INVALID_ARG);
    CHECK_ERR(mb2_parse(t.b, t.n, NULL), ERR_INVALID_ARG);
    tb_free(&t);
}

static void test_tag_errors(void)
{
    struct tbuf t;
    /* Tag size below 8 (would loop or underflow). */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    size_t at = tag_begin(&t, 21);
    tb_int(&t, 0, 4);
    put32(t.b + at + 4, 4);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    put32(t.b + at + 4, 0);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    /* Tag size running past total_size. */
    put32(t.b + at + 4, (uint32_t)(t.n - at + 1));
    CHECK_ERR(parse(&t, t.n), ERR_TRUNCATED);
    tb_free(&t);

    /* No end tag. */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    mb_finish(&t);
    CHECK_ERR(parse(&t, t.n), ERR_MB2_NO_END_TAG);
    tb_free(&t);

    /* No memory map. */
    mb_begin(&t);
    tag_string(&t, 1, "quiet");
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_MB2_NO_MMAP);
    tb_free(&t);

    /* Tags after the end tag are not looked at. */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    at = tag_begin(&t, 0);
    tag_end(&t, at);
    tag_string(&t, 1, "ignored");
    mb_finish(&t);
    CHECK_ERR(parse(&t, t.n), ERR_OK);
    CHECK_STREQ(info.cmdline, "");
    tb_free(&t);
}

/* A block with a memory map and one string tag of `type` whose NUL is
 * overwritten. */
static errval_t unterminated(uint32_t type)
{
    struct tbuf t;
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    size_t at;
    if (type == 3) {
        tag_module(&t, 0x200000, 0x201000, "abc");
        at = t.n - 1;
    } else {
        tag_string(&t, type, "abc");
        at = t.n - 1;
    }
    t.b[at] = 'd';
    tb_int(&t, 'x', 1);   /* padding that is not NUL either */
    tb_int(&t, 'x', 1);
    mb_end(&t);
    errval_t err = parse(&t, t.n);
    tb_free(&t);
    return err;
}

static void test_strings_and_modules(void)
{
    CHECK_ERR(unterminated(1), ERR_UNTERMINATED);
    CHECK_ERR(unterminated(2), ERR_UNTERMINATED);
    CHECK_ERR(unterminated(3), ERR_UNTERMINATED);

    struct tbuf t;
    /* A module without room for its string, one too short for its fields,
     * one that ends before it starts. */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    size_t at = tag_begin(&t, 3);
    tb_int(&t, 0x1000, 4);
    tb_int(&t, 0x2000, 4);
    tag_end(&t, at);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_UNTERMINATED);
    put32(t.b + at + 4, 12);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    tb_free(&t);

    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    tag_module(&t, 0x2000, 0x1fff, "backwards");
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    tb_free(&t);

    /* As many modules as the table holds, then one more. */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    for (int i = 0; i < MB2_MAX_MODULES; i++)
        tag_module(&t, 0x200000 + (uint32_t)i * 0x1000, 0x201000 + (uint32_t)i * 0x1000, "m");
    struct tbuf t2 = { 0 };
    tb_bytes(&t2, t.b, t.n);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_OK);
    CHECK_EQ(info.module_count, MB2_MAX_MODULES);
    tag_module(&t2, 0x300000, 0x301000, "one too many");
    mb_end(&t2);
    CHECK_ERR(parse(&t2, t2.n), ERR_TOO_MANY);
    tb_free(&t);
    tb_free(&t2);
}

static errval_t with_mmap(const struct e820 *e, size_t n, uint32_t entry_size)
{
    struct tbuf t;
    mb_begin(&t);
    tag_mmap(&t, e, n, entry_size);
    mb_end(&t);
    errval_t err = parse(&t, t.n);
    tb_free(&t);
    return err;
}

static void test_mmap(void)
{
    /* Entry sizes: the spec's 24, a larger future one; not below 24 or unaligned. */
    CHECK_ERR(with_mmap(qemu_e820, QEMU_E820_N, 24), ERR_OK);
    CHECK_ERR(with_mmap(qemu_e820, QEMU_E820_N, 32), ERR_OK);
    CHECK_EQ(info.mmap_count, QEMU_E820_N);
    CHECK_EQ(info.mmap[8].base, 0xfffc0000);
    CHECK_ERR(with_mmap(qemu_e820, QEMU_E820_N, 20), ERR_BAD_LENGTH);
    CHECK_ERR(with_mmap(qemu_e820, QEMU_E820_N, 28), ERR_BAD_LENGTH);
    CHECK_ERR(with_mmap(qemu_e820, QEMU_E820_N, 0), ERR_BAD_LENGTH);

    /* A partial last entry. */
    struct tbuf t;
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    size_t at = 8;
    tb_int(&t, 0x100000, 8);
    tag_end(&t, at);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_TRUNCATED);
    tb_free(&t);

    /* A map tag too short for its own fields. */
    mb_begin(&t);
    at = tag_begin(&t, 6);
    tb_int(&t, 24, 4);
    tag_end(&t, at);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_BAD_LENGTH);
    tb_free(&t);

    /* Two map tags. */
    mb_begin(&t);
    tag_mmap(&t, qemu_e820, 2, 24);
    tag_mmap(&t, qemu_e820 + 2, 2, 24);
    mb_end(&t);
    CHECK_ERR(parse(&t, t.n), ERR_DUPLICATE);
    tb_free(&t);

    /* Overlaps, including across types and with a contained range;
     * touching ranges are fine; empty ones are dropped. */
    static const struct e820 overlap[] = {
        { 0x100000, 0x100000, 1 }, { 0x1ff000, 0x2000, 2 },
    };
    CHECK_ERR(with_mmap(overlap, 2, 24), ERR_OVERLAP);
    static const struct e820 contained[] = {
        { 0x300000, 0x1000, 2 }, { 0x100000, 0x1000000, 1 },
    };
    CHECK_ERR(with_mmap(contained, 2, 24), ERR_OVERLAP);
    static const struct e820 one_byte[] = {
        { 0x100000, 0x1000, 1 }, { 0x100fff, 0x1000, 2 },
    };
    CHECK_ERR(with_mmap(one_byte, 2, 24), ERR_OVERLAP);
    static const struct e820 same_base[] = {
        { 0x100000, 0x1000, 1 }, { 0x100000, 0x1000, 1 },
    };
    CHECK_ERR(with_mmap(same_base, 2, 24), ERR_OVERLAP);
    static const struct e820 touching[] = {
        { 0x200000, 0x1000, 2 }, { 0x100000, 0x100000, 1 }, { 0x150000, 0, 1 },
        { 0xffffffffff000000ull, 0x1000000, 2 },   /* up to the very top */
    };
    CHECK_ERR(with_mmap(touching, 4, 24), ERR_OK);
    CHECK_EQ(info.mmap_count, 3);
    CHECK_EQ(info.mmap[0].base, 0x100000);
    CHECK_EQ(info.mmap[1].base, 0x200000);
    CHECK_EQ(info.mmap[1].type, 2);
    static const struct e820 wraps[] = { { 0xffffffffff000000ull, 0x1000001, 2 } };
    CHECK_ERR(with_mmap(wraps, 1, 24), ERR_BAD_LENGTH);

    /* As many entries as the table holds, then one more. */
    static struct e820 many[MB2_MAX_MMAP + 1];
    for (size_t i = 0; i <= MB2_MAX_MMAP; i++)
        many[i] = (struct e820){ (MB2_MAX_MMAP - i) * 0x10000ull, 0x10000, 1 };  /* descending */
    CHECK_ERR(with_mmap(many + 1, MB2_MAX_MMAP, 24), ERR_OK);
    CHECK_EQ(info.mmap_count, MB2_MAX_MMAP);
    CHECK_EQ(info.mmap[0].base, 0);
    CHECK_EQ(info.mmap[MB2_MAX_MMAP - 1].base, (MB2_MAX_MMAP - 1) * 0x10000ull);
    CHECK_ERR(with_mmap(many, MB2_MAX_MMAP + 1, 24), ERR_TOO_MANY);
}

static void test_rsdp_tags(void)
{
    static const uint8_t rsdp_v2[36] = "RSD PTR ";
    for (int order = 0; order < 2; order++) {
        struct tbuf t;
        mb_begin(&t);
        tag_mmap(&t, qemu_e820, 2, 24);
        for (int k = 0; k < 2; k++) {
            bool new_one = (k == 0) == (order == 0);
            size_t at = tag_begin(&t, new_one ? 15 : 14);
            if (new_one)
                tb_bytes(&t, rsdp_v2, sizeof rsdp_v2);
            else
                tb_bytes(&t, rsdp_v1, sizeof rsdp_v1);
            tag_end(&t, at);
        }
        mb_end(&t);
        CHECK_ERR(parse(&t, t.n), ERR_OK);
        CHECK_EQ(info.rsdp_tag, 15);   /* the ACPI 2.0 copy wins, in either order */
        CHECK_EQ(info.rsdp_len, 36);
        tb_free(&t);
    }
}

static void test_cmdline_get(void)
{
    const char *v = NULL;
    size_t n = 99;
    const char *cl = "/boot/atoll.elf  console=serial\tsmp=4 debug smpx=1 log= smp=8";
    CHECK(cmdline_get(cl, "console", &v, &n));
    CHECK_EQ(n, 6);
    CHECK(strncmp(v, "serial", n) == 0);
    CHECK(cmdline_get(cl, "smp", &v, &n));   /* the last occurrence wins */
    CHECK_EQ(n, 1);
    CHECK(v[0] == '8');
    CHECK(cmdline_get(cl, "debug", &v, &n));
    CHECK_EQ(n, 0);
    CHECK_STREQ(v, "");
    CHECK(cmdline_get(cl, "log", &v, &n));
    CHECK_EQ(n, 0);
    CHECK(cmdline_get(cl, "smpx", NULL, NULL));
    CHECK(!cmdline_get(cl, "sm", &v, &n));    /* prefixes do not match */
    CHECK(!cmdline_get(cl, "serial", &v, &n)); /* values are not keys */
    CHECK(!cmdline_get(cl, "", &v, &n));
    CHECK(!cmdline_get("", "smp", &v, &n));
    CHECK(!cmdline_get("   ", "smp", &v, &n));
    CHECK(!cmdline_get(NULL, "smp", &v, &n));
    CHECK(!cmdline_get(cl, NULL, &v, &n));
    CHECK(cmdline_get("a=b=c", "a", &v, &n));
    CHECK_EQ(n, 3);
    CHECK(strncmp(v, "b=c", 3) == 0);
}

int main(void)
{
    test_grub_block();
    test_header_errors();
    test_tag_errors();
    test_strings_and_modules();
    test_mmap();
    test_rsdp_tags();
    test_cmdline_get();
    free(last_copy);
    return check_done();
}
