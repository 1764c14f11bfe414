/*
 * This core's GDT and TSS (in .bss, so private to the core). The TSS gives
 * the interrupt stack table: a double fault, NMI or machine check runs on its
 * own stack, so even a kernel stack overflow produces a report.
 */
#include "x86_64/gdt.h"
#include "lib.h"
#include "x86_64/kernel_layout.h"

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));

static uint64_t gdt[8] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static uint8_t ist_stacks[IST_COUNT][IST_STACK_SIZE] __attribute__((aligned(16)));

extern char kstack_top[];

void gdt_init(void)
{
    gdt[0] = 0;
    gdt[1] = 0x00af9b000000ffff;   /* 0x08 kernel code, 64-bit */
    gdt[2] = 0x00cf93000000ffff;   /* 0x10 kernel data */
    /* 0x18: where sysret's layout wants 32-bit user code. Atoll runs no
     * 32-bit code, and a compatibility-mode `syscall` would enter the kernel
     * through IA32_CSTAR on the user's stack: keep it kernel-only, so a far
     * jump to it is a general protection fault. */
    gdt[3] = 0x00cf9b000000ffff;
    gdt[4] = 0x00cff3000000ffff;   /* 0x20 user data */
    gdt[5] = 0x00affb000000ffff;   /* 0x28 user code, 64-bit */

    memset(&tss, 0, sizeof tss);
    tss.rsp[0] = (uint64_t)kstack_top;
    for (int i = 0; i < IST_COUNT; i++)
        tss.ist[i] = (uint64_t)&ist_stacks[i][IST_STACK_SIZE];
    tss.iomap_base = sizeof tss;   /* no I/O bitmap */

    uint64_t base = (uint64_t)&tss, limit = sizeof tss - 1;
    gdt[6] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[7] = base >> 32;

    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) ptr = { sizeof gdt - 1, (uint64_t)gdt };
    __asm__ volatile(
        "lgdt %0\n\t"
        "pushq $0x08\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movw $0x10, %%ax\n\t"
        "movw %%ax, %%ds\n\t"
        "movw %%ax, %%es\n\t"
        "movw %%ax, %%ss\n\t"
        "xorw %%ax, %%ax\n\t"
        "movw %%ax, %%fs\n\t"
        "movw %%ax, %%gs\n\t"
        "movw $0x30, %%ax\n\t"
        "ltr %%ax"
        : : "m"(ptr) : "rax", "memory");
}

bool on_ist_stack(uint64_t addr, uint64_t *lo, uint64_t *hi)
{
    for (int i = 0; i < IST_COUNT; i++) {
        uint64_t l = (uint64_t)&ist_stacks[i][0], h = l + IST_STACK_SIZE;
        if (addr >= l && addr < h) {
            *lo = l;
            *hi = h;
            return true;
        }
    }
    return false;
}
