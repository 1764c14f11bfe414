/*
 * The kernel command line's options (boot_options.h).
 */
#include "boot_options.h"
#include "boot_report.h"
#include "bootinfo.h"
#include "lib.h"
#include "multiboot2.h"
#include "smp.h"

#define DEFAULT_TIMER_HZ 100
#define DEFAULT_SMP_TIMEOUT_MS 10000
#define DEFAULT_DIE_MS 5000

/* Decimal number at s (n bytes); false if empty or not all digits. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (!n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (~0ull - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool value_u64(const char *key, uint64_t *out)
{
    const char *v;
    size_t n;
    if (!cmdline_get(boot_cmdline(), key, &v, &n))
        return false;
    if (!parse_u64(v, n, out)) {
        char msg[96];
        snprintf(msg, sizeof msg, "kernel command line: %s needs a decimal number; ignored", key);
        boot_warn(msg);
        return false;
    }
    return true;
}

/* "die:N@MS" (or "die:N": MS 5000): core N dies MS ms after its timer starts. */
static bool parse_die(struct boot_options *o, const char *v, size_t n)
{
    size_t at = 4;
    uint64_t core, ms = DEFAULT_DIE_MS;
    if (n <= 4 || strncmp(v, "die:", 4))
        return false;
    while (at < n && v[at] != '@')
        at++;
    if (!parse_u64(v + 4, at - 4, &core) || core == 0 || core >= NO_CORE)
        return false;   /* core 0 runs the name server, the starter and the shell: its death is the machine's */
    if (at < n && (!parse_u64(v + at + 1, n - at - 1, &ms) || ms > 3600000))
        return false;
    o->die_core = (uint32_t)core;
    o->die_ms = (uint32_t)ms;
    return true;
}

/* "selftest=fault:N", "probe:N", "unlisted:APIC", "die:N@MS" or "panic". */
static void parse_selftest(struct boot_options *o)
{
    const char *v;
    size_t n;
    if (!cmdline_get(boot_cmdline(), "selftest", &v, &n))
        return;
    static const struct { const char *name; size_t off; } kinds[] = {
        { "fault:", __builtin_offsetof(struct boot_options, fault_core) },
        { "probe:", __builtin_offsetof(struct boot_options, probe_core) },
        { "unlisted:", __builtin_offsetof(struct boot_options, unlisted_apic) },
    };
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        size_t k = strlen(kinds[i].name);
        uint64_t num;
        if (n > k && !strncmp(v, kinds[i].name, k) && parse_u64(v + k, n - k, &num) && num < NO_CORE) {
            *(uint32_t *)((char *)o + kinds[i].off) = (uint32_t)num;
            return;
        }
    }
    if (parse_die(o, v, n))
        return;
    if (n == 5 && !strncmp(v, "panic", 5)) {
        o->panic_selftest = true;
        return;
    }
    boot_warn("kernel command line: unknown selftest (fault:N, probe:N, unlisted:APIC, die:N@MS with N > 0, panic); ignored");
}

void boot_options_parse(struct boot_options *o)
{
    uint64_t v;
    *o = (struct boot_options){
        .smp_timeout_ms = DEFAULT_SMP_TIMEOUT_MS, .timer_hz = DEFAULT_TIMER_HZ, .timescale = 1,
        .fault_core = NO_CORE, .probe_core = NO_CORE, .unlisted_apic = NO_CORE, .die_core = NO_CORE,
    };
    o->poweroff = cmdline_get(boot_cmdline(), "poweroff", 0, 0);
    o->no_x2apic = cmdline_get(boot_cmdline(), "nox2apic", 0, 0);
    o->no_smap = cmdline_get(boot_cmdline(), "nosmap", 0, 0);
    o->periodic = cmdline_get(boot_cmdline(), "periodic", 0, 0);
    if (value_u64("smp_timeout_ms", &v))
        o->smp_timeout_ms = v;
    if (value_u64("timer_hz", &v)) {
        if (v >= 1 && v <= 10000)
            o->timer_hz = (uint32_t)v;
        else
            boot_warn("kernel command line: timer_hz must be 1..10000; using 100");
    }
    if (value_u64("timescale", &v)) {
        if (v >= 1 && v <= 1000)
            o->timescale = (uint32_t)v;
        else
            boot_warn("kernel command line: timescale must be 1..1000; using 1");
    }
    parse_selftest(o);
}
