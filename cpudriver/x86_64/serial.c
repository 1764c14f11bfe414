/* COM1 (16550 UART at 0x3f8), polled: the boot core's console device;
 * its output goes to a debug console port instead when the machine has one. */
#include <stdbool.h>
#include "x86_64/serial.h"
#include "x86_64/cpu.h"

#define COM1 0x3f8
/* QEMU's isa-debugcon (tools/run gives every machine one on the console's
 * character device) and Bochs's port E9 hack: a write-only byte port that
 * reads back 0xe9; a port that is not there reads 0xff. Under TCG every
 * byte written to the UART updates its interrupt line, and QEMU 7.2 hands
 * that to every vCPU in turn, so a byte cost grew with the number of
 * vCPUs (17 to 31 % of a 255-CPU boot's kernel phase); the debug port
 * raises nothing. Input still comes from the UART. */
#define DEBUGCON 0xe9

/* Set by serial_init on the boot core; the other cores start from the
 * pristine .data (percore_init_copy), so a core that writes the line
 * directly in a panic looks before every byte. */
static uint32_t fifo_size = 1;  /* bytes the transmitter takes when empty */
static uint32_t tx_room;        /* bytes it still takes without a look */
static bool debugcon;           /* output to DEBUGCON, not the UART */

void serial_init(void)
{
    outb(COM1 + 1, 0x00);  /* no interrupts */
    outb(COM1 + 3, 0x80);  /* DLAB on */
    outb(COM1 + 0, 0x01);  /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);  /* 8N1, DLAB off */
    outb(COM1 + 2, 0xc7);  /* FIFO on, cleared */
    outb(COM1 + 4, 0x03);  /* DTR, RTS */
    /* IIR bits 7:6 read 11 when the FIFOs are on (a 16550A): then an empty
     * transmitter takes 16 bytes before we must look again. */
    fifo_size = (inb(COM1 + 2) & 0xc0) == 0xc0 ? 16 : 1;
    debugcon = inb(DEBUGCON) == DEBUGCON;
}

/* Port accesses are what the console costs under emulation (each one an
 * exit from translated code), so the line status is read once per FIFO's
 * worth of bytes rather than before every byte: THRE (LSR bit 5) set means
 * the whole transmit FIFO is empty. */
static void putc_raw(char c)
{
    if (debugcon) {
        outb(DEBUGCON, (uint8_t)c);
        return;
    }
    if (!tx_room) {
        while (!(inb(COM1 + 5) & 0x20))
            cpu_relax();
        tx_room = fifo_size;
    }
    outb(COM1, (uint8_t)c);
    tx_room--;
}

void serial_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            putc_raw('\r');
        putc_raw(s[i]);
    }
}
