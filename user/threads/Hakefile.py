# threads: a domain's threads (lib/thread) at work and checked: mutex,
# condition variables, barrier, deadlock detection, stack overrun.
user_program("threads", srcs=["threads.c"])
