# The nested-KVM reproducer (tools/kvm-repro, docs/kvm.md): a bare guest of
# one assembly file that walks through what Atoll's CPU driver does up to its
# first system call, saying each step on the serial port.
guest32_program("repro", srcs=["repro.S"], ldscript="repro.lds")
