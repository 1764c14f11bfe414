# fuzz: random system calls, for tests/test_userspace.py.
user_program("fuzz", srcs=["fuzz.c"])
