# The monitor: the first user domain on every core.
user_program("monitor", srcs=["monitor.c"])
