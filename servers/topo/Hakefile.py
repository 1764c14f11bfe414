# The topology service: the machine model, started by core 0's monitor
# (docs/topology.md).
user_program("topo", srcs=["topo.c", "model.c", "topo_xml.c", "service.c"])
