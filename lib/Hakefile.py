# lib/: the user library every user domain links (build/lib/libatoll.a):
# crt0 and start-up, system-call wrappers, console output, slots/RAM/mappings
# and malloc, the topology service's client (topo.c, <atoll/topo.h>), threads
# (thread/, <atoll/thread.h>), plus the
# freestanding code shared with the CPU driver (common/).
# Headers: lib/include/atoll/lib.h and lib/include/atoll/lib/*.h (user_program
# adds lib/include to the include path). See docs/userlib.md.
user_library(
    "atoll",
    srcs=[
        "crt0.S",
        "start.c",
        "args.c",
        "syscall.c",
        "printf.c",
        "caps.c",
        "heap.c",
        "malloc.c",
        "topo.c",
        "mem.c",
        "names_place.c",
        "urpc/urpc.c",
        "urpc/urpc_os_atoll.c",
        "waitset/waitset.c",
        "lmpchan.c",
        "monitor_client.c",
        "recover.c",
        "waitset/waitset_os_atoll.c",
        "thread/thread.c",
        "thread/sync.c",
        "thread/switch.S",
        "thread/thread_os_atoll.c",
        "span.c",
        "../common/fmt.c",
        "../common/string.c",
    ],
)
