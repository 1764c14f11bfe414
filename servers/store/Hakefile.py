# The replicated store (docs/store.md): replicas and clients in one program.
user_program("store", srcs=["store.c", "replica.c", "client.c", "kv.c"])
