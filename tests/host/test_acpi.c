/* Host unit tests for cpudriver/acpi.c, on tables laid out as QEMU 7.2 emits them. */
#include <stdlib.h>
#include <string.h>
#include "acpi.h"
#include "check.h"
#include "qemu_acpi.h"

/* The parsers' results are large; tests keep them static, like the kernel. */
static struct acpi_madt_info madt;
static struct acpi_srat_info srat;
static struct acpi_slit_info slit;

typedef errval_t (*parse_fn)(const void *table, size_t len, void *out);

static errval_t parse_madt(const void *t, size_t len, void *out) { return acpi_parse_madt(t, len, out); }
static errval_t parse_srat(const void *t, size_t len, void *out) { return acpi_parse_srat(t, len, out); }
static errval_t parse_slit(const void *t, size_t len, void *out) { return acpi_parse_slit(t, len, out); }

/* Offsets at which a subtable starts (plus the end), walked independently of
 * the parser, so we know which shortened lengths are still a valid table. */
static bool is_boundary(const struct tbuf *t, size_t header, size_t at)
{
    size_t off = header;
    while (off < t->n) {
        if (off == at)
            return true;
        off += t->b[off + 1];
    }
    return off == at;
}

/*
 * Every way of cutting a good table short must fail cleanly:
 *  1. only a prefix is readable (len < the header's length field);
 *  2. the table itself is shorter (length field and checksum patched), so the
 *     cut falls inside a subtable, unless it lands on a subtable boundary.
 * Each run reads from a buffer of exactly the given size, so ASan catches any
 * overread.
 */
static void truncation_sweep(const struct tbuf *t, parse_fn fn, void *out, size_t header,
                             bool has_subtables)
{
    for (size_t len = 0; len < t->n; len++) {
        errval_t err;
        PARSE_EXACT(err, fn, t->b, len, out);
        if (err != ERR_TRUNCATED) {
            fprintf(stderr, "  prefix of %zu of %zu bytes\n", len, t->n);
            CHECK_ERR(err, ERR_TRUNCATED);
        }
    }
    for (size_t len = 36; len < t->n; len++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, t->b, len);
        sdt_fix(copy, len);
        errval_t err = fn(copy, len, out);
        free(copy);
        errval_t want = len < header ? ERR_BAD_LENGTH
                      : !has_subtables ? ERR_BAD_LENGTH
                      : is_boundary(t, header, len) ? ERR_OK : ERR_TRUNCATED;
        if (err != want) {
            fprintf(stderr, "  table shortened to %zu of %zu bytes\n", len, t->n);
            CHECK_ERR(err, want);
        }
    }
}

/* Common header faults: wrong signature, checksum, impossible length. */
static void header_faults(const struct tbuf *t, parse_fn fn, void *out, size_t header)
{
    uint8_t *copy = malloc(t->n);

    memcpy(copy, t->b, t->n);
    copy[0] ^= 0x20;                        /* "apic" instead of "APIC" */
    sdt_fix(copy, t->n);
    CHECK_ERR(fn(copy, t->n, out), ERR_BAD_SIGNATURE);

    memcpy(copy, t->b, t->n);
    copy[9]++;
    CHECK_ERR(fn(copy, t->n, out), ERR_BAD_CHECKSUM);

    memcpy(copy, t->b, t->n);
    copy[t->n - 1] ^= 0x01;                 /* last data byte, checksum not fixed */
    CHECK_ERR(fn(copy, t->n, out), ERR_BAD_CHECKSUM);

    memcpy(copy, t->b, t->n);
    put32(copy + 4, (uint32_t)header - 1);  /* shorter than the fixed header */
    fix_checksum(copy, header - 1, 9);
    CHECK_ERR(fn(copy, t->n, out), ERR_BAD_LENGTH);

    memcpy(copy, t->b, t->n);
    put32(copy + 4, 0);
    CHECK_ERR(fn(copy, t->n, out), ERR_BAD_LENGTH);

    memcpy(copy, t->b, t->n);
    put32(copy + 4, (uint32_t)t->n + 1);    /* claims more than we may read */
    CHECK_ERR(fn(copy, t->n, out), ERR_TRUNCATED);

    CHECK_ERR(fn(NULL, t->n, out), ERR_INVALID_ARG);
    CHECK_ERR(fn(t->b, t->n, NULL), ERR_INVALID_ARG);
    free(copy);
}

/* ---- checksum ------------------------------------------------------------------ */

static void test_checksum(void)
{
    uint8_t b[4] = { 1, 2, 3, 0xfa };
    CHECK(acpi_checksum_ok(b, 4));
    CHECK(!acpi_checksum_ok(b, 3));
    CHECK(acpi_checksum_ok(b, 0));
    CHECK(acpi_checksum_ok(NULL, 0));
    CHECK(!acpi_checksum_ok(NULL, 1));
}

/* ---- RSDP ---------------------------------------------------------------------- */

static errval_t rsdp_exact(const uint8_t *p, size_t len, uint64_t *root, bool *x)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    errval_t err = acpi_parse_rsdp(copy, len, root, x);
    free(copy);
    return err;
}

static void test_rsdp(void)
{
    uint8_t r[36];
    uint64_t root = 0;
    bool x = true;

    /* QEMU: revision 0, RSDT only; GRUB hands over 20 bytes. */
    size_t n = build_rsdp(r, 0, 0x7ffe2000, 0);
    CHECK_EQ(n, 20);
    CHECK_ERR(rsdp_exact(r, 20, &root, &x), ERR_OK);
    CHECK_EQ(root, 0x7ffe2000);
    CHECK(!x);
    for (size_t len = 0; len < 20; len++)
        CHECK_ERR(rsdp_exact(r, len, &root, &x), ERR_TRUNCATED);

    /* ACPI 2.0: the XSDT wins. */
    n = build_rsdp(r, 2, 0x7ffe2000, 0x17ffe3000ull);
    CHECK_EQ(n, 36);
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_OK);
    CHECK_EQ(root, 0x17ffe3000ull);
    CHECK(x);
    for (size_t len = 0; len < 36; len++)
        CHECK_ERR(rsdp_exact(r, len, &root, &x), ERR_TRUNCATED);

    /* ACPI 2.0 without an XSDT falls back to the RSDT. */
    build_rsdp(r, 2, 0x7ffe2000, 0);
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_OK);
    CHECK_EQ(root, 0x7ffe2000);
    CHECK(!x);

    /* Neither. */
    build_rsdp(r, 0, 0, 0);
    CHECK_ERR(rsdp_exact(r, 20, &root, &x), ERR_ACPI_NO_ROOT);
    build_rsdp(r, 2, 0, 0);
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_ACPI_NO_ROOT);

    build_rsdp(r, 0, 0x7ffe2000, 0);
    r[7] = 'X';
    CHECK_ERR(rsdp_exact(r, 20, &root, &x), ERR_BAD_SIGNATURE);

    build_rsdp(r, 0, 0x7ffe2000, 0);
    r[16] ^= 1;                                /* first checksum wrong */
    CHECK_ERR(rsdp_exact(r, 20, &root, &x), ERR_BAD_CHECKSUM);

    build_rsdp(r, 2, 0x7ffe2000, 0x1000);
    r[24] ^= 1;                                /* extended checksum wrong */
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_BAD_CHECKSUM);

    build_rsdp(r, 2, 0x7ffe2000, 0x1000);
    put32(r + 20, 20);                         /* length below 36 */
    fix_checksum(r, 36, 32);
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_BAD_LENGTH);

    build_rsdp(r, 2, 0x7ffe2000, 0x1000);
    put32(r + 20, 40);                         /* longer than what is readable */
    fix_checksum(r, 36, 32);
    CHECK_ERR(rsdp_exact(r, 36, &root, &x), ERR_TRUNCATED);

    build_rsdp(r, 0, 0x7ffe2000, 0);
    r[15] = 1;                                 /* revision 1 was never defined */
    fix_checksum(r, 20, 8);
    CHECK_ERR(rsdp_exact(r, 20, &root, &x), ERR_BAD_VERSION);

    CHECK_ERR(acpi_parse_rsdp(NULL, 20, &root, &x), ERR_INVALID_ARG);
    CHECK_ERR(acpi_parse_rsdp(r, 20, NULL, &x), ERR_INVALID_ARG);
    CHECK_ERR(acpi_parse_rsdp(r, 20, &root, NULL), ERR_INVALID_ARG);
}

/* ---- RSDT / XSDT ------------------------------------------------------------- */

static void two_node_q35(struct qemu_machine *m)
{
    /* -M q35 -smp 4 -m 1G -numa node,mem=512M,cpus=0-1 -numa node,mem=512M,cpus=2-3
     * -numa dist,src=0,dst=1,val=21 */
    qm_simple(m, true, 4, 2, 1ull << 30);
    m->have_dist = true;
    m->dist[0][0] = m->dist[1][1] = 10;
    m->dist[0][1] = m->dist[1][0] = 21;
}

static void test_find_tables(void)
{
    struct qemu_machine m;
    struct acpi_tables tabs;
    struct phys ph = { 0 };
    struct acpi_mapper map = { phys_map, &ph };

    two_node_q35(&m);
    uint64_t rsdt = phys_qemu(&ph, &m);
    CHECK_ERR(acpi_find_tables(&map, rsdt, false, &tabs), ERR_OK);
    CHECK_EQ(tabs.madt_phys, PHYS_MADT);
    CHECK_EQ(tabs.madt_len, phys_region(&ph, PHYS_MADT)->n);
    CHECK_EQ(tabs.srat_phys, PHYS_SRAT);
    CHECK_EQ(tabs.srat_len, phys_region(&ph, PHYS_SRAT)->n);
    CHECK_EQ(tabs.slit_phys, PHYS_SLIT);
    CHECK_EQ(tabs.slit_len, 44 + 4);
    CHECK_EQ(tabs.revision, 0);
    CHECK_ERR(acpi_find_tables(NULL, rsdt, false, &tabs), ERR_INVALID_ARG);
    CHECK_ERR(acpi_find_tables(&map, rsdt, false, NULL), ERR_INVALID_ARG);

    /* The same tables behind an XSDT (8-byte entries), with an empty slot. */
    struct tbuf xsdt = { 0 };
    sdt_begin(&xsdt, "XSDT", 1);
    struct tbuf *r = phys_region(&ph, PHYS_RSDT);
    for (size_t off = 36; off < r->n; off += 4)
        tb_int(&xsdt, r->b[off] | r->b[off + 1] << 8 | (uint32_t)r->b[off + 2] << 16 |
                      (uint32_t)r->b[off + 3] << 24, 8);
    tb_int(&xsdt, 0, 8);
    sdt_end(&xsdt);
    phys_add(&ph, 0x100000000ull, xsdt);
    CHECK_ERR(acpi_find_tables(&map, 0x100000000ull, true, &tabs), ERR_OK);
    CHECK_EQ(tabs.madt_phys, PHYS_MADT);
    CHECK_EQ(tabs.srat_phys, PHYS_SRAT);
    CHECK_EQ(tabs.slit_phys, PHYS_SLIT);
    CHECK_EQ(tabs.revision, 2);
    /* An RSDT is not an XSDT, nor the other way round. */
    CHECK_ERR(acpi_find_tables(&map, 0x100000000ull, false, &tabs), ERR_BAD_SIGNATURE);
    CHECK_ERR(acpi_find_tables(&map, rsdt, true, &tabs), ERR_BAD_SIGNATURE);
    phys_free(&ph);

    /* pc without -numa: no SRAT, no SLIT. */
    qm_simple(&m, false, 2, 0, 0);
    rsdt = phys_qemu(&ph, &m);
    CHECK_ERR(acpi_find_tables(&map, rsdt, false, &tabs), ERR_OK);
    CHECK_EQ(tabs.madt_phys, PHYS_MADT);
    CHECK_EQ(tabs.srat_phys, 0);
    CHECK_EQ(tabs.slit_phys, 0);
    phys_free(&ph);
}

/* Each corruption of the table set, applied to a fresh copy. */
enum fault {
    ROOT_UNMAPPED, ENTRY_UNMAPPED, ENTRY_PAST_MAPPED, ROOT_BAD_CHECKSUM, TABLE_BAD_CHECKSUM,
    ROOT_SHORT, ROOT_PARTIAL_ENTRY, TABLE_SHORT, NO_MADT, TWO_MADTS, EMPTY_SLOT,
};

static errval_t find_with_fault(enum fault f)
{
    struct qemu_machine m;
    struct acpi_tables tabs;
    struct phys ph = { 0 };
    struct acpi_mapper map = { phys_map, &ph };
    two_node_q35(&m);
    uint64_t rsdt = phys_qemu(&ph, &m);
    struct tbuf *r = phys_region(&ph, PHYS_RSDT);

    switch (f) {
    case ROOT_UNMAPPED:
        rsdt = 0x12345000;
        break;
    case ENTRY_UNMAPPED:
        put32(r->b + 36 + 4, 0x00dead00);      /* MADT entry -> nowhere */
        sdt_end(r);
        break;
    case ENTRY_PAST_MAPPED: {                  /* header mapped, body not */
        struct tbuf h = { 0 };
        sdt_begin(&h, "SSDT", 1);
        put32(h.b + 4, 100);
        fix_checksum(h.b, h.n, 9);
        phys_add(&ph, 0x7ffe3000, h);
        put32(r->b + 36 + 4, 0x7ffe3000);
        sdt_end(r);
        break;
    }
    case ROOT_BAD_CHECKSUM:
        r->b[9]++;
        break;
    case TABLE_BAD_CHECKSUM:                   /* even one we do not use (FACP) */
        phys_region(&ph, PHYS_FACP)->b[40] ^= 0xff;
        break;
    case ROOT_SHORT:
        put32(r->b + 4, 35);
        fix_checksum(r->b, r->n, 9);
        break;
    case ROOT_PARTIAL_ENTRY:
        tb_int(r, 0, 2);
        sdt_end(r);
        break;
    case TABLE_SHORT: {
        struct tbuf *t = phys_region(&ph, PHYS_HPET);
        put32(t->b + 4, 20);
        fix_checksum(t->b, t->n, 9);
        break;
    }
    case NO_MADT:
        put32(r->b + 36 + 4, PHYS_HPET);
        sdt_end(r);
        break;
    case TWO_MADTS:
        tb_int(r, PHYS_MADT, 4);
        sdt_end(r);
        break;
    case EMPTY_SLOT:                           /* skipped, not an error */
        tb_int(r, 0, 4);
        sdt_end(r);
        break;
    }
    errval_t err = acpi_find_tables(&map, rsdt, false, &tabs);
    phys_free(&ph);
    return err;
}

static void test_find_tables_faults(void)
{
    CHECK_ERR(find_with_fault(ROOT_UNMAPPED), ERR_ACPI_UNMAPPED);
    CHECK_ERR(find_with_fault(ENTRY_UNMAPPED), ERR_ACPI_UNMAPPED);
    CHECK_ERR(find_with_fault(ENTRY_PAST_MAPPED), ERR_ACPI_UNMAPPED);
    CHECK_ERR(find_with_fault(ROOT_BAD_CHECKSUM), ERR_BAD_CHECKSUM);
    CHECK_ERR(find_with_fault(TABLE_BAD_CHECKSUM), ERR_BAD_CHECKSUM);
    CHECK_ERR(find_with_fault(ROOT_SHORT), ERR_BAD_LENGTH);
    CHECK_ERR(find_with_fault(ROOT_PARTIAL_ENTRY), ERR_BAD_LENGTH);
    CHECK_ERR(find_with_fault(TABLE_SHORT), ERR_BAD_LENGTH);
    CHECK_ERR(find_with_fault(NO_MADT), ERR_ACPI_NO_MADT);
    CHECK_ERR(find_with_fault(TWO_MADTS), ERR_DUPLICATE);
    CHECK_ERR(find_with_fault(EMPTY_SLOT), ERR_OK);
}

/* ---- MADT ------------------------------------------------------------------------ */

static void test_madt_qemu(void)
{
    struct qemu_machine m;
    struct tbuf t = { 0 };

    /* -M q35 -smp 4: four enabled LAPICs, one I/O APIC. */
    qm_simple(&m, true, 4, 0, 0);
    build_madt(&t, &m);
    CHECK_ERR(acpi_parse_madt(t.b, t.n, &madt), ERR_OK);
    CHECK_EQ(madt.lapic_addr, 0xfee00000);
    CHECK(madt.pcat_compat);
    CHECK_EQ(madt.ncpus, 4);
    for (uint32_t i = 0; i < 4 && i < madt.ncpus; i++) {
        CHECK_EQ(madt.cpus[i].apic_id, i);
        CHECK_EQ(madt.cpus[i].uid, i);
        CHECK(madt.cpus[i].enabled);
        CHECK(!madt.cpus[i].online_capable);
        CHECK(!madt.cpus[i].from_x2apic);
    }
    CHECK_EQ(madt.nioapics, 1);
    CHECK_EQ(madt.ioapics[0].id, 0);
    CHECK_EQ(madt.ioapics[0].addr, 0xfec00000);
    CHECK_EQ(madt.ioapics[0].gsi_base, 0);
    truncation_sweep(&t, parse_madt, &madt, 44, true);
    header_faults(&t, parse_madt, &madt, 44);
    tb_free(&t);

    /* -M pc -smp 2,maxcpus=4,sockets=2,cores=2: APIC ids 0,1,2,3, only two present. */
    qm_simple(&m, false, 4, 0, 0);
    m.present = 2;
    build_madt(&t, &m);
    CHECK_ERR(acpi_parse_madt(t.b, t.n, &madt), ERR_OK);
    CHECK_EQ(madt.ncpus, 4);
    CHECK(madt.cpus[0].enabled && madt.cpus[1].enabled);
    CHECK(!madt.cpus[2].enabled && !madt.cpus[3].enabled);
    tb_free(&t);

    /* -smp 6,sockets=2,cores=3: sparse APIC ids; 300 needs an x2APIC entry. */
    qm_simple(&m, true, 6, 0, 0);
    static const uint32_t ids[6] = { 0, 1, 2, 4, 5, 300 };
    memcpy(m.apic_id, ids, sizeof ids);
    build_madt(&t, &m);
    CHECK_ERR(acpi_parse_madt(t.b, t.n, &madt), ERR_OK);
    CHECK_EQ(madt.ncpus, 6);
    for (uint32_t i = 0; i < 6 && i < madt.ncpus; i++) {
        CHECK_EQ(madt.cpus[i].apic_id, ids[i]);
        CHECK_EQ(madt.cpus[i].uid, i);
        CHECK_EQ(madt.cpus[i].from_x2apic, ids[i] >= 255);
    }
    truncation_sweep(&t, parse_madt, &madt, 44, true);
    tb_free(&t);
}

/* A MADT header followed by the given raw entry bytes. */
static void madt_with(struct tbuf *t, const uint8_t *entries, size_t n)
{
    *t = (struct tbuf){ 0 };
    sdt_begin(t, "APIC", 1);
    tb_int(t, 0xfee00000, 4);
    tb_int(t, 0, 4);
    tb_bytes(t, entries, n);
    sdt_end(t);
}

static errval_t madt_entries(const uint8_t *entries, size_t n)
{
    struct tbuf t;
    errval_t err;
    madt_with(&t, entries, n);
    PARSE_EXACT(err, parse_madt, t.b, t.n, &madt);
    tb_free(&t);
    return err;
}

static void test_madt_entries(void)
{
    /* Local APIC address override, before the LAPICs it applies to; an
     * online-capable (hot-pluggable) CPU; an unknown type 0x7f skipped. */
    static const uint8_t good[] = {
        5, 12, 0, 0, 0x00, 0x00, 0xe0, 0xfe, 0x01, 0, 0, 0,
        0, 8, 7, 3, 1, 0, 0, 0,
        0x7f, 3, 0xaa,
        0, 8, 8, 9, 2, 0, 0, 0,
        9, 16, 0, 0, 0x00, 0x01, 0, 0, 1, 0, 0, 0, 0x34, 0x12, 0, 0,
    };
    CHECK_ERR(madt_entries(good, sizeof good), ERR_OK);
    CHECK_EQ(madt.lapic_addr, 0x1fee00000ull);
    CHECK(!madt.pcat_compat);
    CHECK_EQ(madt.ncpus, 3);
    CHECK_EQ(madt.cpus[0].apic_id, 3);
    CHECK_EQ(madt.cpus[0].uid, 7);
    CHECK(madt.cpus[0].enabled);
    CHECK_EQ(madt.cpus[1].apic_id, 9);
    CHECK(!madt.cpus[1].enabled);
    CHECK(madt.cpus[1].online_capable);
    CHECK_EQ(madt.cpus[2].apic_id, 0x100);
    CHECK_EQ(madt.cpus[2].uid, 0x1234);
    CHECK(madt.cpus[2].from_x2apic);
    CHECK(madt.cpus[2].enabled);

    static const uint8_t zero_len[] = { 0, 8, 0, 0, 1, 0, 0, 0, 4, 0, 0xff, 0, 0, 1 };
    CHECK_ERR(madt_entries(zero_len, sizeof zero_len), ERR_BAD_LENGTH);
    static const uint8_t one_len[] = { 4, 1 };
    CHECK_ERR(madt_entries(one_len, sizeof one_len), ERR_BAD_LENGTH);
    static const uint8_t past_end[] = { 0, 8, 0, 0, 1, 0, 0, 0, 0, 9, 1, 1, 1, 0, 0, 0 };
    CHECK_ERR(madt_entries(past_end, sizeof past_end), ERR_TRUNCATED);
    static const uint8_t lone_byte[] = { 0, 8, 0, 0, 1, 0, 0, 0, 0 };
    CHECK_ERR(madt_entries(lone_byte, sizeof lone_byte), ERR_TRUNCATED);
    static const uint8_t short_lapic[] = { 0, 6, 0, 0, 1, 0 };
    CHECK_ERR(madt_entries(short_lapic, sizeof short_lapic), ERR_BAD_LENGTH);
    static const uint8_t short_ioapic[] = { 1, 10, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0 };
    CHECK_ERR(madt_entries(short_ioapic, sizeof short_ioapic), ERR_BAD_LENGTH);
    static const uint8_t short_override[] = { 5, 8, 0, 0, 0, 0, 0xe0, 0xfe };
    CHECK_ERR(madt_entries(short_override, sizeof short_override), ERR_BAD_LENGTH);
    static const uint8_t short_x2apic[] = { 9, 12, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0 };
    CHECK_ERR(madt_entries(short_x2apic, sizeof short_x2apic), ERR_BAD_LENGTH);
    /* Longer than needed is fine (later revisions append fields). */
    static const uint8_t long_lapic[] = { 0, 10, 0, 5, 1, 0, 0, 0, 0xee, 0xee };
    CHECK_ERR(madt_entries(long_lapic, sizeof long_lapic), ERR_OK);
    CHECK_EQ(madt.ncpus, 1);
    CHECK_EQ(madt.cpus[0].apic_id, 5);
    CHECK_ERR(madt_entries(NULL, 0), ERR_OK);  /* no entries at all */
    CHECK_EQ(madt.ncpus, 0);

    /* One LAPIC more than the table holds; likewise I/O APICs. */
    struct tbuf e = { 0 };
    for (int i = 0; i <= ACPI_MAX_CPUS; i++) {
        uint8_t lapic[8] = { 0, 8, (uint8_t)i, (uint8_t)i, 1, 0, 0, 0 };
        tb_bytes(&e, lapic, 8);
        if (i == ACPI_MAX_CPUS - 1)
            CHECK_ERR(madt_entries(e.b, e.n), ERR_OK);
    }
    CHECK_ERR(madt_entries(e.b, e.n), ERR_TOO_MANY);
    tb_free(&e);
    for (int i = 0; i <= ACPI_MAX_IOAPICS; i++) {
        uint8_t io[12] = { 1, 12, (uint8_t)i, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0 };
        tb_bytes(&e, io, 12);
    }
    CHECK_ERR(madt_entries(e.b, e.n), ERR_TOO_MANY);
    tb_free(&e);
}

/* ---- SRAT --------------------------------------------------------------------- */

static void check_mem(size_t i, uint64_t base, uint64_t len, uint32_t domain, bool hotplug)
{
    CHECK(i < srat.nmem);
    if (i >= srat.nmem)
        return;
    CHECK_EQ(srat.mem[i].base, base);
    CHECK_EQ(srat.mem[i].len, len);
    CHECK_EQ(srat.mem[i].domain, domain);
    CHECK_EQ(srat.mem[i].hotplug, hotplug);
}

static void test_srat_qemu(void)
{
    struct qemu_machine m;
    struct tbuf t = { 0 };

    /* make run's default: q35, 4 CPUs, 1 GiB over 2 nodes. */
    two_node_q35(&m);
    build_srat(&t, &m);
    CHECK_ERR(acpi_parse_srat(t.b, t.n, &srat), ERR_OK);
    CHECK_EQ(srat.ncpus, 4);
    for (uint32_t i = 0; i < 4 && i < srat.ncpus; i++) {
        CHECK_EQ(srat.cpus[i].apic_id, i);
        CHECK_EQ(srat.cpus[i].domain, i / 2);
    }
    CHECK_EQ(srat.nmem, 3);   /* the 640K hole splits node 0; padding is disabled */
    check_mem(0, 0, 0xa0000, 0, false);
    check_mem(1, 0x100000, 0x20000000 - 0x100000, 0, false);
    check_mem(2, 0x20000000, 0x20000000, 1, false);
    truncation_sweep(&t, parse_srat, &srat, 48, true);
    header_faults(&t, parse_srat, &srat, 48);
    tb_free(&t);

    /* -M q35 -m 8G,maxmem=16G, 4 nodes of 2 GiB: the PCI hole leaves node 1
     * entirely above 4 GiB; the hot-plug area goes to the last node. */
    qm_simple(&m, true, 8, 4, 8ull << 30);
    m.hotplug_base = 0x300000000ull;
    m.hotplug_len = 8ull << 30;
    build_srat(&t, &m);
    CHECK_ERR(acpi_parse_srat(t.b, t.n, &srat), ERR_OK);
    CHECK_EQ(srat.ncpus, 8);
    CHECK_EQ(srat.nmem, 6);
    check_mem(0, 0, 0xa0000, 0, false);
    check_mem(1, 0x100000, 0x80000000 - 0x100000, 0, false);
    check_mem(2, 0x100000000ull, 2ull << 30, 1, false);
    check_mem(3, 0x180000000ull, 2ull << 30, 2, false);
    check_mem(4, 0x200000000ull, 2ull << 30, 3, false);
    check_mem(5, 0x300000000ull, 8ull << 30, 3, true);
    truncation_sweep(&t, parse_srat, &srat, 48, true);
    tb_free(&t);

    /* -M pc -m 4G on 2 nodes: pc's PCI hole starts at 3 GiB. */
    qm_simple(&m, false, 2, 2, 4ull << 30);
    build_srat(&t, &m);
    CHECK_ERR(acpi_parse_srat(t.b, t.n, &srat), ERR_OK);
    CHECK_EQ(srat.nmem, 4);
    check_mem(0, 0, 0xa0000, 0, false);
    check_mem(1, 0x100000, 0x80000000 - 0x100000, 0, false);
    check_mem(2, 0x80000000, 0x40000000, 1, false);
    check_mem(3, 0x100000000ull, 0x40000000, 1, false);
    tb_free(&t);

    /* x2APIC ids and a domain above 255. */
    qm_simple(&m, true, 2, 2, 1ull << 30);
    m.apic_id[1] = 0x1234;
    m.cpu_node[0] = 0;
    m.cpu_node[1] = 1;
    build_srat(&t, &m);
    CHECK_ERR(acpi_parse_srat(t.b, t.n, &srat), ERR_OK);
    CHECK_EQ(srat.ncpus, 2);
    CHECK_EQ(srat.cpus[1].apic_id, 0x1234);
    CHECK_EQ(srat.cpus[1].domain, 1);
    tb_free(&t);
}

static void srat_with(struct tbuf *t, const uint8_t *entries, size_t n)
{
    *t = (struct tbuf){ 0 };
    sdt_begin(t, "SRAT", 3);
    tb_int(t, 1, 4);
    tb_int(t, 0, 8);
    tb_bytes(t, entries, n);
    sdt_end(t);
}

static errval_t srat_entries(const uint8_t *entries, size_t n)
{
    struct tbuf t;
    errval_t err;
    srat_with(&t, entries, n);
    PARSE_EXACT(err, parse_srat, t.b, t.n, &srat);
    tb_free(&t);
    return err;
}

static void test_srat_entries(void)
{
    /* A 32-bit domain split over bytes 2 and 9..11; a disabled CPU; an
     * x2APIC affinity entry; a disabled and a hot-pluggable range; a GICC
     * affinity (type 3) skipped. */
    static const uint8_t good[] = {
        0, 16, 0x78, 7, 1, 0, 0, 0, 0, 0x56, 0x34, 0x12, 0, 0, 0, 0,
        0, 16, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        2, 24, 0, 0, 5, 0, 0, 0, 0x00, 0x02, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 40, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0,
            0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 40, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 40, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0,
            0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        3, 18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    CHECK_ERR(srat_entries(good, sizeof good), ERR_OK);
    CHECK_EQ(srat.ncpus, 2);
    CHECK_EQ(srat.cpus[0].apic_id, 7);
    CHECK_EQ(srat.cpus[0].domain, 0x12345678);
    CHECK_EQ(srat.cpus[1].apic_id, 0x200);
    CHECK_EQ(srat.cpus[1].domain, 5);
    CHECK_EQ(srat.nmem, 2);
    check_mem(0, 0x100000000ull, 0x40000000, 2, false);
    check_mem(1, 0x200000000ull, 0x40000000, 4, true);

    static const uint8_t zero_len[] = { 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    CHECK_ERR(srat_entries(zero_len, sizeof zero_len), ERR_BAD_LENGTH);
    static const uint8_t short_cpu[] = { 0, 12, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0 };
    CHECK_ERR(srat_entries(short_cpu, sizeof short_cpu), ERR_BAD_LENGTH);
    static const uint8_t short_mem[] = { 1, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
    CHECK_ERR(srat_entries(short_mem, sizeof short_mem), ERR_BAD_LENGTH);
    static const uint8_t short_x2[] = { 2, 16, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0 };
    CHECK_ERR(srat_entries(short_x2, sizeof short_x2), ERR_BAD_LENGTH);
    static const uint8_t past_end[] = { 0, 24, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    CHECK_ERR(srat_entries(past_end, sizeof past_end), ERR_TRUNCATED);
    /* A range that wraps past 2^64; one that ends exactly there is fine. */
    uint8_t wraps[] = {
        1, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x02,
        0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    CHECK_ERR(srat_entries(wraps, sizeof wraps), ERR_BAD_LENGTH);
    wraps[23] = 0x01;
    CHECK_ERR(srat_entries(wraps, sizeof wraps), ERR_OK);
    check_mem(0, 0xff00000000000000ull, 0x0100000000000000ull, 0, false);

    struct tbuf e = { 0 };
    for (int i = 0; i <= ACPI_MAX_MEM; i++) {
        struct tbuf one = { 0 };
        srat_mem(&one, (uint64_t)i << 30, 1ull << 30, 0, MEM_ENABLED);
        tb_bytes(&e, one.b, one.n);
        tb_free(&one);
        if (i == ACPI_MAX_MEM - 1)
            CHECK_ERR(srat_entries(e.b, e.n), ERR_OK);
    }
    CHECK_ERR(srat_entries(e.b, e.n), ERR_TOO_MANY);
    tb_free(&e);
    for (int i = 0; i <= ACPI_MAX_CPUS; i++) {
        uint8_t x2[24] = { 2, 24, 0, 0, 0, 0, 0, 0, (uint8_t)i, (uint8_t)(i >> 8), 0, 0, 1 };
        tb_bytes(&e, x2, sizeof x2);
    }
    CHECK_ERR(srat_entries(e.b, e.n), ERR_TOO_MANY);
    tb_free(&e);
}

/* ---- SLIT -------------------------------------------------------------------- */

static void test_slit(void)
{
    struct qemu_machine m;
    struct tbuf t = { 0 };

    /* -numa dist for 4 nodes in a ring: neighbours 20, opposite 30. */
    qm_simple(&m, true, 4, 4, 4ull << 30);
    m.have_dist = true;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            m.dist[i][j] = i == j ? 10 : (i - j + 4) % 4 == 2 ? 30 : 20;
    build_slit(&t, &m);
    CHECK_EQ(t.n, 44 + 16);
    CHECK_ERR(acpi_parse_slit(t.b, t.n, &slit), ERR_OK);
    CHECK_EQ(slit.n, 4);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            CHECK_EQ(slit.dist[i][j], m.dist[i][j]);
    truncation_sweep(&t, parse_slit, &slit, 44, false);
    header_faults(&t, parse_slit, &slit, 44);

    /* Wrong size: the count says 4 but 3x3 bytes follow, or 5 and 4x4. */
    uint8_t *c = malloc(t.n + 8);
    memcpy(c, t.b, t.n);
    sdt_fix(c, 44 + 9);
    CHECK_ERR(acpi_parse_slit(c, 44 + 9, &slit), ERR_BAD_LENGTH);
    memcpy(c, t.b, t.n);
    c[36] = 5;
    sdt_fix(c, t.n);
    CHECK_ERR(acpi_parse_slit(c, t.n, &slit), ERR_BAD_LENGTH);
    memcpy(c, t.b, t.n);
    c[36] = 3;                                  /* 3x3 plus 7 stray bytes */
    sdt_fix(c, t.n);
    CHECK_ERR(acpi_parse_slit(c, t.n, &slit), ERR_BAD_LENGTH);
    memcpy(c, t.b, t.n);
    c[36 + 4] = 1;                              /* 2^32 + 4 localities */
    sdt_fix(c, t.n);
    CHECK_ERR(acpi_parse_slit(c, t.n, &slit), ERR_TOO_MANY);
    free(c);
    tb_free(&t);

    /* More localities than the table holds. */
    sdt_begin(&t, "SLIT", 1);
    tb_int(&t, ACPI_MAX_DOMAINS + 1, 8);
    for (int i = 0; i < (ACPI_MAX_DOMAINS + 1) * (ACPI_MAX_DOMAINS + 1); i++)
        tb_int(&t, 20, 1);
    sdt_end(&t);
    CHECK_ERR(acpi_parse_slit(t.b, t.n, &slit), ERR_TOO_MANY);
    tb_free(&t);
    /* Zero localities is well-formed (topo_build falls back). */
    m.nnodes = 0;
    build_slit(&t, &m);
    CHECK_ERR(acpi_parse_slit(t.b, t.n, &slit), ERR_OK);
    CHECK_EQ(slit.n, 0);
    tb_free(&t);
}

int main(void)
{
    test_checksum();
    test_rsdp();
    test_find_tables();
    test_find_tables_faults();
    test_madt_qemu();
    test_madt_entries();
    test_srat_qemu();
    test_srat_entries();
    test_slit();
    return check_done();
}
