# The shell: a console domain on the boot core (docs/shell.md).
user_program("shell", srcs=["shell.c"])
