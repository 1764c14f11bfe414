# capxfer: RAM given to another core, retyped there, revoked from the giver
# (monitor/capops.c, tests/test_capops.py).
user_program("capxfer", srcs=["capxfer.c"])
