/* Kernel console: see console.h. */
#include "console.h"
#include "core.h"
#include "lib.h"
#include "linechan.h"
#include "smp.h"
#include "topo_report.h"
#include "x86_64/serial.h"

static char line[2048];   /* an event line can be long; linechan holds 3276 */
static size_t line_len;
static int emergency;
/* Boot core: the serial line ends mid-line (a prompt was flushed), and
 * whether the text being written is a user domain's. */
static bool midline, user_text;

static void serial_put(const char *s, size_t n)
{
    if (!n)
        return;
    serial_write(s, n);
    midline = s[n - 1] != '\n';
}

/* Kernel lines and other cores' lines start on a line of their own, so an
 * event never lands after a prompt. */
static void break_line(void)
{
    if (midline)
        serial_put("\n", 1);
}

/* An AP sends even its panic report over its channel: lines from several
 * cores written straight to COM1 would interleave mid-line. */
static void emit_line(const char *s, size_t n)
{
    if (core.is_bsp || !core.console) {
        if (!user_text)
            break_line();
        serial_put(s, n);
    } else {
        linechan_send(core.console, &core.console_seq, LINECHAN_TEXT_END, s, (uint16_t)n);
    }
}

void console_write_user(uint32_t writer, const char *s, size_t n)
{
    /* A domain's text goes on after its own (the shell echoing what is
     * typed after its prompt), but another domain's starts a new line: an
     * event printed while someone types must not land inside the command. */
    static uint32_t last_writer;
    if (writer != last_writer && line_len == 0)
        break_line();
    last_writer = writer;
    user_text = true;
    console_write(s, n);
    user_text = false;
}

void console_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (line_len < sizeof line)
            line[line_len++] = s[i];
        if (s[i] == '\n' || line_len == sizeof line) {
            emit_line(line, line_len);
            line_len = 0;
        }
    }
}

void kvprintf(const char *fmt, va_list ap)
{
    char buf[512];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    console_write(buf, n < (int)sizeof buf ? (size_t)n : sizeof buf - 1);
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
}

void console_flush(void)
{
    if (line_len) {
        user_text = true;
        emit_line(line, line_len);
        user_text = false;
        line_len = 0;
    }
}

void console_emergency(void)
{
    emergency = 1;
    if (line_len) {
        serial_write(line, line_len);
        line_len = 0;
    }
}

/* The message being received from an AP: a line to print, or the CPUID
 * record its check-in carries (topo_report.h). */
static char rx[LINECHAN_SLOTS * LINECHAN_TEXT];
static size_t rx_len;

static void take_fragment(const char *text, uint16_t len)
{
    for (uint16_t i = 0; i < len && rx_len < sizeof rx; i++)
        rx[rx_len++] = text[i];
}

int console_drain(void)
{
    int taken = 0;
    for (uint32_t i = 0; i < smp_ap_count(); i++) {
        struct ap_info *ap = smp_ap(i);
        int kind;
        while ((rx_len = 0, kind = linechan_receive(ap->console, &ap->console_next, take_fragment))) {
            taken++;
            if (kind == LINECHAN_TEXT_END && rx_len) {
                break_line();
                serial_put(rx, rx_len);
            } else if (kind == LINECHAN_CHECKIN) {
                cputopo_note_checkin(ap->core_id, rx, rx_len);
                smp_note_checkin(ap);
            } else if (kind == LINECHAN_PANIC) {
                ap->panicked = true;
            } else if (kind == LINECHAN_IDLE) {
                ap->user_idle = true;
            }
        }
    }
    return taken;
}
