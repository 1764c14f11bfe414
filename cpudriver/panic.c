/* Panic and exception reports; see panic.h. */
#include "panic.h"
#include "console.h"
#include "core.h"
#include "ksyms.h"
#include "lib.h"
#include "linechan.h"
#include "report.h"
#include "x86_64/cpu.h"
#include "x86_64/gdt.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/trap.h"

extern char kstack[], kstack_top[];

static const char *const exception_names[32] = {
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range exceeded",
    "invalid opcode", "device not available", "double fault", "coprocessor segment overrun",
    "invalid TSS", "segment not present", "stack-segment fault", "general protection fault",
    "page fault", "reserved (15)", "x87 floating-point error", "alignment check", "machine check",
    "SIMD floating-point error", "virtualization exception", "control protection exception",
    "reserved (22)", "reserved (23)", "reserved (24)", "reserved (25)", "reserved (26)",
    "reserved (27)", "hypervisor injection", "VMM communication", "security exception",
    "reserved (31)",
};

static int panicking;

static void print_symbol(const char *prefix, uint64_t addr)
{
    uint64_t off;
    const char *name = ksym_lookup(addr, &off);
    if (name)
        kprintf("%s0x%016llx %s+0x%llx\n", prefix, (unsigned long long)addr, name, (unsigned long long)off);
    else
        kprintf("%s0x%016llx ?\n", prefix, (unsigned long long)addr);
}

/* A frame pointer we may follow: aligned and on one of this core's stacks. */
static bool frame_ok(uint64_t fp, uint64_t lo, uint64_t hi)
{
    return fp % 8 == 0 && fp >= lo && fp + 16 <= hi;
}

void backtrace(uint64_t rbp)
{
    uint64_t lo = (uint64_t)kstack, hi = (uint64_t)kstack_top;
    if (!(rbp >= lo && rbp < hi))
        on_ist_stack(rbp, &lo, &hi);
    kprintf("backtrace:\n");
    for (int depth = 0; depth < 24 && frame_ok(rbp, lo, hi); depth++) {
        const uint64_t *frame = (const uint64_t *)rbp;
        if (frame[1] == 0)
            break;
        print_symbol("  ", frame[1]);
        if (frame[0] <= rbp)   /* frames grow upwards; anything else is garbage */
            break;
        rbp = frame[0];
    }
}

void machine_exit(int status)
{
    irq_disable();
    if (core.is_bsp) {
        console_drain();
        struct event e;
        event_begin(&e, "exit");
        event_u64(&e, "status", (uint64_t)status);
        event_end(&e);
        outl(0xf4, (uint32_t)status);   /* QEMU isa-debug-exit: exits (status << 1) | 1 */
    }
    for (;;)
        halt();
}

static _Noreturn void stop_core(void)
{
    if (!core.is_bsp && core.console) {
        /* Let the boot core count us out (best effort: never wait here). */
        if (core.console_seq - __atomic_load_n(&core.console->ack.acked, __ATOMIC_ACQUIRE) <= LINECHAN_SLOTS)
            linechan_send(core.console, &core.console_seq, LINECHAN_PANIC, "", 0);
    }
    if (core.is_bsp && core.poweroff_after_boot)
        machine_exit(1);
    irq_disable();
    for (;;)
        halt();
}

static void panic_event(const char *what, const char *msg)
{
    struct event e;
    event_begin(&e, "panic");
    event_u64(&e, "core", core.core_id);
    event_u64(&e, "apic", core.apic_id);
    event_str(&e, "what", what);
    event_str(&e, "msg", msg);
    event_end(&e);
}

void panic(const char *fmt, ...)
{
    irq_disable();
    if (panicking++)
        stop_core();
    console_emergency();
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kprintf("\nPANIC on core %u (APIC id %u): %s\n", core.core_id, core.apic_id, msg);
    backtrace(read_rbp());
    panic_event("panic", msg);
    stop_core();
}

void panic_frame(struct trap_frame *f)
{
    irq_disable();
    if (panicking++)
        stop_core();
    console_emergency();
    const char *name = f->vector < 32 ? exception_names[f->vector] : "unexpected interrupt";
    char msg[160];
    if (f->vector == 14)
        snprintf(msg, sizeof msg, "%s at rip 0x%llx accessing 0x%llx (error 0x%llx: %s, %s, %s)", name,
                 (unsigned long long)f->rip, (unsigned long long)read_cr2(), (unsigned long long)f->error,
                 f->error & 1 ? "protection" : "not present", f->error & 2 ? "write" : "read",
                 f->error & 16 ? "fetch" : (f->error & 4 ? "user" : "kernel"));
    else
        snprintf(msg, sizeof msg, "%s (vector %llu, error 0x%llx) at rip 0x%llx", name,
                 (unsigned long long)f->vector, (unsigned long long)f->error, (unsigned long long)f->rip);
    kprintf("\nEXCEPTION on core %u (APIC id %u): %s\n", core.core_id, core.apic_id, msg);
    print_symbol("  rip ", f->rip);
    kprintf("  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n", (unsigned long long)f->rax,
            (unsigned long long)f->rbx, (unsigned long long)f->rcx, (unsigned long long)f->rdx);
    kprintf("  rsi %016llx rdi %016llx rbp %016llx rsp %016llx\n", (unsigned long long)f->rsi,
            (unsigned long long)f->rdi, (unsigned long long)f->rbp, (unsigned long long)f->rsp);
    kprintf("  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n", (unsigned long long)f->r8,
            (unsigned long long)f->r9, (unsigned long long)f->r10, (unsigned long long)f->r11);
    kprintf("  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n", (unsigned long long)f->r12,
            (unsigned long long)f->r13, (unsigned long long)f->r14, (unsigned long long)f->r15);
    kprintf("  cs %llx ss %llx rflags %016llx cr2 %016llx cr3 %016llx\n", (unsigned long long)f->cs,
            (unsigned long long)f->ss, (unsigned long long)f->rflags, (unsigned long long)read_cr2(),
            (unsigned long long)read_cr3());
    print_symbol("  at ", f->rip);
    backtrace(f->rbp);
    panic_event(name, msg);
    stop_core();
}
