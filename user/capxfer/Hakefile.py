# capxfer: RAM given to another core, retyped there, revoked from the giver
# (monitor/capops.c, tests/test_capops.py).
user_program("capxfer", srcs=["capxfer.c"])
# capholder: holders' revoke, give-on and a dead holder core; not in the
# default image (tests/test_capops.py boots it as an extra program).
user_program("capholder", srcs=["holder.c"])
