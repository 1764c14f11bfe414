/*
 * Program start-up (after crt0) and exit; see <atoll/lib/startup.h>.
 */
#include <stddef.h>
#include <stdint.h>
#include <atoll/abi/domain.h>
#include <atoll/string.h>
#include <atoll/lib/startup.h>
#include <atoll/lib/stdio.h>
#include <atoll/lib/syscall.h>
#include <atoll/abi/errors.h>

/* lib/mem.c's, in a program that uses the memory service's client (or is
 * built with hake's user_program(spawn_policy=True)); weak, so that the
 * others do not carry the client: they say +mem= is not supported. */
extern errval_t mem_heap_place_word(const char *word) __attribute__((weak));

_Noreturn void __atoll_start(const struct startup_info *si);

static const struct startup_info *startup_page;
static const struct startup_info no_startup_page;   /* all zero: when the kernel gave none */
static char *argv_table[STARTUP_MAX_ARGS + 1];
/* argv[0] and the words of args, each NUL-terminated. */
static char arg_chars[sizeof no_startup_page.name + 1 + 2 * sizeof no_startup_page.args];

const struct startup_info *startup(void)
{
    return startup_page ? startup_page : &no_startup_page;
}

_Noreturn void __atoll_start(const struct startup_info *si)
{
    int argc = 1;
    if (si && si->magic == STARTUP_MAGIC) {
        startup_page = si;
        size_t n = strnlen(si->name, sizeof si->name);
        memcpy(arg_chars, si->name, n);
        arg_chars[n] = '\0';
        argv_table[0] = arg_chars;
        argc = startup_split_args(si->args, sizeof si->args, arg_chars + n + 1, sizeof arg_chars - n - 1,
                                  argv_table, 1, STARTUP_MAX_ARGS);
        /* `+mem=WORD` first: where the heap grows from, given at spawn
         * (docs/memory.md): taken here, before main, and not passed on. */
        if (argc > 1 && !strncmp(argv_table[1], "+mem=", 5)) {
            const char *word = argv_table[1] + 5;
            for (int i = 1; i < argc; i++)
                argv_table[i] = argv_table[i + 1];
            argc--;
            errval_t err = mem_heap_place_word ? mem_heap_place_word(word) : ERR_NOT_SUPPORTED;
            if (err)
                printf("start-up: +mem=%s: %s (the heap grows from this domain's own RAM)\n", word, err_name(err));
        }
    } else {
        argv_table[0] = arg_chars;   /* "" */
        argv_table[1] = NULL;
        printf("start-up: no start-up page at %p (magic wrong): no arguments\n", (const void *)si);
    }
    exit(main(argc, argv_table));
}

_Noreturn void exit(int status)
{
    stdout_flush();
    sys_exit((uint64_t)(int64_t)status);
}
