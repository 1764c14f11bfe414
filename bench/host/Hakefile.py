# The URPC host benchmark. Built here (with hake's usual sanitizers) only so
# that `make` keeps it compiling; the numbers come from tools/bench-host,
# which builds the same sources with gcc -O2 and no sanitizer
# (docs/urpc.md).
host_program("urpc_bench", srcs=["urpc_bench.c", "boost_spsc.cpp", "../../lib/urpc/urpc.c",
                                 "../../lib/urpc/urpc_os_host.c"],
             includes=["../../lib/include"], libs="-lpthread")
