/*
 * Multiboot2 boot information parser; see multiboot2.h.
 *
 * The block comes from the boot loader, so nothing in it is trusted: every
 * field is read byte by byte (the block carries no alignment promise we want
 * to rely on, and unaligned loads would trip UBSan in the host tests), and
 * every offset is compared against the bytes we were told we may read before
 * it is used. Offsets are computed in uint64_t so a 32-bit size can never
 * wrap them.
 */
#include "multiboot2.h"

enum {
    TAG_END = 0,
    TAG_CMDLINE = 1,
    TAG_BOOTLOADER = 2,
    TAG_MODULE = 3,
    TAG_MMAP = 6,
    TAG_ACPI_OLD = 14,
    TAG_ACPI_NEW = 15,
};

#define TAG_HEADER_SIZE   8u   /* u32 type, u32 size */
#define MODULE_FIXED_SIZE 16u  /* tag header, u32 mod_start, u32 mod_end */
#define MMAP_FIXED_SIZE   16u  /* tag header, u32 entry_size, u32 entry_version */
#define MMAP_ENTRY_MIN    24u  /* u64 base, u64 len, u32 type, u32 reserved */

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* The string occupying [p, p + len) must end with a NUL somewhere inside. */
static errval_t check_string(const uint8_t *p, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] == '\0')
            return ERR_OK;
    return ERR_UNTERMINATED;
}

static errval_t parse_string_tag(const uint8_t *tag, uint32_t size, const char **dst)
{
    errval_t err = check_string(tag + TAG_HEADER_SIZE, size - TAG_HEADER_SIZE);
    if (err)
        return err;
    *dst = (const char *)(tag + TAG_HEADER_SIZE);
    return ERR_OK;
}

static errval_t parse_module(const uint8_t *tag, uint32_t size, struct mb2_info *out)
{
    if (size < MODULE_FIXED_SIZE)
        return ERR_BAD_LENGTH;
    uint32_t start = rd32(tag + 8), end = rd32(tag + 12);
    if (end < start)
        return ERR_BAD_LENGTH;   /* a module of negative size */
    /* The command line is required: the spec always has one, if empty. */
    errval_t err = check_string(tag + MODULE_FIXED_SIZE, size - MODULE_FIXED_SIZE);
    if (err)
        return err;
    if (out->module_count == MB2_MAX_MODULES)
        return ERR_TOO_MANY;
    struct mb2_module *m = &out->modules[out->module_count++];
    m->start = start;
    m->end = end;
    m->cmdline = (const char *)(tag + MODULE_FIXED_SIZE);
    return ERR_OK;
}

static errval_t parse_mmap(const uint8_t *tag, uint32_t size, struct mb2_info *out)
{
    if (size < MMAP_FIXED_SIZE)
        return ERR_BAD_LENGTH;
    /* entry_version is deliberately not checked: the spec promises later
     * versions only append fields, which entry_size lets us skip. */
    uint32_t entry_size = rd32(tag + 8);
    if (entry_size < MMAP_ENTRY_MIN || entry_size % 8 != 0)
        return ERR_BAD_LENGTH;
    uint32_t bytes = size - MMAP_FIXED_SIZE;
    if (bytes % entry_size != 0)
        return ERR_TRUNCATED;    /* the last entry runs past the tag */
    for (uint32_t off = MMAP_FIXED_SIZE; off < size; off += entry_size) {
        const uint8_t *e = tag + off;
        uint64_t base = rd64(e), len = rd64(e + 8);
        if (len == 0)
            continue;            /* describes nothing; dropping it keeps the overlap check simple */
        if (len - 1 > UINT64_MAX - base)
            return ERR_BAD_LENGTH;   /* wraps around the address space */
        if (out->mmap_count == MB2_MAX_MMAP)
            return ERR_TOO_MANY;
        out->mmap[out->mmap_count++] = (struct mb2_mmap_entry){ base, len, rd32(e + 16) };
    }
    return ERR_OK;
}

/* Insertion sort by base (at most MB2_MAX_MMAP entries, usually already
 * sorted, so this is close to linear), then reject overlaps. Ends are
 * compared inclusively so a range ending at 2^64 cannot overflow. */
static errval_t sort_mmap(struct mb2_info *out)
{
    for (size_t i = 1; i < out->mmap_count; i++) {
        struct mb2_mmap_entry e = out->mmap[i];
        size_t j = i;
        for (; j > 0 && out->mmap[j - 1].base > e.base; j--)
            out->mmap[j] = out->mmap[j - 1];
        out->mmap[j] = e;
    }
    for (size_t i = 1; i < out->mmap_count; i++) {
        const struct mb2_mmap_entry *prev = &out->mmap[i - 1];
        if (prev->base + (prev->len - 1) >= out->mmap[i].base)
            return ERR_OVERLAP;
    }
    return ERR_OK;
}

/* Handle one tag whose header and body lie inside the block. */
static errval_t parse_tag(const uint8_t *tag, uint32_t type, uint32_t size, struct mb2_info *out,
                          bool *seen_mmap)
{
    switch (type) {
    case TAG_CMDLINE:
        return parse_string_tag(tag, size, &out->cmdline);
    case TAG_BOOTLOADER:
        return parse_string_tag(tag, size, &out->bootloader);
    case TAG_MODULE:
        return parse_module(tag, size, out);
    case TAG_MMAP:
        if (*seen_mmap)
            return ERR_DUPLICATE;   /* two maps could disagree; trust neither */
        *seen_mmap = true;
        return parse_mmap(tag, size, out);
    case TAG_ACPI_OLD:
    case TAG_ACPI_NEW:
        /* GRUB may pass both; the ACPI 2.0+ copy wins because it can lead
         * to the XSDT. acpi_parse_rsdp validates the copy itself. */
        if (type == TAG_ACPI_OLD && out->rsdp_tag == TAG_ACPI_NEW)
            return ERR_OK;
        out->rsdp = tag + TAG_HEADER_SIZE;
        out->rsdp_len = size - TAG_HEADER_SIZE;
        out->rsdp_tag = (int)type;
        return ERR_OK;
    default:
        return ERR_OK;              /* framebuffer, EFI, ...: not ours */
    }
}

errval_t mb2_parse(const void *info, size_t avail, struct mb2_info *out)
{
    if (!info || !out)
        return ERR_INVALID_ARG;
    out->cmdline = "";
    out->bootloader = "";
    out->mmap_count = 0;
    out->module_count = 0;
    out->rsdp = NULL;
    out->rsdp_len = 0;
    out->rsdp_tag = 0;

    const uint8_t *p = info;
    if (avail < TAG_HEADER_SIZE)
        return ERR_TRUNCATED;
    uint64_t total = rd32(p);
    if (total < TAG_HEADER_SIZE)
        return ERR_BAD_LENGTH;
    if (total > avail)
        return ERR_TRUNCATED;

    bool seen_mmap = false;
    uint64_t off = TAG_HEADER_SIZE;   /* tags follow total_size and reserved */
    for (;;) {
        if (off >= total)                   /* ran out of tags before an end tag */
            return ERR_MB2_NO_END_TAG;
        if (total - off < TAG_HEADER_SIZE)
            return ERR_TRUNCATED;
        uint32_t type = rd32(p + off), size = rd32(p + off + 4);
        if (size < TAG_HEADER_SIZE)
            return ERR_BAD_LENGTH;
        if (size > total - off)
            return ERR_TRUNCATED;
        if (type == TAG_END)
            break;
        errval_t err = parse_tag(p + off, type, size, out, &seen_mmap);
        if (err)
            return err;
        off += ((uint64_t)size + 7) & ~(uint64_t)7;   /* tags are 8-byte aligned */
    }
    if (!seen_mmap)
        return ERR_MB2_NO_MMAP;
    return sort_mmap(out);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The last occurrence wins, so a word appended to a default command line
 * overrides the default. */
bool cmdline_get(const char *cmdline, const char *key, const char **value, size_t *value_len)
{
    if (!cmdline || !key || !*key)
        return false;
    bool found = false;
    const char *p = cmdline;
    while (*p) {
        while (is_space(*p))
            p++;
        const char *word = p;
        while (*p && !is_space(*p))
            p++;
        /* Does the word [word, p) start with key, followed by '=' or its end? */
        const char *w = word, *k = key;
        while (*k && w < p && *w == *k) {
            w++;
            k++;
        }
        if (*k || (w < p && *w != '='))
            continue;
        found = true;
        const char *v = w < p ? w + 1 : "";  /* after the '=', or "" for a bare key */
        if (value)
            *value = v;
        if (value_len)
            *value_len = w < p ? (size_t)(p - v) : 0;
    }
    return found;
}
