/*
 * printf-style formatting, compiled into both the CPU driver and user
 * domains (include/atoll/fmt.h lists what it understands). One formatter,
 * fmt_vformat, hands characters to a callback; vsnprintf collects them in a
 * buffer, lib/'s printf in its line buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <atoll/fmt.h>

struct spec {
    int left, zero, alt, plus, space;
    int width;   /* 0: none */
    int prec;    /* -1: none */
};

struct sink {
    fmt_emit_fn *emit;
    void *ctx;
    int n;
};

static void out(struct sink *k, char c)
{
    k->emit(c, k->ctx);
    k->n++;
}

static void fill(struct sink *k, char c, int count)
{
    while (count-- > 0)
        out(k, c);
}

static void out_str(struct sink *k, const struct spec *sp, const char *s, size_t n)
{
    int pad = sp->width > (int)n ? sp->width - (int)n : 0;
    if (!sp->left)
        fill(k, ' ', pad);
    for (size_t i = 0; i < n; i++)
        out(k, s[i]);
    if (sp->left)
        fill(k, ' ', pad);
}

/* One integer: [spaces][prefix][zeros][digits][spaces]. */
static void out_int(struct sink *k, const struct spec *sp, unsigned long long u, int neg, int base,
                    int upper, int is_signed, int pointer)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];   /* 2^64 in octal is 22 digits */
    int nd = 0;
    if (!(u == 0 && sp->prec == 0)) {
        do {
            tmp[sizeof tmp - 1 - nd++] = digits[u % (unsigned)base];
            u /= (unsigned)base;
        } while (u);
    }
    int is_zero = nd == 0 || (nd == 1 && tmp[sizeof tmp - 1] == '0');

    char prefix[3];
    int np = 0;
    if (is_signed) {
        if (neg)
            prefix[np++] = '-';
        else if (sp->plus)
            prefix[np++] = '+';
        else if (sp->space)
            prefix[np++] = ' ';
    }
    if (pointer || (sp->alt && base == 16 && !is_zero)) {
        prefix[np++] = '0';
        prefix[np++] = upper ? 'X' : 'x';
    }
    int zeros = sp->prec > nd ? sp->prec - nd : 0;
    if (sp->alt && base == 8 && zeros == 0 && (nd == 0 || tmp[sizeof tmp - nd] != '0'))
        zeros = 1;   /* "%#o": the first digit is a 0 */
    int body = np + zeros + nd;
    int pad = sp->width > body ? sp->width - body : 0;
    if (sp->zero && !sp->left && sp->prec < 0) {
        zeros += pad;
        pad = 0;
    }
    if (!sp->left)
        fill(k, ' ', pad);
    for (int i = 0; i < np; i++)
        out(k, prefix[i]);
    fill(k, '0', zeros);
    for (int i = 0; i < nd; i++)
        out(k, tmp[sizeof tmp - nd + i]);
    if (sp->left)
        fill(k, ' ', pad);
}

enum len { LEN_HH, LEN_H, LEN_INT, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

static long long arg_signed(va_list *ap, enum len l)
{
    switch (l) {
    case LEN_HH: return (signed char)va_arg(*ap, int);
    case LEN_H: return (short)va_arg(*ap, int);
    case LEN_INT: return va_arg(*ap, int);
    case LEN_L: return va_arg(*ap, long);
    case LEN_LL: return va_arg(*ap, long long);
    case LEN_Z: return va_arg(*ap, ptrdiff_t);   /* the signed type of size_t's width */
    case LEN_J: return (long long)va_arg(*ap, intmax_t);
    case LEN_T: return va_arg(*ap, ptrdiff_t);
    }
    return 0;
}

static unsigned long long arg_unsigned(va_list *ap, enum len l)
{
    switch (l) {
    case LEN_HH: return (unsigned char)va_arg(*ap, unsigned int);
    case LEN_H: return (unsigned short)va_arg(*ap, unsigned int);
    case LEN_INT: return va_arg(*ap, unsigned int);
    case LEN_L: return va_arg(*ap, unsigned long);
    case LEN_LL: return va_arg(*ap, unsigned long long);
    case LEN_Z: return va_arg(*ap, size_t);
    case LEN_J: return (unsigned long long)va_arg(*ap, uintmax_t);
    case LEN_T: return (unsigned long long)va_arg(*ap, ptrdiff_t);
    }
    return 0;
}

int fmt_vformat(fmt_emit_fn *emit, void *ctx, const char *fmt, va_list ap_in)
{
    struct sink k = { emit, ctx, 0 };
    va_list ap;
    va_copy(ap, ap_in);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out(&k, *fmt);
            continue;
        }
        const char *start = fmt++;
        struct spec sp = { 0, 0, 0, 0, 0, 0, -1 };
        for (;; fmt++) {
            if (*fmt == '-')
                sp.left = 1;
            else if (*fmt == '0')
                sp.zero = 1;
            else if (*fmt == '#')
                sp.alt = 1;
            else if (*fmt == '+')
                sp.plus = 1;
            else if (*fmt == ' ')
                sp.space = 1;
            else
                break;
        }
        if (*fmt == '*') {
            int w = va_arg(ap, int);
            if (w < 0) {
                sp.left = 1;
                w = w == -2147483647 - 1 ? 2147483647 : -w;
            }
            sp.width = w;
            fmt++;
        } else {
            while (*fmt >= '0' && *fmt <= '9') {
                if (sp.width < 100000000)
                    sp.width = sp.width * 10 + (*fmt - '0');
                fmt++;
            }
        }
        if (*fmt == '.') {
            fmt++;
            sp.prec = 0;
            if (*fmt == '*') {
                int p = va_arg(ap, int);
                sp.prec = p < 0 ? -1 : p;
                fmt++;
            } else {
                while (*fmt >= '0' && *fmt <= '9') {
                    if (sp.prec < 100000000)
                        sp.prec = sp.prec * 10 + (*fmt - '0');
                    fmt++;
                }
            }
        }
        enum len l = LEN_INT;
        if (fmt[0] == 'h' && fmt[1] == 'h') {
            l = LEN_HH;
            fmt += 2;
        } else if (fmt[0] == 'l' && fmt[1] == 'l') {
            l = LEN_LL;
            fmt += 2;
        } else if (*fmt == 'h' || *fmt == 'l' || *fmt == 'z' || *fmt == 'j' || *fmt == 't') {
            l = *fmt == 'h' ? LEN_H : *fmt == 'l' ? LEN_L : *fmt == 'z' ? LEN_Z : *fmt == 'j' ? LEN_J : LEN_T;
            fmt++;
        }
        switch (*fmt) {
        case 'c': {
            char c = (char)va_arg(ap, int);
            out_str(&k, &sp, &c, 1);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = 0;
            while ((sp.prec < 0 || n < (size_t)sp.prec) && s[n])
                n++;
            out_str(&k, &sp, s, n);
            break;
        }
        case 'd':
        case 'i': {
            long long v = arg_signed(&ap, l);
            unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;
            out_int(&k, &sp, u, v < 0, 10, 0, 1, 0);
            break;
        }
        case 'u':
            out_int(&k, &sp, arg_unsigned(&ap, l), 0, 10, 0, 0, 0);
            break;
        case 'x':
        case 'X':
            out_int(&k, &sp, arg_unsigned(&ap, l), 0, 16, *fmt == 'X', 0, 0);
            break;
        case 'o':
            out_int(&k, &sp, arg_unsigned(&ap, l), 0, 8, 0, 0, 0);
            break;
        case 'p':
            out_int(&k, &sp, (uintptr_t)va_arg(ap, void *), 0, 16, 0, 0, 1);
            break;
        case '%':
            out(&k, '%');
            break;
        default:
            /* Unknown or cut short: print it as written. */
            for (const char *p = start; p < fmt; p++)
                out(&k, *p);
            if (*fmt)
                out(&k, *fmt);
            else
                fmt--;
            break;
        }
    }
    va_end(ap);
    return k.n;
}

struct bufctx {
    char *buf;
    size_t size, len;
};

static void buf_emit(char c, void *ctx)
{
    struct bufctx *b = ctx;
    if (b->len + 1 < b->size)
        b->buf[b->len] = c;
    b->len++;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct bufctx b = { buf, size, 0 };
    int n = fmt_vformat(buf_emit, &b, fmt, ap);
    if (size)
        buf[b.len < size ? b.len : size - 1] = '\0';
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int fmt_bytes(char *buf, size_t size, unsigned long long bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    unsigned u = 0;
    while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
        bytes /= 1024;
        u++;
    }
    return snprintf(buf, size, "%llu %s", bytes, units[u]);
}
