# The cost model's self-test guest: a bare 32-bit multiboot kernel with
# access patterns of known cost (tests/test_costmodel.py boots it with
# -kernel under the plugin; docs/costmodel.md).
guest32_program("selftest", srcs=["entry.S", "selftest.c"], ldscript="selftest.lds")
