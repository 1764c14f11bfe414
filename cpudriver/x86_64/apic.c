/* Local APIC driver; see apic.h. */
#include "x86_64/apic.h"
#include "core.h"
#include "x86_64/cpu.h"
#include "x86_64/kernel_layout.h"
#include "x86_64/trap.h"

#define REG_ID        0x020
#define REG_EOI       0x0b0
#define REG_SVR       0x0f0
#define REG_ICR_LO    0x300
#define REG_ICR_HI    0x310
#define REG_LVT_TIMER 0x320
#define REG_TIMER_INIT 0x380
#define REG_TIMER_CUR 0x390
#define REG_TIMER_DIV 0x3e0

#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)

static uint32_t reg_read(uint32_t off)
{
    if (core.x2apic)
        return (uint32_t)rdmsr(0x800 + (off >> 4));
    return *(volatile uint32_t *)(LAPIC_VA + off);
}

static void reg_write(uint32_t off, uint32_t v)
{
    if (core.x2apic)
        wrmsr(0x800 + (off >> 4), v);
    else
        *(volatile uint32_t *)(LAPIC_VA + off) = v;
}

bool apic_has_x2apic(void)
{
    uint32_t a, b, c, d;
    cpuid(1, 0, &a, &b, &c, &d);
    return c & (1u << 21);
}

uint64_t apic_mmio_phys(void) { return rdmsr(MSR_APIC_BASE) & 0xffffff000ull; }

/* The legacy 8259 PICs: firmware leaves them delivering the PIT's IRQ 0 as
 * vector 8, which would look like a double fault the moment interrupts are
 * on. Move them out of the exception range, then mask every line. */
static void pic_disable(void)
{
    outb(0x20, 0x11);   /* ICW1: init, ICW4 follows */
    outb(0xa0, 0x11);
    outb(0x21, 0xf0);   /* ICW2: vectors 0xf0-0xf7 and 0xf8-0xff */
    outb(0xa1, 0xf8);
    outb(0x21, 0x04);   /* ICW3: slave on IRQ 2 */
    outb(0xa1, 0x02);
    outb(0x21, 0x01);   /* ICW4: 8086 mode */
    outb(0xa1, 0x01);
    outb(0x21, 0xff);   /* mask all */
    outb(0xa1, 0xff);
}

void apic_init(bool x2apic)
{
    if (core.is_bsp)
        pic_disable();
    uint64_t base = rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE;
    if (x2apic)
        base |= APIC_BASE_X2APIC;
    wrmsr(MSR_APIC_BASE, base);
    core.x2apic = x2apic;
    reg_write(REG_SVR, 0x100 | VEC_SPURIOUS);   /* software enable */
}

uint32_t apic_read_id(void)
{
    uint32_t id = reg_read(REG_ID);
    return core.x2apic ? id : id >> 24;
}

void apic_eoi(void) { reg_write(REG_EOI, 0); }

void apic_send_ipi(uint32_t dest, uint32_t mode, uint8_t vector)
{
    uint32_t lo = mode | vector | (1u << 14);   /* level: assert */
    if (core.x2apic) {
        wrmsr(0x830, ((uint64_t)dest << 32) | lo);
        return;
    }
    reg_write(REG_ICR_HI, dest << 24);
    reg_write(REG_ICR_LO, lo);
    while (reg_read(REG_ICR_LO) & (1u << 12))   /* delivery pending */
        cpu_relax();
}

/* PIT channel 2, gated through port 0x61, counting down once (mode 0). */
static void pit_oneshot_start(uint16_t count)
{
    outb(0x61, (inb(0x61) & ~0x02) & ~0x01);   /* gate low, speaker off */
    outb(0x43, 0xb0);                          /* ch2, lo/hi byte, mode 0 */
    outb(0x42, count & 0xff);
    outb(0x42, count >> 8);
    outb(0x61, inb(0x61) | 0x01);              /* gate high: count */
}

static bool pit_oneshot_done(void) { return inb(0x61) & 0x20; }

void apic_calibrate(uint64_t *tsc_hz, uint64_t *apic_timer_hz)
{
    const uint32_t pit_hz = 1193182, ms = 10;
    uint64_t best_tsc = ~0ull, best_apic = 0;
    reg_write(REG_TIMER_DIV, 0x3);             /* divide by 16 */
    reg_write(REG_LVT_TIMER, (1u << 16) | VEC_TIMER);   /* masked */
    /* Best of three: a window stretched by an emulator hiccup only grows. */
    for (int round = 0; round < 3; round++) {
        pit_oneshot_start((uint16_t)(pit_hz * ms / 1000));
        reg_write(REG_TIMER_INIT, 0xffffffff);
        uint64_t t0 = rdtsc();
        while (!pit_oneshot_done())
            ;
        uint64_t t1 = rdtsc();
        uint32_t left = reg_read(REG_TIMER_CUR);
        if (t1 - t0 < best_tsc) {
            best_tsc = t1 - t0;
            best_apic = 0xffffffffu - left;
        }
    }
    reg_write(REG_TIMER_INIT, 0);
    *tsc_hz = best_tsc * (1000 / ms);
    *apic_timer_hz = best_apic * (1000 / ms);
}

void apic_timer_start(uint32_t hz)
{
    reg_write(REG_TIMER_DIV, 0x3);
    reg_write(REG_LVT_TIMER, (1u << 17) | VEC_TIMER);   /* periodic */
    uint64_t count = core.apic_timer_hz / hz;
    reg_write(REG_TIMER_INIT, count ? (uint32_t)count : 1);
}

void apic_timer_oneshot(uint64_t count)
{
    reg_write(REG_TIMER_INIT, 0);                       /* stop the count first */
    reg_write(REG_LVT_TIMER, VEC_TIMER);                /* one-shot */
    if (count)
        reg_write(REG_TIMER_INIT, count > 0xffffffffu ? 0xffffffffu : (uint32_t)count);
}

void udelay(uint64_t us)
{
    uint64_t end = rdtsc() + core.tsc_hz / 1000000 * us;
    while (rdtsc() < end)
        cpu_relax();
}
