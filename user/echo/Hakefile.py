# echo: a cross-core service and client through the name service (docs/names.md).
user_program("echo", srcs=["echo.c"])
# echo2: the same server with state format 2, for live updates (docs/restart.md).
user_program("echo2", srcs=["echo.c"], cflags="-DECHO_STATE_VERSION=2")
