/*
 * A pure, bounds-checked checker for the user programs the CPU driver loads:
 * static ELF64 x86-64 executables (ET_EXEC) linked into the user half
 * (include/atoll/abi/domain.h). elf_check reads nothing outside [image, image+len)
 * and touches no global state, so it runs the same in the host unit tests
 * (tests/host/test_elf.c). It reads fields byte by byte: the image may lie at
 * any alignment.
 *
 * What passes, and the error for what does not (in the order checked):
 *   ERR_TRUNCATED    len < 64 (the ELF header); the program-header table, a
 *                    segment's file bytes or the section-header table past
 *                    the end of the image
 *   ERR_ELF_MAGIC    e_ident[0..3] != 7f 'E' 'L' 'F'
 *   ERR_ELF_CLASS    not ELFCLASS64, not little-endian, e_machine != EM_X86_64
 *   ERR_ELF_HEADER   e_ident version/OS ABI (SysV only)/ABI version,
 *                    e_version, e_flags != 0, e_ehsize != 64,
 *                    e_phentsize != 56, e_phnum 0 or PN_XNUM, e_shentsize
 *                    != 64 with sections, e_shstrndx out of range
 *   ERR_ELF_TYPE     e_type != ET_EXEC; a PT_INTERP or PT_DYNAMIC header
 *                    (static programs only)
 *   ERR_ELF_SEGMENT  per PT_LOAD: p_flags other than PF_R|PF_W|PF_X, both
 *                    W and X (W^X), p_offset + p_filesz overflowing,
 *                    p_filesz > p_memsz, p_align not 0 or a power of two,
 *                    p_vaddr and p_offset not congruent modulo the page size
 *                    (and modulo p_align), any byte outside
 *                    [USER_MIN, USER_MAX) or vaddr + memsz overflowing, a
 *                    page shared with the start-up page or the stack region
 *                    [USER_STACK_TOP - USER_STACK_SIZE, USER_STACK_TOP);
 *                    two PT_LOADs sharing a page; no non-empty PT_LOAD
 *   ERR_TOO_MANY     more than ELF_MAX_SEGMENTS non-empty PT_LOADs
 *   ERR_ELF_ENTRY    e_entry not inside an executable (PF_X) PT_LOAD
 * Other program-header types (PT_NOTE, PT_GNU_STACK, PT_PHDR, PT_TLS, ...)
 * are ignored. An empty PT_LOAD (p_memsz 0) is checked like any other but
 * left out of `seg`: it maps nothing.
 *
 * A segment's pages are [ALIGN_DOWN(vaddr, 4K), ALIGN_UP(vaddr + memsz, 4K));
 * they hold the file bytes [offset, offset + filesz) at vaddr and zeros
 * elsewhere. Distinct segments never share a page, so each can be mapped
 * with its own rights.
 */
#ifndef ATOLL_ELF_H
#define ATOLL_ELF_H

#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/errors.h>

#define ELF_MAX_SEGMENTS 16

/* p_flags bits (the ELF values). */
#ifndef PF_X
#define PF_X 0x1u
#define PF_W 0x2u
#define PF_R 0x4u
#endif

struct elf_segment {
    uint64_t vaddr, memsz;    /* where it goes and how big (memsz > 0) */
    uint64_t offset, filesz;  /* its bytes in the image (filesz <= memsz) */
    uint32_t flags;           /* PF_R | PF_W | PF_X, never both W and X */
};

struct elf_info {
    uint64_t entry;
    unsigned nseg;            /* PT_LOADs with memsz > 0, in file order */
    struct elf_segment seg[ELF_MAX_SEGMENTS];
};

/* Check the ELF image [image, image+len) and describe it in *out (when not
 * NULL). On error *out holds nseg = 0 and entry = 0. */
errval_t elf_check(const void *image, size_t len, struct elf_info *out);

#endif
