/* This core's local APIC: x2APIC (MSRs) when the CPU has it, else xAPIC (MMIO
 * at LAPIC_VA, mapped uncached in every core's page tables). */
#ifndef ATOLL_APIC_H
#define ATOLL_APIC_H
#include <stdbool.h>
#include <stdint.h>

bool apic_has_x2apic(void);
/* Physical address of the xAPIC MMIO page (from IA32_APIC_BASE). */
uint64_t apic_mmio_phys(void);
/* Enable the local APIC in the given mode; sets core.x2apic. */
void apic_init(bool x2apic);
uint32_t apic_read_id(void);
void apic_eoi(void);
/* Delivery modes for apic_send_ipi. */
#define APIC_IPI_FIXED   0x0000
#define APIC_IPI_INIT    0x0500
#define APIC_IPI_STARTUP 0x0600
void apic_send_ipi(uint32_t dest_apic_id, uint32_t mode, uint8_t vector);
/* Measure the TSC and the APIC timer (divider 16) against the PIT, a
 * fixed-rate 1.193182 MHz source. Boot core only: the PIT is one device. */
void apic_calibrate(uint64_t *tsc_hz, uint64_t *apic_timer_hz);
/* Periodic timer interrupt at `hz` on this core. */
void apic_timer_start(uint32_t hz);
/* One timer interrupt after `count` timer clocks (0: none at all). */
void apic_timer_oneshot(uint64_t count);
/* Busy-wait using the TSC (needs core.tsc_hz). */
void udelay(uint64_t us);
#endif
