# Host unit tests for the CPU driver's pure parsers. Each binary exits 0 when
# every check passed; tests/test_host_units.py runs them all.
host_test("test_multiboot2", srcs=["test_multiboot2.c", "../../cpudriver/multiboot2.c"],
          includes=["../../cpudriver"])
host_test("test_acpi", srcs=["test_acpi.c", "../../cpudriver/acpi.c"],
          includes=["../../cpudriver"])
host_test("test_topology", srcs=["test_topology.c", "../../cpudriver/topology.c",
                                 "../../cpudriver/acpi.c"],
          includes=["../../cpudriver"])
