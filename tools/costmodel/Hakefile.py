# The cost model: a QEMU plugin counting cache-line transfers, IPIs and
# instructions per virtual CPU (docs/costmodel.md). tools/run --cost-model
# and tools/bench --cost-model load build/host/tools/costmodel/costmodel.so.
# tests/host/Hakefile.py builds the same sources, minus the QEMU glue, into
# an ASan/UBSan unit test.
host_plugin("costmodel", srcs=["plugin.c", "args.c", "counts.c", "directory.c", "regions.c"])
