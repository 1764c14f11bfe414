# The monitor: the first user domain on every core (monitor/monitor.h).
user_program("monitor", srcs=["main.c", "links.c", "mesh.c", "mesh_plan.c", "captransfer.c", "pending.c",
                              "services.c", "conns.c", "lifetimes.c", "spawn.c", "clients.c", "requests.c", "ping.c",
                               "capops.c", "coreset.c", "fence.c", "span.c", "mcast_plan.c"])
