# xattack: attacks on the monitors and the name server from a local domain,
# for tests/test_xcore_attacks.py (each run prints one `xattack` event).
user_program("xattack", srcs=["xattack.c"])
