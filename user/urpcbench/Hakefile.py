# urpcbench: the URPC benchmark between two user domains, and a bare cache
# line on the same frame (docs/monitor.md, "URPC benchmark"); run by the
# shell's `bench urpc`.
user_program("urpcbench", srcs=["urpcbench.c"])
