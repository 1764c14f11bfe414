/*
 * Entering and leaving user mode on this core: the system-call MSRs, and
 * SMEP/SMAP so the kernel neither runs nor (outside copy_from/to_user)
 * touches user pages.
 */
#include "x86_64/usermode.h"
#include "x86_64/gdt.h"
#include "core.h"
#include "x86_64/cpu.h"

#define MSR_STAR   0xc0000081
#define MSR_LSTAR  0xc0000082
#define MSR_FMASK  0xc0000084
#define EFER_SCE   (1u << 0)
#define CR4_SMEP   (1u << 20)
#define CR4_SMAP   (1u << 21)
#define MSR_CSTAR  0xc0000083
#define CR0_EM     (1u << 2)

extern char syscall_entry[], syscall_compat_entry[];

void usermode_init(bool smap)
{
    wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
    /* Kernel CS 0x08 (SS 0x10); sysret bases user selectors at 0x18. */
    wrmsr(MSR_STAR, ((uint64_t)SEL_SYSRET_BASE << 48) | ((uint64_t)SEL_KERNEL_CODE << 32));
    wrmsr(MSR_LSTAR, (uint64_t)syscall_entry);
    /* Never reachable (no 32-bit user code segment), but if it were, it
     * would stop the caller, not run at address 0 on the user's stack. */
    wrmsr(MSR_CSTAR, (uint64_t)syscall_compat_entry);
    /* AC too: a user domain must not turn SMAP off for the kernel; NT: an
     * iretq with NT set would try a task return and fault in ring 0. */
    wrmsr(MSR_FMASK, RFLAGS_IF | RFLAGS_DF | RFLAGS_TF | RFLAGS_AC | RFLAGS_NT);
    /* No x87/MMX state is switched between domains: make those
     * instructions fault instead of leaking registers (user code is built
     * general-registers-only). */
    uint64_t cr0;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    __asm__ volatile("mov %0, %%cr0" ::"r"(cr0 | CR0_EM));
    uint32_t a, b, c, d;
    cpuid(0, 0, &a, &b, &c, &d);
    uint64_t cr4 = read_cr4();
    core.smep = core.smap = false;
    if (a >= 7) {
        cpuid(7, 0, &a, &b, &c, &d);
        if (b & (1u << 7)) {
            cr4 |= CR4_SMEP;
            core.smep = true;
        }
        if (smap && (b & (1u << 20))) {
            cr4 |= CR4_SMAP;
            core.smap = true;
        }
    }
    write_cr4(cr4);
}
