# The name server: a replica of the names store on the first core of each node (docs/names.md).
user_program("names", srcs=["names.c", "../store/replica.c", "../store/kv.c", "../store/instances.c"])
