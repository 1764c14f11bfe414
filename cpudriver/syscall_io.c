/*
 * System calls on the console and I/O ports: print, port in and out under
 * an IO capability, and the boot core's serial input.
 */
#include <atoll/abi/syscall.h>
#include "syscall.h"
#include "console.h"
#include "core.h"
#include "dispatcher.h"
#include "uaccess.h"
#include "x86_64/cpu.h"

#define PRINT_MAX 1024
#define COM1_DATA 0x3f8
#define COM1_LSR 0x3fd
#define LSR_DATA_READY 0x01

errval_t sc_print(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t buf = f->rdi, len = f->rsi;
    static char text[PRINT_MAX];
    if (len > PRINT_MAX)
        return ERR_INVALID_ARG;
    errval_t err = copy_from_user(d, text, buf, len);
    if (err)
        return err;
    console_write_user(d->id, text, len);
    if (core.is_bsp)
        console_flush();   /* the boot core owns the line: prompts show at once */
    return ERR_OK;
}

/* May the holder of IO capability `slot` touch `width` bytes at `port`? */
static errval_t io_check(struct dispatcher *d, uint64_t slot, uint64_t port, uint64_t width)
{
    struct cte *io;
    errval_t err = user_cap(d, slot, CAP_IO, 0, &io);
    if (err)
        return err;
    if (width != 1 && width != 2 && width != 4)
        return ERR_INVALID_ARG;
    if (port >= 65536 || port < io->cap.base || port - io->cap.base + width > io->cap.bytes)
        return ERR_PORT_RANGE;
    return ERR_OK;
}

errval_t sc_io_in(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t slot = f->rdi, port = f->rsi, width = f->rdx;
    errval_t err = io_check(d, slot, port, width);
    if (err)
        return err;
    uint16_t p = (uint16_t)port;
    if (width == 1) {
        *value = inb(p);
    } else if (width == 2) {
        uint16_t w;
        __asm__ volatile("inw %w1, %w0" : "=a"(w) : "Nd"(p));
        *value = w;
    } else {
        uint32_t l;
        __asm__ volatile("inl %w1, %k0" : "=a"(l) : "Nd"(p));
        *value = l;
    }
    return ERR_OK;
}

errval_t sc_io_out(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    (void)value;
    uint64_t slot = f->rdi, port = f->rsi, width = f->rdx, v = f->r10;
    errval_t err = io_check(d, slot, port, width);
    if (err)
        return err;
    uint16_t p = (uint16_t)port;
    if (width == 1)
        __asm__ volatile("outb %b0, %w1" ::"a"(v), "Nd"(p));
    else if (width == 2)
        __asm__ volatile("outw %w0, %w1" ::"a"(v), "Nd"(p));
    else
        __asm__ volatile("outl %k0, %w1" ::"a"(v), "Nd"(p));
    return ERR_OK;
}

/* value = the next byte from the serial line. */
errval_t sc_console_read(struct dispatcher *d, const struct trap_frame *f, uint64_t *value)
{
    uint64_t slot = f->rdi;
    errval_t err = io_check(d, slot, COM1_DATA, 1);
    if (!err)
        err = io_check(d, slot, COM1_LSR, 1);
    if (err)
        return err;
    if (!core.is_bsp)
        return ERR_NOT_SUPPORTED;   /* the serial line belongs to the boot core */
    if (!(inb(COM1_LSR) & LSR_DATA_READY))
        return ERR_WOULD_BLOCK;
    *value = inb(COM1_DATA);
    return ERR_OK;
}
