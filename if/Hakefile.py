# Interfaces: each if/<name>.if becomes build/include/if/<name>_if.h (tools/idlc),
# which every user and host object can include as <if/<name>_if.h>.
# docs/interfaces.md describes the language and the generated API.
interface("test")

# The generated code of if/test.if on the host: round trips, every malformed
# input, a loopback channel (tests/host/test_idl.c) and a seeded fuzzer of the
# decoder and dispatcher (tests/host/fuzz_idl.c), under ASan and UBSan.
host_test("test_idl", srcs=["../tests/host/test_idl.c"], includes=["../lib/include", "../tests/host"])
host_test("fuzz_idl", srcs=["../tests/host/fuzz_idl.c"], includes=["../lib/include", "../tests/host"])

# The monitors' protocol (monitor/), the name service (servers/names), the
# echo test service (user/echo) and the topology service (servers/topo).
interface("monitor")
interface("nameservice")
interface("echo")
interface("monclient")
interface("monlmp")

# Typed channels over local messages (lib/lmpchan.c) with the stubs of
# if/monlmp.if, against a fake kernel: round trips and every malformed fragment.
host_test("test_lmpchan", srcs=["../tests/host/test_lmpchan.c", "../lib/lmpchan.c"],
          includes=["../lib/include", "../tests/host"])
interface("starter")
interface("greeter")
interface("topology")
interface("store")
interface("mem")
