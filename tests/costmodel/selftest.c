/*
 * The cost model's self-test guest (tests/test_costmodel.py): access
 * patterns whose cache-line transfers, invalidations, IPIs and instructions
 * are known exactly, each in a measured region, on a bare machine with no
 * interrupts, no timer and no other code running.
 *
 *   qemu-system-x86_64 -accel tcg,thread=single -smp 4 ... \
 *       -kernel build/tests/costmodel/selftest.elf -append "cpus=4 rounds=100" \
 *       -plugin build/host/tools/costmodel/costmodel.so,out=counts.jsonl
 *
 * The boot CPU starts the others, then drives every pattern through one
 * command line and one acknowledgement line per CPU, always outside the
 * regions (so a region holds only its pattern), except where a pattern's
 * expected counts say so. Each line is used the same way before any region
 * (a first lap, untimed), so no region sees a cold line. The expected
 * counts are in tests/test_costmodel.py and docs/costmodel.md.
 *
 * Ends through isa-debug-exit: status 0 when every pattern ran, 1 when the
 * other CPUs did not all start or a wait timed out.
 */
#include <atoll/costmodel.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_CPUS 64
#define TRAMPOLINE 0x8000u
#define APIC 0xfee00000u
#define APIC_ID 0x20u
#define APIC_SVR 0xf0u
#define APIC_ICR_LO 0x300u
#define APIC_ICR_HI 0x310u
#define SPIN_LIMIT 200000000u

struct line {
    volatile uint32_t v, seq, op, arg;
    uint8_t pad[48];
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct line) == 64, "one cache line");

enum op { OP_NOP = 1, OP_PONG, OP_OWN, OP_READ };

static struct line cmd[MAX_CPUS];       /* boot CPU -> CPU i */
static struct line ack[MAX_CPUS];       /* CPU i -> boot CPU: count of acknowledgements */
static struct line ping;                /* ping-pong */
static struct line value;               /* the readers' value */
static uint8_t own[MAX_CPUS][4096] __attribute__((aligned(64)));

extern uint32_t ap_started;
extern char trampoline_start[], trampoline_end[];

/* -- the machine ---------------------------------------------------------------------- */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }
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

static __attribute__((noreturn)) void finish(uint32_t status)
{
    outl(0xf4, status);                 /* isa-debug-exit: QEMU exits (status << 1) | 1 */
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void fail(const char *why)
{
    puts("selftest: FAILED: ");
    puts(why);
    puts("\n");
    finish(1);
}

/* Wait until *p == want (bounded). */
static void wait_for(volatile uint32_t *p, uint32_t want, const char *what)
{
    for (uint32_t n = 0; *p != want; n++) {
        if (n == SPIN_LIMIT)
            fail(what);
        pause();
    }
}

static void send_ipi(uint32_t apic_id, uint32_t icr)
{
    apic_write(APIC_ICR_HI, apic_id << 24);
    apic_write(APIC_ICR_LO, icr);
    while (apic_read(APIC_ICR_LO) & (1u << 12))   /* delivery pending */
        pause();
}

/* "cpus=4 rounds=100": the number after `key=`, or dflt. */
static uint32_t cmdline_number(const char *s, const char *key, uint32_t dflt)
{
    for (const char *w = s; w && *w; w++) {
        if (w != s && w[-1] != ' ')
            continue;           /* only at the start of a word */
        const char *k = key, *p = w;
        while (*k && *p == *k)
            k++, p++;
        if (*k || *p != '=')
            continue;
        uint32_t v = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (uint32_t)(*p - '0');
        return v;
    }
    return dflt;
}

/* -- the other CPUs ---------------------------------------------------------------------- */
static void acknowledge(uint32_t me) { ack[me].v = ack[me].v + 1; }

void ap_main(void)
{
    uint32_t me = apic_read(APIC_ID) >> 24, seen = 0;
    if (me >= MAX_CPUS)
        for (;;)
            __asm__ volatile("cli; hlt");
    (void)cmd[me].seq;
    acknowledge(me);                    /* up */
    for (;;) {
        while (cmd[me].seq == seen)
            pause();
        seen = cmd[me].seq;
        uint32_t op = cmd[me].op, arg = cmd[me].arg;
        switch (op) {
        case OP_NOP:
            acknowledge(me);
            break;
        case OP_PONG:
            /* Hold the ping line before saying ready, so the region finds
             * it in both caches. */
            (void)ping.v;
            acknowledge(me);
            for (uint32_t k = 0; k < arg; k++) {
                while (ping.v != 2 * k + 1)
                    pause();
                ping.v = 2 * k + 2;
            }
            break;
        case OP_OWN:
            for (uint32_t m = 0; m < arg; m++)
                for (uint32_t i = 0; i < sizeof own[me]; i += 64)
                    *(volatile uint32_t *)&own[me][i] = m + i;
            acknowledge(me);
            break;
        case OP_READ:
            (void)value.v;
            acknowledge(me);
            for (uint32_t k = 1; k <= arg; k++) {
                while (value.v != k)
                    pause();
                acknowledge(me);
            }
            break;
        }
    }
}

/* -- the boot CPU ---------------------------------------------------------------------------- */
static uint32_t ncpus;
static uint32_t acks[MAX_CPUS];         /* acknowledgements expected so far, per CPU */

static void command(uint32_t cpu, uint32_t op, uint32_t arg)
{
    cmd[cpu].op = op;
    cmd[cpu].arg = arg;
    cmd[cpu].seq = cmd[cpu].seq + 1;
}

static void await(uint32_t cpu) { wait_for(&ack[cpu].v, ++acks[cpu], "a CPU did not acknowledge"); }

static void start_aps(void)
{
    char *dst = (char *)TRAMPOLINE;
    for (char *p = trampoline_start; p < trampoline_end; p++)
        *dst++ = *p;
    apic_write(APIC_SVR, 0x1ff);
    send_ipi(0, 0x000c4500);            /* INIT, all but self */
    send_ipi(0, 0x000c4600 | (TRAMPOLINE >> 12));   /* SIPI, twice */
    send_ipi(0, 0x000c4600 | (TRAMPOLINE >> 12));
    for (uint32_t c = 1; c < ncpus; c++)
        await(c);
    if (__atomic_load_n(&ap_started, __ATOMIC_ACQUIRE) != ncpus - 1)
        fail("more CPUs started than cpus= says");
}

/* Ping-pong with CPU `peer`: rounds round trips on one line. */
static void pingpong(uint32_t peer, uint32_t rounds, bool measured)
{
    ping.v = 0;
    command(peer, OP_PONG, rounds);
    await(peer);
    if (measured) {
        cm_arg(pattern, CM_WORD_pingpong_line);
        cm_arg(src, 0);
        cm_arg(dst, peer);
        cm_begin(selftest);
    }
    for (uint32_t k = 0; k < rounds; k++) {
        ping.v = 2 * k + 1;
        wait_for(&ping.v, 2 * k + 2, "ping-pong stalled");
    }
    if (measured) {
        cm_arg(ops, rounds);
        cm_end(selftest);
    }
}

/* CPU `cpu` writes its own 4 KiB `times` times; the region holds the
 * command that starts it and the acknowledgement that ends it. */
static void own_data(uint32_t cpu, uint32_t times, bool measured)
{
    if (measured) {
        cm_arg(pattern, CM_WORD_own_data);
        cm_arg(src, cpu);
        cm_arg(ops, times);
        cm_begin(selftest);
    }
    command(cpu, OP_OWN, times);
    await(cpu);
    if (measured)
        cm_end(selftest);
}

/* The boot CPU writes its own 4 KiB `times` times: nothing else in it. */
static void own_data_self(uint32_t times, bool measured)
{
    if (measured) {
        cm_arg(pattern, CM_WORD_own_data);
        cm_arg(src, 0);
        cm_arg(ops, times);
        cm_begin(selftest);
    }
    for (uint32_t m = 0; m < times; m++)
        for (uint32_t i = 0; i < sizeof own[0]; i += 64)
            *(volatile uint32_t *)&own[0][i] = m + i;
    if (measured)
        cm_end(selftest);
}

/* Every other CPU reads a line the boot CPU writes, and answers on its
 * own line, `rounds` times. */
static void readers(uint32_t rounds, bool measured)
{
    value.v = 0;
    for (uint32_t c = 1; c < ncpus; c++)
        command(c, OP_READ, rounds);
    for (uint32_t c = 1; c < ncpus; c++)
        await(c);
    if (measured) {
        cm_arg(pattern, CM_WORD_readers);
        cm_arg(src, 0);
        cm_arg(cores, ncpus);
        cm_begin(selftest);
    }
    for (uint32_t k = 1; k <= rounds; k++) {
        value.v = k;
        for (uint32_t c = 1; c < ncpus; c++)
            await(c);
    }
    if (measured) {
        cm_arg(ops, rounds);
        cm_end(selftest);
    }
}

static void ipis(uint32_t peer, uint32_t count)
{
    cm_arg(pattern, CM_WORD_ipi);
    cm_arg(src, 0);
    cm_arg(dst, peer);
    cm_arg(ops, count);
    cm_begin(selftest);
    for (uint32_t i = 0; i < count; i++)
        send_ipi(peer, 0x4040);         /* fixed, vector 0x40; the peer keeps IF=0 */
    cm_end(selftest);
}

/* 2 * n + 2 instructions: mov, n times dec and jnz, and the END marker. */
static void count_insns(uint32_t n)
{
    cm_arg(pattern, CM_WORD_count_insns);
    cm_arg(ops, n);
    cm_begin(selftest);
    __asm__ volatile("mov %0, %%ecx\n1:\tdec %%ecx\n\tjnz 1b" : : "r"(n) : "ecx", "cc", "memory");
    cm_end(selftest);
}

void bsp_main(const uint32_t *mbi)
{
    const char *cmdline = (mbi[0] & 4) ? (const char *)mbi[4] : "";
    ncpus = cmdline_number(cmdline, "cpus", 1);
    uint32_t rounds = cmdline_number(cmdline, "rounds", 100);
    if (ncpus < 2 || ncpus > MAX_CPUS)
        fail("cpus= must be 2..64");
    puts("selftest: starting ");
    put_u32(ncpus - 1);
    puts(" CPUs\n");
    start_aps();
    /* Every line once around, untimed. */
    for (uint32_t c = 1; c < ncpus; c++) {
        command(c, OP_NOP, 0);
        await(c);
        own_data(c, 1, false);
        pingpong(c, 2, false);
    }
    readers(2, false);
    own_data_self(1, false);

    pingpong(1, rounds, true);
    pingpong(ncpus - 1, rounds, true);
    own_data(1, 1, true);
    own_data(1, 64, true);
    own_data_self(64, true);
    readers(rounds / 5, true);
    ipis(1, 5);
    count_insns(1000);
    puts("selftest: done\n");
    finish(0);
}
