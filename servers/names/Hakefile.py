# The name server: service 0 on core 0 (docs/names.md).
user_program("names", srcs=["names.c"])
