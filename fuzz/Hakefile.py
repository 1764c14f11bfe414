# Fuzz targets (docs/fuzzing.md): one harness per parser or decoder, each
# defining fuzz_one() (fuzz/fuzz.h). Here hake builds each with fuzz/replay.c
# and ASan/UBSan as build/host/fuzz/replay_<target>, a host test that replays
# the seed corpus fuzz/corpus/<target>/ (make test). tools/fuzz reads this
# same list (it runs this file with its own host_test) and builds each with
# fuzz/afl_main.c and afl-clang-fast for AFL++ (make fuzz).
CD = "../cpudriver"
TARGETS = [
    # name, harness, the parser's sources, include folders, extra flags
    ("mb2", "fuzz_mb2.c", [CD + "/multiboot2.c", CD + "/acpi.c"], [CD], ""),
    ("acpi", "fuzz_acpi.c", [CD + "/acpi.c", CD + "/topology.c"], [CD], ""),
    ("acpi_table", "fuzz_acpi_table.c", [CD + "/acpi.c"], [CD], ""),
    ("elf", "fuzz_elf.c", [CD + "/elf.c"], [CD], ""),
    ("idl", "fuzz_idl.c", [], ["../lib/include"], "-DFUZZ_MAKE_CORPUS"),
    ("urpc", "fuzz_urpc.c", ["../lib/urpc/urpc.c", "../lib/urpc/urpc_os_host.c"], ["../lib/include"],
     "-DFUZZ_MAKE_CORPUS"),
    ("args", "fuzz_args.c", ["../lib/args.c", CD + "/multiboot2.c"], ["../lib/include", CD], ""),
    ("machine", "fuzz_machine.c", ["../servers/topo/model.c", "../servers/topo/topo_xml.c"],
     ["../servers/topo", "../lib/include"], "-DFUZZ_MAKE_CORPUS"),
]
for name, harness, srcs, incs, flags in TARGETS:
    host_test("replay_" + name, srcs=[harness, "replay.c"] + srcs, includes=incs,
              cflags=f'-DFUZZ_NAME=\\"{name}\\" {flags}'.strip())
