# The boot floor (tools/bench-boot, docs/bench.md "Boot time"): a bare
# multiboot2 kernel that GRUB loads like Atoll's and that only starts every
# core, then exits QEMU. Booting it measures QEMU, the firmware and GRUB: the
# part of a boot that Atoll cannot make faster.
guest32_program("floor", srcs=["entry.S", "floor.c"], ldscript="floor.lds")
