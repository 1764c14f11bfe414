# The bootable GRUB image: the CPU driver, and the user programs as modules
# (the kernel finds a module by its file name without ".elf").
USER = build_dir + "/user/"
image("atoll", kernel=build_dir + "/cpudriver/atoll.elf",
      modules=[USER + p + ".elf" for p in ("monitor", "names", "starter", "topo", "shell", "hello", "badboy",
                                                  "fuzz", "lmpbench", "urpcbench", "echo", "xattack", "churn",
                                                  "greeter", "threads", "store",
                                                  "capxfer")])
