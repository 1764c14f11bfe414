/*
 * The machine frame (<atoll/abi/machine.h>): how what the kernel learnt about
 * the machine reaches user space, where the topology service (servers/topo)
 * builds the model and answers questions about it (docs/topology.md).
 *
 *  1. The boot core, on the boot page tables, sets a frame aside on its own
 *     node (cputopo_plan), big enough for ACPI's model and one CPUID record
 *     per core.
 *  2. After its switch it writes ACPI's model (MADT, SRAT, SLIT) and its own
 *     CPUID record (cputopo_boot_start).
 *  3. Every other core decodes its own CPUID (cputopo_self) and sends the
 *     record, binary, with its check-in over its console channel; the boot
 *     core, which never reads another core's memory, copies it from the
 *     channel into the frame (cputopo_note_checkin).
 *  4. After the boot summary the frame is final (cputopo_boot_finish): no
 *     record is taken after that, and no domain has run yet.
 *
 * Every core gives every domain it builds a read-only capability to the
 * frame (cputopo_frame, SLOT_MACHINE). The frame's address is boot-time
 * shared data, read-only after the boot core's switch; its contents are
 * written by the boot core alone, before any domain can read them.
 */
#ifndef ATOLL_TOPO_REPORT_H
#define ATOLL_TOPO_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/machine.h>
#include "topology.h"

/* Boot core, on the boot page tables: set the frame aside for `t`'s CPUs. */
void cputopo_plan(const struct topology *t);

/* Boot core, on its own page tables, before starting the other cores:
 * ACPI's model and the boot core's own record into the frame. */
void cputopo_boot_start(const struct topology *t);

/* Any core: this CPU's own record, from CPUID. */
void cputopo_self(struct cpu_place *out);

/* Boot core's console: core `core_id` checked in with `len` bytes of
 * payload, its record. A record of the wrong size, a second one, or one
 * after cputopo_boot_finish is refused with a warning. */
void cputopo_note_checkin(uint32_t core_id, const void *payload, size_t len);

/* Boot core, after the boot summary: the frame is final. */
void cputopo_boot_finish(void);

/* The frame (physical base and size, a multiple of 4 KiB); false when the
 * boot core found no memory for it (domains then get none). */
bool cputopo_frame(uint64_t *base, uint64_t *bytes);

#endif
