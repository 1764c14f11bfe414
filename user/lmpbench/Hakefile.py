# lmpbench: local message round trips (docs/user-space.md), run by bench and tests.
user_program("lmpbench", srcs=["lmpbench.c"])
