# badboy: forbidden accesses and system calls, for tests/test_userspace.py.
user_program("badboy", srcs=["badboy.c"])
