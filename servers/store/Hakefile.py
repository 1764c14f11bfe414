# The replicated store (docs/store.md): replicas and clients in one program.
user_program("store", srcs=["store.c", "replica.c", "client.c", "kv.c", "instances.c"])
# The table on the host (the host C library's strings and malloc).
host_test("test_kv", srcs=["../../tests/host/test_kv.c", "kv.c"], includes=["../../tests/host", "."])
