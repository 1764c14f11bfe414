"""The nested-KVM reproducer (tools/kvm-repro, tests/kvmrepro/repro.S,
docs/kvm.md). Under TCG, QEMU's reference interpreter, the guest must walk
through every step: otherwise a stop under KVM would say nothing about the
host. KVM itself is not run here (make test never depends on /dev/kvm)."""
import os

from load_tool import load_tool

kvm_repro = load_tool("kvm-repro")

# What this host's /dev/kvm printed (kvm_pvm, QEMU 7.2), trimmed: the run
# stops at the reproducer's first stac.
KVM_CONSOLE = """repro: start
repro: step cpuid: smep=1 smap=1
repro: step long ... ok
repro: step smap (CR4.SMEP/SMAP as offered) ... ok
repro: step stac (ring 0) ... KVM internal error. Suberror: 1
extra data[0]: 0x0000000000000001
emulation failure
RIP=000000000010021f RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
Code=3d c5 04 00 00 00 74 36 48 8d 35 86 03 00 00 e8 cf 02 00 00 <0f> 01 cb 48 8d 35 29 04
"""


def test_every_step_runs_under_tcg():
    assert os.path.isfile(kvm_repro.GUEST), "run make first"
    r = kvm_repro.run("tcg", timeout=60)
    assert r["completed"], r
    assert (r["stopped_at"], r["why"]) == (None, None)
    assert (r["smep"], r["smap"]) == (1, 1), "TCG's -cpu max offers SMEP and SMAP: every step runs"


def test_the_verdict_of_a_stop():
    r = kvm_repro.verdict("kvm", KVM_CONSOLE, 11.5)
    assert r == {"accel": "kvm", "completed": False, "stopped_at": "stac", "why": "emulation failure",
                 "smap": 1, "smep": 1, "wall_s": 11.5}
    r = kvm_repro.verdict("tcg", "repro: start\nrepro: step cpuid: smep=1 smap=0\nrepro: step long ... ok\n"
                          "repro: step smap (CR4) ... ok\nrepro: step user (iretq) ... \n"
                          "repro: fault, vector 0x0d\n", 1.0)
    assert (r["completed"], r["stopped_at"], r["why"], r["smap"]) == (False, "user", "fault 0x0d", 0)
    r = kvm_repro.verdict("kvm", "", 60.0)
    assert (r["completed"], r["stopped_at"], r["why"]) == (False, "start", "no progress (timed out)")


def test_the_command_gives_each_accelerator_the_runners_cpu():
    assert kvm_repro.command("tcg")[:5] == ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max"]
    assert kvm_repro.command("kvm")[4] == "host,-arch-capabilities"
