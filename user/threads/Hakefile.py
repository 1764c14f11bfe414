# threads: a domain's threads (lib/thread) at work and checked: mutex,
# condition variables, barrier, deadlock detection, stack overrun; and the
# same across cores (xsync.c).
user_program("threads", srcs=["threads.c", "xsync.c"])
