/*
 * The boot floor (tools/bench-boot): what every boot of a multicore kernel
 * pays before the kernel's own work, measured by booting a kernel that does
 * nothing else. GRUB loads it exactly as it loads Atoll (same image layout,
 * same QEMU machine); it reads "cpus=N" from its command line, wakes every
 * other CPU with one INIT/SIPI/SIPI broadcast, waits until all N have
 * counted themselves in, prints
 *
 *     @floor {"cpus":N,"up":N}
 *
 * and exits QEMU through isa-debug-exit: status 0, or 1 when not every CPU
 * came (after WAIT_TICKS of the TSC).
 */
#include <stdint.h>

#define TRAMPOLINE 0x8000u
#define APIC 0xfee00000u
#define APIC_SVR 0xf0u
#define APIC_ICR_LO 0x300u
#define ICR_INIT_ALL_BUT_SELF 0x000c4500u     /* INIT, level assert, all excluding self */
#define ICR_SIPI_ALL_BUT_SELF 0x000c4600u     /* start-up, all excluding self; | vector */
/* Give up waiting for the other CPUs after this many TSC ticks (a few
 * seconds at any TSC rate of the last twenty years). */
#define WAIT_TICKS (1ull << 34)

extern volatile uint32_t aps_up;
extern char trampoline_start[], trampoline_end[];

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint32_t apic_read(uint32_t reg) { return *(volatile uint32_t *)(APIC + reg); }
static inline void apic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(APIC + reg) = v; }

static void putc(char c)
{
    while (!(inb(0x3f8 + 5) & 0x20))
        ;
    outb(0x3f8, (uint8_t)c);
}

static void puts(const char *s)
{
    while (*s)
        putc(*s++);
}

static void put_u32(uint32_t v)
{
    char b[11];
    int i = 10;
    b[i] = 0;
    do
        b[--i] = (char)('0' + v % 10);
    while (v /= 10);
    puts(b + i);
}

/* The multiboot2 command line (tag 1), or "". */
static const char *mb2_cmdline(const uint8_t *mbi)
{
    uint32_t total = *(const uint32_t *)mbi;
    for (uint32_t off = 8; off + 8 <= total;) {
        const uint32_t *tag = (const uint32_t *)(mbi + off);
        if (tag[0] == 0)
            break;
        if (tag[0] == 1)
            return (const char *)(tag + 2);
        off += (tag[1] + 7) & ~7u;
        if (tag[1] < 8)
            break;
    }
    return "";
}

/* The number after "cpus=" at the start of a word, or 1. */
static uint32_t cmdline_cpus(const char *s)
{
    for (const char *w = s; *w; w++) {
        if ((w == s || w[-1] == ' ') && w[0] == 'c' && w[1] == 'p' && w[2] == 'u' && w[3] == 's' &&
            w[4] == '=') {
            uint32_t v = 0;
            for (const char *p = w + 5; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (uint32_t)(*p - '0');
            return v ? v : 1;
        }
    }
    return 1;
}

static void send_all_but_self(uint32_t icr)
{
    apic_write(APIC_ICR_LO, icr);
    while (apic_read(APIC_ICR_LO) & (1u << 12))   /* delivery pending */
        __asm__ volatile("pause");
}

void bsp_main(const uint8_t *mbi)
{
    uint32_t want = cmdline_cpus(mb2_cmdline(mbi));
    for (char *s = trampoline_start, *d = (char *)TRAMPOLINE; s < trampoline_end;)
        *d++ = *s++;
    apic_write(APIC_SVR, apic_read(APIC_SVR) | 0x100);    /* software-enable the local APIC */
    if (want > 1) {
        send_all_but_self(ICR_INIT_ALL_BUT_SELF);
        send_all_but_self(ICR_SIPI_ALL_BUT_SELF | (TRAMPOLINE >> 12));
        send_all_but_self(ICR_SIPI_ALL_BUT_SELF | (TRAMPOLINE >> 12));
    }
    uint64_t t0 = rdtsc();
    while (aps_up + 1 < want && rdtsc() - t0 < WAIT_TICKS)
        __asm__ volatile("pause" ::: "memory");
    uint32_t up = aps_up + 1;
    puts("@floor {\"cpus\":");
    put_u32(want);
    puts(",\"up\":");
    put_u32(up);
    puts("}\n");
    outl(0xf4, up == want ? 0 : 1);                     /* isa-debug-exit */
    for (;;)
        __asm__ volatile("cli; hlt");
}
