/*
 * ACPI table parsers; see acpi.h.
 *
 * Firmware tables are input like any other: each length is checked against
 * what the caller could map before anything behind it is read, multi-byte
 * fields are assembled byte by byte (ACPI structures are packed, so fields
 * are routinely misaligned), and nothing is written outside the caller's
 * fixed-size result. The parsers never allocate and keep little on the stack.
 */
#include "acpi.h"

#define RSDP_V1_SIZE      20u  /* ACPI 1.0: up to and including RsdtAddress */
#define RSDP_V2_SIZE      36u  /* ACPI 2.0+: adds Length, XsdtAddress, extended checksum */
#define SDT_HEADER_SIZE   36u  /* signature, length, revision, checksum, OEM ids, creator */
#define MADT_HEADER_SIZE  44u  /* SDT header, u32 local APIC address, u32 flags */
#define SRAT_HEADER_SIZE  48u  /* SDT header, u32 reserved (1), u64 reserved */
#define SLIT_HEADER_SIZE  44u  /* SDT header, u64 number of localities */
#define SUBTABLE_HEADER   2u   /* u8 type, u8 length */

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool sig_is(const uint8_t *p, const char *sig, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)sig[i])
            return false;
    return true;
}

bool acpi_checksum_ok(const void *p, size_t len)
{
    if (!p)
        return len == 0;
    const uint8_t *b = p;
    uint8_t sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + b[i]);
    return sum == 0;
}

errval_t acpi_parse_rsdp(const void *rsdp, size_t len, uint64_t *root_phys, bool *is_xsdt)
{
    if (!rsdp || !root_phys || !is_xsdt)
        return ERR_INVALID_ARG;
    const uint8_t *p = rsdp;
    if (len < RSDP_V1_SIZE)
        return ERR_TRUNCATED;
    if (!sig_is(p, "RSD PTR ", 8))
        return ERR_BAD_SIGNATURE;
    if (!acpi_checksum_ok(p, RSDP_V1_SIZE))
        return ERR_BAD_CHECKSUM;
    uint8_t revision = p[15];
    uint32_t rsdt = rd32(p + 16);
    uint64_t xsdt = 0;
    if (revision == 1)
        return ERR_BAD_VERSION;   /* never defined: 1.0 is 0, 2.0 and later are >= 2 */
    if (revision >= 2) {
        if (len < RSDP_V2_SIZE)
            return ERR_TRUNCATED;
        uint32_t length = rd32(p + 20);
        if (length < RSDP_V2_SIZE)
            return ERR_BAD_LENGTH;
        if (length > len)
            return ERR_TRUNCATED;
        if (!acpi_checksum_ok(p, length))
            return ERR_BAD_CHECKSUM;
        xsdt = rd64(p + 24);
    }
    if (xsdt) {
        *root_phys = xsdt;
        *is_xsdt = true;
    } else if (rsdt) {
        *root_phys = rsdt;
        *is_xsdt = false;
    } else {
        return ERR_ACPI_NO_ROOT;
    }
    return ERR_OK;
}

/*
 * Map the table at `phys`: first its header, to learn its length, then all
 * of it; check the length and checksum. `sig` may be NULL (any signature).
 */
static errval_t map_table(const struct acpi_mapper *m, uint64_t phys, const char *sig,
                          const uint8_t **table, uint32_t *length)
{
    const uint8_t *h = m->map(m->ctx, phys, SDT_HEADER_SIZE);
    if (!h)
        return ERR_ACPI_UNMAPPED;
    if (sig && !sig_is(h, sig, 4))
        return ERR_BAD_SIGNATURE;
    uint32_t len = rd32(h + 4);
    if (len < SDT_HEADER_SIZE)
        return ERR_BAD_LENGTH;
    const uint8_t *t = m->map(m->ctx, phys, len);
    if (!t)
        return ERR_ACPI_UNMAPPED;
    if (!acpi_checksum_ok(t, len))
        return ERR_BAD_CHECKSUM;
    *table = t;
    *length = len;
    return ERR_OK;
}

/* Record one of the tables we use; a second copy would be ambiguous. */
static errval_t record(uint64_t *phys_slot, uint32_t *len_slot, uint64_t phys, uint32_t len)
{
    if (*phys_slot)
        return ERR_DUPLICATE;
    *phys_slot = phys;
    *len_slot = len;
    return ERR_OK;
}

errval_t acpi_find_tables(const struct acpi_mapper *m, uint64_t root_phys, bool is_xsdt,
                          struct acpi_tables *out)
{
    if (!m || !m->map || !out)
        return ERR_INVALID_ARG;
    *out = (struct acpi_tables){ 0 };
    /* The RSDP revision itself is not passed in; the root type implies it. */
    out->revision = is_xsdt ? 2 : 0;

    const uint8_t *root;
    uint32_t root_len;
    errval_t err = map_table(m, root_phys, is_xsdt ? "XSDT" : "RSDT", &root, &root_len);
    if (err)
        return err;
    uint32_t esize = is_xsdt ? 8 : 4;
    if ((root_len - SDT_HEADER_SIZE) % esize != 0)
        return ERR_BAD_LENGTH;

    for (uint32_t off = SDT_HEADER_SIZE; off < root_len; off += esize) {
        uint64_t phys = is_xsdt ? rd64(root + off) : rd32(root + off);
        if (phys == 0)
            continue;   /* some firmware leaves empty slots */
        const uint8_t *t;
        uint32_t len;
        err = map_table(m, phys, NULL, &t, &len);
        if (err)
            return err;
        if (sig_is(t, "APIC", 4))
            err = record(&out->madt_phys, &out->madt_len, phys, len);
        else if (sig_is(t, "SRAT", 4))
            err = record(&out->srat_phys, &out->srat_len, phys, len);
        else if (sig_is(t, "SLIT", 4))
            err = record(&out->slit_phys, &out->slit_len, phys, len);
        if (err)
            return err;
    }
    return out->madt_phys ? ERR_OK : ERR_ACPI_NO_MADT;
}

/*
 * Common checks for a whole table handed to a parser: readable header, the
 * right signature, a length field at least `min_len` and within `len`, and a
 * correct checksum. Returns the table's own length in *length.
 */
static errval_t check_table(const void *table, size_t len, const char *sig, uint32_t min_len,
                            uint32_t *length)
{
    if (!table)
        return ERR_INVALID_ARG;
    const uint8_t *t = table;
    if (len < SDT_HEADER_SIZE)
        return ERR_TRUNCATED;
    if (!sig_is(t, sig, 4))
        return ERR_BAD_SIGNATURE;
    uint32_t l = rd32(t + 4);
    if (l < min_len)
        return ERR_BAD_LENGTH;
    if (l > len)
        return ERR_TRUNCATED;
    if (!acpi_checksum_ok(t, l))
        return ERR_BAD_CHECKSUM;
    *length = l;
    return ERR_OK;
}

/*
 * MADT and SRAT share one layout after their headers: a list of subtables,
 * each starting with u8 type, u8 length. Steps *off to the next one inside
 * [*off, end) and checks it fits, and is at least as long as its type needs
 * (`min_len`, looked up by the caller's table; 0 for types we skip).
 */
struct subtable {
    uint8_t type;
    uint8_t len;
    const uint8_t *p;
};

static errval_t next_subtable(const uint8_t *t, uint32_t end, uint32_t *off, struct subtable *s)
{
    if (end - *off < SUBTABLE_HEADER)
        return ERR_TRUNCATED;
    s->p = t + *off;
    s->type = s->p[0];
    s->len = s->p[1];
    if (s->len < SUBTABLE_HEADER)
        return ERR_BAD_LENGTH;   /* zero would loop forever; one cannot hold the header */
    if (s->len > end - *off)
        return ERR_TRUNCATED;
    *off += s->len;
    return ERR_OK;
}

enum {
    MADT_LAPIC = 0,
    MADT_IOAPIC = 1,
    MADT_LAPIC_ADDR_OVERRIDE = 5,
    MADT_X2APIC = 9,
};

static uint8_t madt_min_len(uint8_t type)
{
    switch (type) {
    case MADT_LAPIC: return 8;
    case MADT_IOAPIC: return 12;
    case MADT_LAPIC_ADDR_OVERRIDE: return 12;
    case MADT_X2APIC: return 16;
    default: return SUBTABLE_HEADER;
    }
}

static errval_t madt_add_cpu(struct acpi_madt_info *out, uint32_t apic_id, uint32_t uid,
                             uint32_t flags, bool x2apic)
{
    if (out->ncpus == ACPI_MAX_CPUS)
        return ERR_TOO_MANY;
    out->cpus[out->ncpus++] = (struct acpi_cpu){
        .apic_id = apic_id,
        .uid = uid,
        .enabled = flags & 1,
        .online_capable = (flags >> 1) & 1,
        .from_x2apic = x2apic,
    };
    return ERR_OK;
}

static errval_t madt_entry(const struct subtable *s, struct acpi_madt_info *out,
                           uint64_t *override)
{
    const uint8_t *p = s->p;
    switch (s->type) {
    case MADT_LAPIC:
        return madt_add_cpu(out, p[3], p[2], rd32(p + 4), false);
    case MADT_X2APIC:
        return madt_add_cpu(out, rd32(p + 4), rd32(p + 12), rd32(p + 8), true);
    case MADT_IOAPIC:
        if (out->nioapics == ACPI_MAX_IOAPICS)
            return ERR_TOO_MANY;
        out->ioapics[out->nioapics++] = (struct acpi_ioapic){
            .id = p[2], .addr = rd32(p + 4), .gsi_base = rd32(p + 8),
        };
        return ERR_OK;
    case MADT_LAPIC_ADDR_OVERRIDE:
        *override = rd64(p + 4);
        return ERR_OK;
    default:
        return ERR_OK;   /* overrides, NMI sources, ...: not needed here */
    }
}

errval_t acpi_parse_madt(const void *table, size_t len, struct acpi_madt_info *out)
{
    if (!out)
        return ERR_INVALID_ARG;
    out->lapic_addr = 0;
    out->pcat_compat = false;
    out->ncpus = 0;
    out->nioapics = 0;
    uint32_t length;
    errval_t err = check_table(table, len, "APIC", MADT_HEADER_SIZE, &length);
    if (err)
        return err;
    const uint8_t *t = table;
    uint64_t override = 0;
    out->lapic_addr = rd32(t + 36);
    out->pcat_compat = rd32(t + 40) & 1;
    for (uint32_t off = MADT_HEADER_SIZE; off < length;) {
        struct subtable s;
        err = next_subtable(t, length, &off, &s);
        if (!err && s.len < madt_min_len(s.type))
            err = ERR_BAD_LENGTH;
        if (!err)
            err = madt_entry(&s, out, &override);
        if (err)
            return err;
    }
    /* Applied last: the override may come before or after other entries. */
    if (override)
        out->lapic_addr = override;
    return ERR_OK;
}

enum {
    SRAT_CPU = 0,
    SRAT_MEMORY = 1,
    SRAT_X2APIC = 2,
};

static uint8_t srat_min_len(uint8_t type)
{
    switch (type) {
    case SRAT_CPU: return 16;
    case SRAT_MEMORY: return 40;
    case SRAT_X2APIC: return 24;
    default: return SUBTABLE_HEADER;
    }
}

static errval_t srat_add_cpu(struct acpi_srat_info *out, uint32_t apic_id, uint32_t domain,
                             uint32_t flags)
{
    if (!(flags & 1))
        return ERR_OK;   /* disabled: the OS must ignore the entry */
    if (out->ncpus == ACPI_MAX_CPUS)
        return ERR_TOO_MANY;
    out->cpus[out->ncpus++] = (struct acpi_srat_cpu){ .apic_id = apic_id, .domain = domain };
    return ERR_OK;
}

static errval_t srat_entry(const struct subtable *s, struct acpi_srat_info *out)
{
    const uint8_t *p = s->p;
    switch (s->type) {
    case SRAT_CPU: {
        /* The domain is split: bits 7:0 at offset 2, bits 31:8 at 9..11. */
        uint32_t domain = p[2] | (uint32_t)p[9] << 8 | (uint32_t)p[10] << 16 |
                          (uint32_t)p[11] << 24;
        return srat_add_cpu(out, p[3], domain, rd32(p + 4));
    }
    case SRAT_X2APIC:
        return srat_add_cpu(out, rd32(p + 8), rd32(p + 4), rd32(p + 12));
    case SRAT_MEMORY: {
        uint32_t flags = rd32(p + 28);
        if (!(flags & 1))
            return ERR_OK;   /* QEMU pads with disabled all-zero entries */
        uint64_t base = rd32(p + 8) | (uint64_t)rd32(p + 12) << 32;
        uint64_t mlen = rd32(p + 16) | (uint64_t)rd32(p + 20) << 32;
        if (mlen && mlen - 1 > UINT64_MAX - base)
            return ERR_BAD_LENGTH;   /* wraps around the address space */
        if (out->nmem == ACPI_MAX_MEM)
            return ERR_TOO_MANY;
        out->mem[out->nmem++] = (struct acpi_srat_mem){
            .base = base, .len = mlen, .domain = rd32(p + 2), .hotplug = (flags >> 1) & 1,
        };
        return ERR_OK;
    }
    default:
        return ERR_OK;   /* GICC, ITS, generic initiators: not on x86 CPUs */
    }
}

errval_t acpi_parse_srat(const void *table, size_t len, struct acpi_srat_info *out)
{
    if (!out)
        return ERR_INVALID_ARG;
    out->ncpus = 0;
    out->nmem = 0;
    uint32_t length;
    errval_t err = check_table(table, len, "SRAT", SRAT_HEADER_SIZE, &length);
    if (err)
        return err;
    const uint8_t *t = table;
    for (uint32_t off = SRAT_HEADER_SIZE; off < length;) {
        struct subtable s;
        err = next_subtable(t, length, &off, &s);
        if (!err && s.len < srat_min_len(s.type))
            err = ERR_BAD_LENGTH;
        if (!err)
            err = srat_entry(&s, out);
        if (err)
            return err;
    }
    return ERR_OK;
}

errval_t acpi_parse_slit(const void *table, size_t len, struct acpi_slit_info *out)
{
    if (!out)
        return ERR_INVALID_ARG;
    out->n = 0;
    uint32_t length;
    errval_t err = check_table(table, len, "SLIT", SLIT_HEADER_SIZE, &length);
    if (err)
        return err;
    const uint8_t *t = table;
    uint64_t n = rd64(t + 36);
    if (n > ACPI_MAX_DOMAINS)
        return ERR_TOO_MANY;
    /* The matrix is exactly n * n bytes; anything else means the count or
     * the length is wrong, and we cannot tell which. */
    if (length - SLIT_HEADER_SIZE != n * n)
        return ERR_BAD_LENGTH;
    const uint8_t *m = t + SLIT_HEADER_SIZE;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++)
            out->dist[i][j] = m[i * n + j];
    out->n = (uint32_t)n;
    return ERR_OK;
}
