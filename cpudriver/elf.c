/*
 * The ELF64 checker (see elf.h for what it accepts and the error for each
 * way a file can be wrong). Pure: no globals, no allocation, no libc; every
 * field is read byte by byte, little-endian, after a bounds check.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/domain.h>
#include <atoll/abi/errors.h>
#include "elf.h"

/* ELF constants (only those used here). */
#define EHDR_SIZE 64u
#define PHDR_SIZE 56u
#define SHDR_SIZE 64u
#define EI_CLASS 4
#define EI_DATA 5
#define EI_VERSION 6
#define EI_OSABI 7
#define EI_ABIVERSION 8
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
#define ELFOSABI_SYSV 0
#define ET_EXEC 2
#define EM_X86_64 62
#define PN_XNUM 0xffffu
#define SHN_XINDEX 0xffffu
#define PT_LOAD 1
#define PT_DYNAMIC 2
#define PT_INTERP 3

/* Ehdr field offsets. */
#define E_TYPE 16
#define E_MACHINE 18
#define E_VERSION 20
#define E_ENTRY 24
#define E_PHOFF 32
#define E_SHOFF 40
#define E_FLAGS 48
#define E_EHSIZE 52
#define E_PHENTSIZE 54
#define E_PHNUM 56
#define E_SHENTSIZE 58
#define E_SHNUM 60
#define E_SHSTRNDX 62
/* Phdr field offsets. */
#define P_TYPE 0
#define P_FLAGS 4
#define P_OFFSET 8
#define P_VADDR 16
#define P_FILESZ 32
#define P_MEMSZ 40
#define P_ALIGN 48

#define PAGE 4096ull

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Does [off, off + count * size) lie inside a file of len bytes? */
static bool table_fits(uint64_t off, uint64_t count, uint64_t size, size_t len)
{
    if (off > len)
        return false;
    return count <= ((uint64_t)len - off) / size;
}

/* Do the half-open ranges [a0, a1) and [b0, b1) share anything? */
static bool overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) { return a0 < b1 && b0 < a1; }

static errval_t check_header(const uint8_t *f, size_t len)
{
    static const uint8_t magic[4] = { 0x7f, 'E', 'L', 'F' };
    for (size_t i = 0; i < 4 && i < len; i++)
        if (f[i] != magic[i])
            return ERR_ELF_MAGIC;
    if (len < EHDR_SIZE)
        return ERR_TRUNCATED;
    if (f[EI_CLASS] != ELFCLASS64 || f[EI_DATA] != ELFDATA2LSB || rd16(f + E_MACHINE) != EM_X86_64)
        return ERR_ELF_CLASS;
    if (f[EI_VERSION] != EV_CURRENT || f[EI_OSABI] != ELFOSABI_SYSV || f[EI_ABIVERSION] != 0 ||
        rd32(f + E_VERSION) != EV_CURRENT || rd32(f + E_FLAGS) != 0 || rd16(f + E_EHSIZE) != EHDR_SIZE ||
        rd16(f + E_PHENTSIZE) != PHDR_SIZE)
        return ERR_ELF_HEADER;
    uint16_t phnum = rd16(f + E_PHNUM), shnum = rd16(f + E_SHNUM), shstrndx = rd16(f + E_SHSTRNDX);
    if (phnum == 0 || phnum == PN_XNUM)
        return ERR_ELF_HEADER;
    if (shnum != 0 && rd16(f + E_SHENTSIZE) != SHDR_SIZE)
        return ERR_ELF_HEADER;
    if (shstrndx != 0 && shstrndx != SHN_XINDEX && shstrndx >= shnum)
        return ERR_ELF_HEADER;
    if (rd16(f + E_TYPE) != ET_EXEC)
        return ERR_ELF_TYPE;
    if (!table_fits(rd64(f + E_PHOFF), phnum, PHDR_SIZE, len))
        return ERR_TRUNCATED;
    if (shnum != 0 && !table_fits(rd64(f + E_SHOFF), shnum, SHDR_SIZE, len))
        return ERR_TRUNCATED;
    return ERR_OK;
}

/* One PT_LOAD; a non-empty one is added to info->seg. */
static errval_t check_load(const uint8_t *ph, size_t len, struct elf_info *info)
{
    uint32_t flags = rd32(ph + P_FLAGS);
    uint64_t offset = rd64(ph + P_OFFSET), vaddr = rd64(ph + P_VADDR);
    uint64_t filesz = rd64(ph + P_FILESZ), memsz = rd64(ph + P_MEMSZ), align = rd64(ph + P_ALIGN);

    if (flags & ~(uint32_t)(PF_R | PF_W | PF_X))
        return ERR_ELF_SEGMENT;
    if ((flags & PF_W) && (flags & PF_X))
        return ERR_ELF_SEGMENT;   /* W^X */
    if (filesz > UINT64_MAX - offset || filesz > memsz)
        return ERR_ELF_SEGMENT;
    if (offset + filesz > len)
        return ERR_TRUNCATED;
    if (align & (align - 1))
        return ERR_ELF_SEGMENT;   /* 0 and 1 mean none; else a power of two */
    if ((vaddr - offset) % PAGE != 0 || (align > 1 && (vaddr - offset) % align != 0))
        return ERR_ELF_SEGMENT;
    if (vaddr < USER_MIN || vaddr >= USER_MAX || memsz > USER_MAX - vaddr)
        return ERR_ELF_SEGMENT;
    if (memsz == 0)
        return ERR_OK;

    uint64_t lo = vaddr & ~(PAGE - 1);
    uint64_t hi = (vaddr + memsz + PAGE - 1) & ~(PAGE - 1);   /* <= USER_MAX: no overflow */
    if (overlaps(lo, hi, USER_STARTUP_VA, USER_STARTUP_VA + PAGE) ||
        overlaps(lo, hi, USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP))
        return ERR_ELF_SEGMENT;
    for (unsigned i = 0; i < info->nseg; i++) {
        const struct elf_segment *s = &info->seg[i];
        uint64_t slo = s->vaddr & ~(PAGE - 1);
        uint64_t shi = (s->vaddr + s->memsz + PAGE - 1) & ~(PAGE - 1);
        if (overlaps(lo, hi, slo, shi))
            return ERR_ELF_SEGMENT;
    }
    if (info->nseg == ELF_MAX_SEGMENTS)
        return ERR_TOO_MANY;
    info->seg[info->nseg++] = (struct elf_segment){
        .vaddr = vaddr, .memsz = memsz, .offset = offset, .filesz = filesz, .flags = flags,
    };
    return ERR_OK;
}

static errval_t check(const uint8_t *f, size_t len, struct elf_info *info)
{
    errval_t err = check_header(f, len);
    if (err)
        return err;
    uint64_t phoff = rd64(f + E_PHOFF);
    uint16_t phnum = rd16(f + E_PHNUM);
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = f + phoff + (uint64_t)i * PHDR_SIZE;
        uint32_t type = rd32(ph + P_TYPE);
        if (type == PT_INTERP || type == PT_DYNAMIC)
            return ERR_ELF_TYPE;
        if (type == PT_LOAD) {
            err = check_load(ph, len, info);
            if (err)
                return err;
        }
    }
    if (info->nseg == 0)
        return ERR_ELF_SEGMENT;
    uint64_t entry = rd64(f + E_ENTRY);
    for (unsigned i = 0; i < info->nseg; i++) {
        const struct elf_segment *s = &info->seg[i];
        if ((s->flags & PF_X) && entry >= s->vaddr && entry - s->vaddr < s->memsz) {
            info->entry = entry;
            return ERR_OK;
        }
    }
    return ERR_ELF_ENTRY;
}

errval_t elf_check(const void *image, size_t len, struct elf_info *out)
{
    struct elf_info scratch;
    struct elf_info *info = out ? out : &scratch;
    info->entry = 0;
    info->nseg = 0;
    errval_t err = image ? check(image, len, info) : ERR_INVALID_ARG;
    if (err) {
        info->entry = 0;
        info->nseg = 0;
    }
    return err;
}
