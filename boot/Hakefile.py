# The bootable GRUB image: the CPU driver and the user programs as modules
# (hake's user_program builds build/user/<name>.elf; the CPU driver finds a
# module by its name without .elf).
image("atoll", kernel=build_dir + "/cpudriver/atoll.elf",
      modules=[build_dir + "/user/hello.elf"])
