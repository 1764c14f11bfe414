# hello: prints its domain, core and arguments, checks malloc, exits 0.
user_program("hello", srcs=["hello.c"])
