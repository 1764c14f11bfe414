/*
 * Splitting a start-up argument string into words (startup_split_args in
 * <atoll/lib/startup.h>); crt0's start-up code uses it for argv. Pure, so
 * the host tests run it too.
 */
#include <stddef.h>
#include <stdint.h>
#include <atoll/lib/startup.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

int startup_split_args(const char *args, unsigned long len, char *buf, unsigned long bufsize, char **argv,
                       int first, int max_args)
{
    int argc = first;
    unsigned long i = 0, o = 0;
    for (;;) {
        while (i < len && args[i] && is_space(args[i]))
            i++;
        if (i >= len || !args[i])
            break;
        /* One word: copy it with quotes and backslashes undone. */
        unsigned long start = o;
        int fits = 1;
        char quote = 0;
        while (i < len && args[i] && (quote || !is_space(args[i]))) {
            char c = args[i++];
            if (quote && c == quote) {
                quote = 0;
                continue;
            }
            if (!quote && (c == '\'' || c == '"')) {
                quote = c;
                continue;
            }
            if (c == '\\' && quote != '\'' && i < len && args[i])
                c = args[i++];
            if (o + 1 < bufsize)
                buf[o++] = c;
            else
                fits = 0;
        }
        if (!fits || o >= bufsize || argc >= max_args) {
            o = start;   /* drop it */
            continue;
        }
        buf[o++] = '\0';
        argv[argc++] = buf + start;
    }
    argv[argc] = NULL;
    return argc;
}

uint32_t arg_number(const char *s, uint32_t dflt)
{
    uint32_t v = 0;
    for (; *s >= '0' && *s <= '9' && v < 100000000; s++)
        v = v * 10 + (uint32_t)(*s - '0');
    return *s || v == 0 ? dflt : v;
}
