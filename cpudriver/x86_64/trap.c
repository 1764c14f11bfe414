/*
 * This core's IDT and the dispatcher every interrupt stub calls. Any
 * exception in the CPU driver is fatal for this core only: panic_frame
 * prints the registers, the core and a symbolized backtrace, and stops it.
 */
#include "x86_64/trap.h"
#include "panic.h"
#include "core.h"
#include "x86_64/apic.h"
#include "x86_64/gdt.h"
#include "console.h"
#include "dispatcher.h"
#include "vspace.h"
#include "x86_64/cpu.h"
#include "domain.h"
#include "notify.h"
#include "selftest.h"
#include "tlb_ipi.h"

struct idt_entry {
    uint16_t off_lo, sel;
    uint8_t ist, type;
    uint16_t off_mid;
    uint32_t off_hi, zero;
} __attribute__((packed));

static struct idt_entry idt[256] __attribute__((aligned(16)));

extern const uint64_t isr_table[32], isr_timer, isr_wakeup, isr_notify, isr_shootdown, isr_spurious;

static void set_gate(int vec, uint64_t handler, int ist)
{
    idt[vec] = (struct idt_entry){
        .off_lo = handler & 0xffff, .sel = 0x08, .ist = (uint8_t)ist, .type = 0x8e,
        .off_mid = (handler >> 16) & 0xffff, .off_hi = handler >> 32, .zero = 0,
    };
}

void idt_init(void)
{
    for (int v = 0; v < 32; v++)
        set_gate(v, isr_table[v], 0);
    set_gate(2, isr_table[2], IST_NMI);
    set_gate(8, isr_table[8], IST_DOUBLE_FAULT);
    set_gate(18, isr_table[18], IST_MACHINE_CHECK);
    set_gate(VEC_TIMER, isr_timer, 0);
    set_gate(VEC_WAKEUP, isr_wakeup, 0);
    set_gate(VEC_NOTIFY, isr_notify, 0);
    set_gate(VEC_SHOOTDOWN, isr_shootdown, 0);
    set_gate(VEC_SPURIOUS, isr_spurious, 0);
    struct {
        uint16_t limit;
        uint64_t base;
    } __attribute__((packed)) ptr = { sizeof idt - 1, (uint64_t)idt };
    __asm__ volatile("lidt %0" : : "m"(ptr));
}

/* An interrupt or exception while a user domain ran: its registers go to
 * its dispatcher, and the kernel leaves by resuming some dispatcher. A fault
 * stops the domain, never the core. */
static _Noreturn void user_trap(struct trap_frame *f)
{
    struct dispatcher *d = dispatcher_current();
    if (!d)
        panic_frame(f);
    d->regs = *f;
    switch (f->vector) {
    case VEC_TIMER:
        core.ticks++;
        core.timer_irqs++;
        apic_eoi();
        selftest_tick();
        if (core.is_bsp)
            console_drain();
        dispatcher_tick();
    case VEC_WAKEUP:
        apic_eoi();
        dispatcher_run(d);
    case VEC_NOTIFY:
        apic_eoi();
        if (notify_arrived())
            schedule();   /* let the woken receiver compete for the core now */
        dispatcher_run(d);
    case VEC_SHOOTDOWN:
        tlb_ipi_arrived();
        apic_eoi();
        dispatcher_run(d);
    case VEC_SPURIOUS:
        dispatcher_run(d);
    case 2:    /* NMI */
    case 8:    /* double fault */
    case 18:   /* machine check */
        panic_frame(f);   /* the machine, not the domain, is in trouble */
    default:
        /* A span dispatcher meets a table its home mapped after it copied
         * the home's root (docs/spanning.md): copy the entry and retry. */
        if (f->vector == 14 && d->span_home && vspace_span_fault(d->pml4, d->span_home, read_cr2()))
            dispatcher_run(d);
        domain_fault(d, f);
        schedule();
    }
}

void trap_dispatch(struct trap_frame *f)
{
    if ((f->cs & 3) == 3) {
        if (core.smap)   /* the domain may have set AC: SMAP back on */
            __asm__ volatile("clac" ::: "memory");
        user_trap(f);
    }
    switch (f->vector) {
    case VEC_TIMER:
        core.ticks++;
        core.timer_irqs++;
        apic_eoi();
        selftest_tick();
        return;
    case VEC_WAKEUP:
        core.woken = true;
        apic_eoi();
        return;
    case VEC_NOTIFY:
        apic_eoi();
        notify_arrived();   /* the idle loop picks up whoever it woke */
        return;
    case VEC_SHOOTDOWN:
        tlb_ipi_arrived();
        apic_eoi();
        return;
    case VEC_SPURIOUS:
        return;   /* no EOI for spurious interrupts */
    default:
        panic_frame(f);
    }
}
