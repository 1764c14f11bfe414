/*
 * Test helper: ACPI tables built byte for byte the way QEMU 7.2 builds them
 * for x86 (hw/i386/acpi-build.c, hw/i386/acpi-common.c, hw/acpi/aml-build.c),
 * for the q35 and pc machines with -smp, -numa node,mem=... and -numa dist,
 * plus a fake physical memory the ACPI mapper can read them from.
 *
 * Header-only (static inline functions) so each test binary takes what it
 * uses without unused-function warnings.
 */
#ifndef ATOLL_TEST_QEMU_ACPI_H
#define ATOLL_TEST_QEMU_ACPI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growable byte buffer ------------------------------------------------ */

struct tbuf {
    uint8_t *b;
    size_t n, cap;
};

static inline void tb_reserve(struct tbuf *t, size_t more)
{
    if (t->n + more <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->n + more)
        cap *= 2;
    t->b = realloc(t->b, cap);
    if (!t->b) {
        perror("realloc");
        exit(2);
    }
    t->cap = cap;
}

/* Little-endian integer of `size` bytes, as QEMU's build_append_int_noprefix. */
static inline void tb_int(struct tbuf *t, uint64_t v, int size)
{
    tb_reserve(t, (size_t)size);
    for (int i = 0; i < size; i++)
        t->b[t->n++] = (uint8_t)(v >> (8 * i));
}

static inline void tb_bytes(struct tbuf *t, const void *p, size_t n)
{
    if (n == 0)
        return;   /* p may be NULL; memcpy must not see it */
    tb_reserve(t, n);
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static inline void tb_free(struct tbuf *t)
{
    free(t->b);
    *t = (struct tbuf){ 0 };
}

static inline void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Set the byte at `at` so that `len` bytes from `p` sum to zero. */
static inline void fix_checksum(uint8_t *p, size_t len, size_t at)
{
    uint8_t sum = 0;
    p[at] = 0;
    for (size_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    p[at] = (uint8_t)-sum;
}

/* ---- SDT header (acpi_table_begin / acpi_table_end) ------------------------ */

static inline void sdt_begin(struct tbuf *t, const char *sig, uint8_t rev)
{
    tb_bytes(t, sig, 4);
    tb_int(t, 0, 4);                  /* length, filled by sdt_end */
    tb_int(t, rev, 1);
    tb_int(t, 0, 1);                  /* checksum, filled by sdt_end */
    tb_bytes(t, "BOCHS ", 6);         /* QEMU's default OEM id */
    tb_bytes(t, "BXPC    ", 8);       /* and OEM table id */
    tb_int(t, 1, 4);                  /* OEM revision */
    tb_bytes(t, "BXPC", 4);           /* creator id */
    tb_int(t, 1, 4);                  /* creator revision */
}

/* Patch an SDT's length and checksum after its contents changed. */
static inline void sdt_fix(uint8_t *p, size_t len)
{
    put32(p + 4, (uint32_t)len);
    fix_checksum(p, len, 9);
}

static inline void sdt_end(struct tbuf *t)
{
    sdt_fix(t->b, t->n);
}

/* A table whose contents do not matter to us (FACP, HPET, WAET, MCFG),
 * of the length QEMU gives it. */
static inline void build_opaque(struct tbuf *t, const char *sig, uint8_t rev, size_t len)
{
    sdt_begin(t, sig, rev);
    while (t->n < len)
        tb_int(t, 0, 1);
    sdt_end(t);
}

/* ---- machine description ---------------------------------------------------- */

#define QEMU_MAX_CPUS  64
#define QEMU_MAX_NODES 8
#define HOLE_640K_START 0xa0000ull
#define HOLE_640K_END   0x100000ull

struct qemu_machine {
    bool q35;                  /* else pc (i440fx) */
    int ncpus;                 /* possible CPUs (-smp maxcpus) */
    int present;               /* CPUs present at boot (-smp N); others disabled */
    uint32_t apic_id[QEMU_MAX_CPUS];
    int cpu_node[QEMU_MAX_CPUS];
    int nnodes;                /* 0: no -numa, so no SRAT */
    uint64_t node_mem[QEMU_MAX_NODES];
    bool have_dist;            /* -numa dist given: SLIT */
    uint8_t dist[QEMU_MAX_NODES][QEMU_MAX_NODES];
    uint64_t hotplug_base, hotplug_len;   /* -m ...,maxmem=: device memory */
};

static inline uint64_t qm_ram(const struct qemu_machine *m)
{
    uint64_t sum = 0;
    for (int i = 0; i < m->nnodes; i++)
        sum += m->node_mem[i];
    return sum;
}

/* pc_q35_init / pc_init1: RAM above this goes above 4 GiB. */
static inline uint64_t qm_below_4g(const struct qemu_machine *m)
{
    uint64_t ram = qm_ram(m);
    if (m->q35)
        return ram >= 0xb0000000ull ? 0x80000000ull : ram;
    return ram >= 0xe0000000ull ? 0xc0000000ull : ram;
}

/* CPUs 0..n-1 with APIC ids 0..n-1 (QEMU's default -smp n: n sockets), split
 * into equal consecutive blocks over the nodes, memory split equally. */
static inline void qm_simple(struct qemu_machine *m, bool q35, int ncpus, int nnodes,
                             uint64_t mem)
{
    *m = (struct qemu_machine){ .q35 = q35, .ncpus = ncpus, .present = ncpus, .nnodes = nnodes };
    for (int i = 0; i < ncpus; i++) {
        m->apic_id[i] = (uint32_t)i;
        m->cpu_node[i] = nnodes ? i * nnodes / ncpus : 0;
    }
    for (int i = 0; i < nnodes; i++)
        m->node_mem[i] = mem / (uint64_t)nnodes;
}

/* ---- MADT (build_madt, pc_madt_cpu_entry) ----------------------------------- */

static inline void build_madt(struct tbuf *t, const struct qemu_machine *m)
{
    sdt_begin(t, "APIC", 1);
    tb_int(t, 0xfee00000, 4);         /* APIC_DEFAULT_ADDRESS */
    tb_int(t, 1, 4);                  /* PCAT_COMPAT */
    bool x2apic = false;
    for (int uid = 0; uid < m->ncpus; uid++) {
        uint32_t id = m->apic_id[uid];
        uint32_t flags = uid < m->present ? 1 : 0;
        if (id < 255) {
            tb_int(t, 0, 1);
            tb_int(t, 8, 1);
            tb_int(t, (uint64_t)uid, 1);
            tb_int(t, id, 1);
            tb_int(t, flags, 4);
        } else {
            x2apic = true;
            tb_int(t, 9, 1);
            tb_int(t, 16, 1);
            tb_int(t, 0, 2);
            tb_int(t, id, 4);
            tb_int(t, flags, 4);
            tb_int(t, (uint64_t)uid, 4);
        }
    }
    /* I/O APIC: id 0, 0xfec00000, GSI base 0. */
    tb_int(t, 1, 1);
    tb_int(t, 12, 1);
    tb_int(t, 0, 1);
    tb_int(t, 0, 1);
    tb_int(t, 0xfec00000, 4);
    tb_int(t, 0, 4);
    /* Interrupt source overrides: IRQ0 -> GSI2, then the PCI IRQs level/high. */
    static const uint8_t irqs[] = { 0, 5, 9, 10, 11 };
    for (size_t i = 0; i < sizeof irqs; i++) {
        tb_int(t, 2, 1);
        tb_int(t, 10, 1);
        tb_int(t, 0, 1);                          /* bus: ISA */
        tb_int(t, irqs[i], 1);                    /* source */
        tb_int(t, irqs[i] ? irqs[i] : 2, 4);      /* GSI */
        tb_int(t, irqs[i] ? 0xd : 0, 2);          /* flags */
    }
    if (x2apic) {   /* Local x2APIC NMI */
        tb_int(t, 0xa, 1);
        tb_int(t, 12, 1);
        tb_int(t, 0, 2);
        tb_int(t, 0xffffffff, 4);
        tb_int(t, 1, 1);
        tb_int(t, 0, 3);
    } else {        /* Local APIC NMI, LINT1 on all processors */
        tb_int(t, 4, 1);
        tb_int(t, 6, 1);
        tb_int(t, 0xff, 1);
        tb_int(t, 0, 2);
        tb_int(t, 1, 1);
    }
    sdt_end(t);
}

/* ---- SRAT (build_srat, build_srat_memory) ----------------------------------- */

static inline void srat_mem(struct tbuf *t, uint64_t base, uint64_t len, uint32_t node,
                            uint32_t flags)
{
    tb_int(t, 1, 1);
    tb_int(t, 40, 1);
    tb_int(t, node, 4);
    tb_int(t, 0, 2);
    tb_int(t, base & 0xffffffff, 4);
    tb_int(t, base >> 32, 4);
    tb_int(t, len & 0xffffffff, 4);
    tb_int(t, len >> 32, 4);
    tb_int(t, 0, 4);
    tb_int(t, flags, 4);
    tb_int(t, 0, 8);
}

#define MEM_ENABLED   1u
#define MEM_HOTPLUG   2u

static inline void build_srat(struct tbuf *t, const struct qemu_machine *m)
{
    sdt_begin(t, "SRAT", 1);
    tb_int(t, 1, 4);                  /* reserved, must be 1 */
    tb_int(t, 0, 8);
    for (int i = 0; i < m->ncpus; i++) {
        uint32_t id = m->apic_id[i];
        uint32_t node = (uint32_t)m->cpu_node[i];
        if (id < 255) {
            tb_int(t, 0, 1);
            tb_int(t, 16, 1);
            tb_int(t, node & 0xff, 1);
            tb_int(t, id, 1);
            tb_int(t, 1, 4);                      /* enabled, even if not present */
            tb_int(t, 0, 1);                      /* SAPIC EID */
            tb_int(t, node >> 8, 3);
            tb_int(t, 0, 4);
        } else {
            tb_int(t, 2, 1);
            tb_int(t, 24, 1);
            tb_int(t, 0, 2);
            tb_int(t, node, 4);
            tb_int(t, id, 4);
            tb_int(t, 1, 4);
            tb_int(t, 0, 4);
            tb_int(t, 0, 4);
        }
    }
    /* Memory, cutting out the 640K-1M hole and the PCI hole below 4 GiB. */
    size_t start = t->n;
    uint64_t below_4g = qm_below_4g(m), next = 0;
    for (int i = 0; i < m->nnodes; i++) {
        uint64_t base = next, len = m->node_mem[i];
        next = base + len;
        if (base <= HOLE_640K_START && next > HOLE_640K_START) {
            len -= next - HOLE_640K_START;
            if (len > 0)
                srat_mem(t, base, len, (uint32_t)i, MEM_ENABLED);
            if (next <= HOLE_640K_END) {
                next = HOLE_640K_END;
                continue;
            }
            base = HOLE_640K_END;
            len = next - HOLE_640K_END;
        }
        if (base <= below_4g && next > below_4g) {
            len -= next - below_4g;
            if (len > 0)
                srat_mem(t, base, len, (uint32_t)i, MEM_ENABLED);
            base = 1ull << 32;
            len = next - below_4g;
            next = base + len;
        }
        if (len > 0)
            srat_mem(t, base, len, (uint32_t)i, MEM_ENABLED);
    }
    /* QEMU pads with disabled entries up to nnodes + 2. */
    for (size_t slots = (t->n - start) / 40; slots < (size_t)m->nnodes + 2; slots++)
        srat_mem(t, 0, 0, 0, 0);
    if (m->hotplug_len)
        srat_mem(t, m->hotplug_base, m->hotplug_len, (uint32_t)m->nnodes - 1,
                 MEM_ENABLED | MEM_HOTPLUG);
    sdt_end(t);
}

/* ---- SLIT (build_slit) -------------------------------------------------------- */

static inline void build_slit(struct tbuf *t, const struct qemu_machine *m)
{
    sdt_begin(t, "SLIT", 1);
    tb_int(t, (uint64_t)m->nnodes, 8);
    for (int i = 0; i < m->nnodes; i++)
        for (int j = 0; j < m->nnodes; j++)
            tb_int(t, m->dist[i][j], 1);
    sdt_end(t);
}

/* ---- fake physical memory ------------------------------------------------------ */

#define PHYS_MAX_REGIONS 16
#define PHYS_MAX_MAPS    256

/* Regions of "physical memory" holding tables. The mapper hands out a fresh
 * malloc'd copy of exactly the requested length, so ASan flags any read past
 * what the parser asked to map. */
struct phys {
    struct { uint64_t base; struct tbuf data; } region[PHYS_MAX_REGIONS];
    int nregions;
    void *maps[PHYS_MAX_MAPS];
    int nmaps;
    int map_calls;
};

static inline void phys_add(struct phys *ph, uint64_t base, struct tbuf data)
{
    if (ph->nregions == PHYS_MAX_REGIONS) {
        fprintf(stderr, "phys_add: too many regions\n");
        exit(2);
    }
    ph->region[ph->nregions].base = base;
    ph->region[ph->nregions].data = data;
    ph->nregions++;
}

static inline const void *phys_map(void *ctx, uint64_t phys, size_t len)
{
    struct phys *ph = ctx;
    ph->map_calls++;
    for (int i = 0; i < ph->nregions; i++) {
        uint64_t base = ph->region[i].base;
        size_t size = ph->region[i].data.n;
        if (phys < base || phys - base > size || len > size - (phys - base))
            continue;
        if (ph->nmaps == PHYS_MAX_MAPS) {
            fprintf(stderr, "phys_map: too many maps\n");
            exit(2);
        }
        void *copy = malloc(len ? len : 1);
        memcpy(copy, ph->region[i].data.b + (phys - base), len);
        ph->maps[ph->nmaps++] = copy;
        return copy;
    }
    return NULL;
}

static inline void phys_free(struct phys *ph)
{
    for (int i = 0; i < ph->nregions; i++)
        tb_free(&ph->region[i].data);
    for (int i = 0; i < ph->nmaps; i++)
        free(ph->maps[i]);
    memset(ph, 0, sizeof *ph);
}

/* Where QEMU's tables end up under SeaBIOS (near the top of low RAM). */
#define PHYS_RSDT 0x7ffe2000ull
#define PHYS_FACP 0x7ffe1000ull
#define PHYS_MADT 0x7ffe1100ull
#define PHYS_HPET 0x7ffe1300ull
#define PHYS_SRAT 0x7ffe1400ull
#define PHYS_SLIT 0x7ffe1800ull
#define PHYS_MCFG 0x7ffe1900ull
#define PHYS_WAET 0x7ffe1a00ull

/* Lay out the whole table set the way QEMU lists it in the RSDT (FACP,
 * APIC, HPET, SRAT, SLIT, MCFG on q35, WAET); each table is its own region,
 * so a pointer just past any of them is unmapped. Returns the RSDT address. */
static inline uint64_t phys_qemu(struct phys *ph, const struct qemu_machine *m)
{
    struct tbuf t = { 0 }, rsdt = { 0 };
    sdt_begin(&rsdt, "RSDT", 1);

    build_opaque(&t, "FACP", m->q35 ? 3 : 1, m->q35 ? 244 : 116);
    phys_add(ph, PHYS_FACP, t);
    tb_int(&rsdt, PHYS_FACP, 4);

    t = (struct tbuf){ 0 };
    build_madt(&t, m);
    phys_add(ph, PHYS_MADT, t);
    tb_int(&rsdt, PHYS_MADT, 4);

    t = (struct tbuf){ 0 };
    build_opaque(&t, "HPET", 1, 56);
    phys_add(ph, PHYS_HPET, t);
    tb_int(&rsdt, PHYS_HPET, 4);

    if (m->nnodes) {
        t = (struct tbuf){ 0 };
        build_srat(&t, m);
        phys_add(ph, PHYS_SRAT, t);
        tb_int(&rsdt, PHYS_SRAT, 4);
    }
    if (m->nnodes && m->have_dist) {
        t = (struct tbuf){ 0 };
        build_slit(&t, m);
        phys_add(ph, PHYS_SLIT, t);
        tb_int(&rsdt, PHYS_SLIT, 4);
    }
    if (m->q35) {
        t = (struct tbuf){ 0 };
        build_opaque(&t, "MCFG", 1, 60);
        phys_add(ph, PHYS_MCFG, t);
        tb_int(&rsdt, PHYS_MCFG, 4);
    }
    t = (struct tbuf){ 0 };
    build_opaque(&t, "WAET", 1, 40);
    phys_add(ph, PHYS_WAET, t);
    tb_int(&rsdt, PHYS_WAET, 4);

    sdt_end(&rsdt);
    phys_add(ph, PHYS_RSDT, rsdt);
    return PHYS_RSDT;
}

/* The region holding the table at `phys` (to corrupt it in tests). */
static inline struct tbuf *phys_region(struct phys *ph, uint64_t phys)
{
    for (int i = 0; i < ph->nregions; i++)
        if (ph->region[i].base == phys)
            return &ph->region[i].data;
    return NULL;
}

/* ---- RSDP (build_rsdp) ------------------------------------------------------- */

/* QEMU on x86 emits revision 0 pointing at the RSDT; revision 2 here is the
 * ACPI 2.0 layout real firmware uses. `out` needs 36 bytes. */
static inline size_t build_rsdp(uint8_t *out, int revision, uint32_t rsdt, uint64_t xsdt)
{
    memset(out, 0, 36);
    memcpy(out, "RSD PTR ", 8);
    memcpy(out + 9, "BOCHS ", 6);
    out[15] = (uint8_t)revision;
    put32(out + 16, rsdt);
    fix_checksum(out, 20, 8);
    if (revision < 2)
        return 20;
    put32(out + 20, 36);
    put32(out + 24, (uint32_t)xsdt);
    put32(out + 28, (uint32_t)(xsdt >> 32));
    fix_checksum(out, 36, 32);
    return 36;
}

/* Run a parser over `len` bytes copied into a buffer of exactly that size,
 * so ASan reports a read of even one byte too many. */
#define PARSE_EXACT(result, fn, data, len, out)                               \
    do {                                                                      \
        size_t exact_len_ = (len);                                            \
        uint8_t *exact_ = malloc(exact_len_ ? exact_len_ : 1);                \
        memcpy(exact_, (data), exact_len_);                                   \
        (result) = fn(exact_, exact_len_, (out));                             \
        free(exact_);                                                         \
    } while (0)

#endif
