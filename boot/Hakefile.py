# The bootable GRUB image: the CPU driver and (later) user programs as modules.
image("atoll", kernel=build_dir + "/cpudriver/atoll.elf")
