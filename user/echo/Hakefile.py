# echo: a cross-core service and client through the name service (docs/names.md).
user_program("echo", srcs=["echo.c"])
