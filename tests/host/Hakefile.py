# Host unit tests for the CPU driver's pure parsers. Each binary exits 0 when
# every check passed; tests/test_host_units.py runs them all.
host_test("test_multiboot2", srcs=["test_multiboot2.c", "../../cpudriver/multiboot2.c"],
          includes=["../../cpudriver"])
host_test("test_acpi", srcs=["test_acpi.c", "../../cpudriver/acpi.c"],
          includes=["../../cpudriver"])
host_test("test_topology", srcs=["test_topology.c", "../../cpudriver/topology.c",
                                 "../../cpudriver/acpi.c"],
          includes=["../../cpudriver"])
# The shared formatting and string routines (common/), with their public names
# renamed so the host C library keeps its own; glibc's sprintf is the reference.
COMMON_RENAMES = " ".join(f"-D{n}=atoll_{n}" for n in (
    "vsnprintf", "snprintf", "memset", "memcpy", "memmove", "memcmp", "strlen", "strnlen",
    "strcmp", "strncmp"))
host_test("test_common", srcs=["test_common.c", "../../common/fmt.c", "../../common/string.c"],
          cflags=COMMON_RENAMES)
host_test("test_elf", srcs=["test_elf.c", "../../cpudriver/elf.c"], includes=["../../cpudriver"])
host_test("test_cap", srcs=["test_cap.c", "../../cpudriver/cap.c"], includes=["../../cpudriver"])
# The user library's allocator (lib/heap.c) with a fake morecore.
host_test("test_malloc", srcs=["test_malloc.c", "../../lib/heap.c"], includes=["../../lib/include"])
# The machine model: CPUID decoding (the CPU driver's), and the topology
# service's model, questions, cpu_topology event lines and hwloc XML writer.
host_test("test_cpuid_topo", srcs=["test_cpuid_topo.c", "../../cpudriver/x86_64/cpuid_topo.c",
                                   "../../servers/topo/model.c"],
          includes=["../../cpudriver", "../../servers/topo", "../../lib/include"])
host_test("test_topo_xml", srcs=["test_topo_xml.c", "../../servers/topo/topo_xml.c",
                                 "../../servers/topo/model.c"],
          includes=["../../servers/topo", "../../lib/include"])
host_test("test_topo_model", srcs=["test_topo_model.c", "../../servers/topo/model.c"],
          includes=["../../servers/topo", "../../lib/include"])
# The user library's slots, RAM and mappings (lib/caps.c) against a fake
# kernel, and argument splitting (lib/args.c).
host_test("test_userlib", srcs=["test_userlib.c", "../../lib/caps.c", "../../lib/args.c"],
          includes=["../../lib/include"])
# The monitor mesh plan: links, routes and channel counts.
host_test("test_mesh", srcs=["test_mesh.c", "../../monitor/mesh_plan.c"], includes=["../../monitor"])
# The decoders generated for the interfaces the system speaks (if/*.if), fuzzed.
host_test("fuzz_interfaces", srcs=["fuzz_interfaces.c"], includes=["../../lib/include"])
# The cost model's directory, regions and argument checks (tools/costmodel/)
# without QEMU; tests/test_costmodel.py loads the plugin itself.
host_test("test_costmodel", srcs=["test_costmodel.c", "../../tools/costmodel/args.c",
                                  "../../tools/costmodel/counts.c",
                                  "../../tools/costmodel/directory.c",
                                  "../../tools/costmodel/regions.c"],
          includes=["../../tools/costmodel"])
# The user library's threads (lib/thread/): scheduler, switch and
# synchronisation on the host, under ASan and UBSan; threads "on other
# cores" are host threads running on the library's stacks, in parallel.
host_test("test_thread", srcs=["test_thread.c", "../../lib/thread/thread.c", "../../lib/thread/sync.c",
                               "../../lib/thread/switch.S"],
          includes=["../../lib/include", "../../include", "../../lib/thread"], libs="-lpthread")
# The owner's record of which cores hold copies of an object (monitor/coreset.c).
host_test("test_coreset", srcs=["test_coreset.c", "../../monitor/coreset.c"], includes=["../../monitor"])
# numa-multicast's shootdown tree from distances and measured costs (monitor/mcast_plan.c).
host_test("test_mcast_plan", srcs=["test_mcast_plan.c", "../../monitor/mcast_plan.c"], includes=["../../monitor"])
# Where the name server's replicas go (lib/names_place.c, docs/names.md).
host_test("test_names_place", srcs=["test_names_place.c", "../../lib/names_place.c"], includes=["../../lib/include"])
