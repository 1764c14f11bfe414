/*
 * Fuzz target: the words of a command line, both parsers: a domain's
 * start-up arguments split into argv (lib/args.c, startup_split_args, with
 * quotes and backslashes) and the CPU driver's `key=value` lookup
 * (cmdline_get, cpudriver/multiboot2.c). The input is the argument text,
 * not NUL-terminated (the split stops at its length); the corpus holds the
 * command lines the tests and tools really pass (tools/fuzz-corpus).
 *
 * Checked: argc stays within bounds, argv[argc] is NULL, every word lies in
 * the output buffer and ends inside it; a value cmdline_get returns lies
 * inside the command line.
 */
#include <string.h>
#include <atoll/lib/startup.h>
#include "multiboot2.h"
#include "fuzz.h"

#define MAXARGS 16

/* Split into an output buffer and an argv of exactly the sizes given (heap
 * blocks, so ASan sees a write past either). */
static void split(const uint8_t *data, size_t size, unsigned long bufsize, int max_args)
{
    char *buf = malloc(bufsize);
    char **argv = malloc(sizeof *argv * (size_t)(max_args + 1));    /* argv[max_args] = NULL at most */
    argv[0] = "prog";
    int argc = startup_split_args((const char *)data, size, buf, bufsize, argv, 1, max_args);
    FUZZ_ASSERT(argc >= 1 && argc <= max_args);
    FUZZ_ASSERT(argv[argc] == NULL);
    for (int i = 1; i < argc; i++) {
        FUZZ_ASSERT(argv[i] >= buf && argv[i] < buf + bufsize);
        FUZZ_ASSERT(memchr(argv[i], 0, (size_t)(buf + bufsize - argv[i])) != NULL);
    }
    free(argv);
    free(buf);
}

int fuzz_one(const uint8_t *data, size_t size)
{
    split(data, size, 256, MAXARGS);
    /* Tight: a buffer and an argv a few entries long, sized from the input. */
    split(data, size, size % 32 + 1, 1 + (int)(size % 4));
    /* The same bytes as a kernel command line (NUL-terminated copy). */
    char *line = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = 0;
    static const char *keys[] = { "smp", "poweroff", "topology_xml", "shell", "mesh", "cluster", "" };
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        const char *v;
        size_t vlen;
        if (cmdline_get(line, keys[k], &v, &vlen)) {
            /* A bare key's value is "" (anywhere); any other lies in the line. */
            size_t n = strlen(line);
            FUZZ_ASSERT(vlen == 0 ? *v == 0 || (v >= line && v <= line + n)
                                  : v >= line && v + vlen <= line + n);
        }
    }
    free(line);
    return 1;
}
