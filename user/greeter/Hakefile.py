# The tutorial's service and client (docs/writing-a-service.md).
user_program("greeter", srcs=["greeter.c"])
