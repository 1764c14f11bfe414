# The memory service: RAM and Frames by NUMA node, one instance per node by
# the boot manifest (docs/memory.md); the same program is its test client.
user_program("mem", srcs=["mem.c", "pool.c", "lives.c", "loans.c"])
# The pool on the host: aligned lowest fit, splits, joins, bad frees.
host_test("test_mem_pool", srcs=["../../tests/host/test_mem_pool.c", "pool.c"],
          includes=["../../tests/host", "."])
# Borrowing in batches on the host: batch sizes, the borrower's table.
host_test("test_mem_loans", srcs=["../../tests/host/test_mem_loans.c", "loans.c"],
          includes=["../../tests/host", "."])
