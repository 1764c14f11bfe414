/*
 * The machine model at boot: every core reads its own CPUID and prints a
 * cpu_topology event (cpu_place.h); an AP's line travels to the boot core
 * over its console channel before its check-in, and the boot core, which
 * never reads another core's memory, takes the record from that line. After
 * the boot summary the boot core completes the model with ACPI's nodes and
 * distances, prints a one-line summary (and a `topology` event), and, when
 * the kernel command line has `topology_xml`, the model as hwloc XML
 * between two marker events (docs/topology.md):
 *
 *   @atoll {"event":"topology_xml_begin","bytes":N,"lines":L}
 *   <?xml version="1.0" encoding="UTF-8"?>
 *   ...
 *   @atoll {"event":"topology_xml_end","bytes":N,"lines":L}
 */
#ifndef ATOLL_TOPO_REPORT_H
#define ATOLL_TOPO_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cpu_place.h"

/* Boot core, on its own page tables, before starting the other cores:
 * set up the model for `t` and report the boot core's own place. */
void cputopo_boot_start(const struct topology *t);

/* An AP: report this core's place (before its check-in). */
void cputopo_report_self(void);

/* Boot core's console: a whole line received from core `core_id`. */
void cputopo_note_line(uint32_t core_id, const char *line, size_t len);

/* Boot core, after the boot summary: complete the model and print it;
 * with `xml`, also as hwloc XML. */
void cputopo_boot_finish(bool xml);

/* The boot core's model after cputopo_boot_finish (NULL before, and on APs). */
const struct topo_model *cputopo_model(void);

#endif
