# Host builds of the URPC channel library (lib/urpc/urpc.c with the Linux
# platform half, urpc_os_host.c). The guest build of urpc.c is declared in
# lib/Hakefile.py. docs/urpc.md describes the design and the tests.
URPC_HOST = ["urpc.c", "urpc_os_host.c"]
# Single-threaded: both sides in one thread, and a hand-written faulty peer.
host_test("test_urpc", srcs=["../../tests/host/test_urpc.c"] + URPC_HOST, includes=["../include"])
# Two threads on two CPUs under ThreadSanitizer: duplex traffic, messages
# longer than the ring, and receivers that sleep on the futex.
host_test("test_urpc_threads", srcs=["../../tests/host/test_urpc_threads.c"] + URPC_HOST,
          includes=["../include"], sanitize="thread", libs="-lpthread")
# A seeded fuzz loop: a peer that scribbles on its half; ASan/UBSan watch.
host_test("fuzz_urpc", srcs=["../../tests/host/fuzz_urpc.c"] + URPC_HOST, includes=["../include"])
# The same threaded test without TSan, so the host's asymmetric fences
# (membarrier: the sleeper fences for the sender) run under ASan/UBSan.
host_test("test_urpc_threads_asym", srcs=["../../tests/host/test_urpc_threads.c"] + URPC_HOST,
          includes=["../include"], libs="-lpthread")
# The event loop (lib/waitset), with real channels for its URPC sources.
host_test("test_waitset", srcs=["../../tests/host/test_waitset.c", "../waitset/waitset.c"] + URPC_HOST,
          includes=["../include"])
