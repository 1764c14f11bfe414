"""tools/run and tools/mkimage: QEMU command generation, option checking,
exit-status mapping, console events, ISO contents and the image cache.

None of this needs the Atoll kernel. The few boot tests use a tiny multiboot2
stub built here from C (skipped when gcc cannot build 32-bit code or
QEMU/GRUB are missing).
"""
import concurrent.futures
import os
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)

import atoll_image  # noqa: E402
import atoll_run  # noqa: E402
from atoll_image import Module  # noqa: E402
from atoll_run import ConfigError, Machine, parse_args, qemu_command  # noqa: E402

HAVE_GRUB = shutil.which("grub-mkrescue") is not None and shutil.which("xorriso") is not None
HAVE_QEMU = shutil.which("qemu-system-x86_64") is not None
needs_grub = pytest.mark.skipif(not HAVE_GRUB, reason="grub-mkrescue/xorriso not installed")


@pytest.fixture(scope="module")
def fake_kernel(tmp_path_factory):
    """Any file will do for command lines and ISO contents."""
    p = tmp_path_factory.mktemp("fake") / "fake.elf"
    p.write_bytes(b"\x7fELF not really a kernel\n" * 40)
    return str(p)


def dry(fake_kernel, *args, capsys=None):
    """tools/run --dry-run ARGS in-process -> argument list of the QEMU command."""
    rc = atoll_run.main(["--dry-run", "--kernel", fake_kernel, *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return shlex.split(out.strip())


def opt_values(cmd, flag):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def run_error(capsys, *args):
    """Runs tools/run ARGS in-process, expecting exit 2; returns stderr."""
    rc = atoll_run.main(list(args))
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert err.startswith("run: error: "), err
    return err


# -- QEMU command lines ------------------------------------------------------------------
def test_default_command(fake_kernel, capsys):
    cmd = dry(fake_kernel, capsys=capsys)
    accel = "tcg"   # the default: never KVM unless asked
    assert cmd[0] == "qemu-system-x86_64"
    assert opt_values(cmd, "-machine") == [f"q35,accel={accel},memory-backend=ram"]
    assert opt_values(cmd, "-cpu") == ["host,-arch-capabilities" if accel == "kvm" else "max"]
    assert opt_values(cmd, "-smp") == ["4"]
    assert opt_values(cmd, "-m") == ["1G"]
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=ram,size=1G,share=on"]
    assert "-numa" not in cmd
    assert opt_values(cmd, "-display") == ["none"]
    # The console: one multiplexed stdio device for the UART and the debug port.
    assert opt_values(cmd, "-chardev") == ["stdio,id=console,mux=on"]
    assert opt_values(cmd, "-serial") == ["none"]
    assert opt_values(cmd, "-monitor") == ["none"]
    assert "-no-reboot" in cmd
    assert opt_values(cmd, "-device") == ["isa-debugcon,iobase=0xe9,chardev=console",
                                          "isa-serial,chardev=console",
                                          "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    assert opt_values(cmd, "-cdrom")[0].endswith(".iso")
    assert opt_values(cmd, "-boot") == ["d"]
    assert "-gdb" not in cmd and "-S" not in cmd


def test_tcg_and_kvm_cpu_models(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", capsys=capsys)
    assert opt_values(cmd, "-machine") == ["q35,accel=tcg,memory-backend=ram"]
    assert opt_values(cmd, "-cpu") == ["max"]
    # A dry run describes a KVM machine even on a host without KVM.
    cmd = dry(fake_kernel, "--accel", "kvm", "--x2apic", "on", capsys=capsys)
    assert opt_values(cmd, "-machine") == ["q35,accel=kvm,memory-backend=ram"]
    assert opt_values(cmd, "-cpu") == ["host,-arch-capabilities,+x2apic"]
    cmd = dry(fake_kernel, "--accel", "kvm", "--x2apic", "off", capsys=capsys)
    assert opt_values(cmd, "-cpu") == ["host,-arch-capabilities,-x2apic"]
    cmd = dry(fake_kernel, "--accel", "tcg", "--x2apic", "off", capsys=capsys)
    assert opt_values(cmd, "-cpu") == ["max,-x2apic"]
    cmd = dry(fake_kernel, "--accel", "tcg", "--cpu-flags=-smap,-pcid", capsys=capsys)
    assert opt_values(cmd, "-cpu") == ["max,-smap,-pcid"]


def test_even_numa(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "8", "--numa", "2", capsys=capsys)
    assert opt_values(cmd, "-smp") == ["8"]
    assert opt_values(cmd, "-m") == ["1G"]
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=m0,size=512M,share=on",
                                          "memory-backend-ram,id=m1,size=512M,share=on"]
    assert opt_values(cmd, "-numa") == [
        "node,nodeid=0,cpus=0-3,memdev=m0",
        "node,nodeid=1,cpus=4-7,memdev=m1",
        "dist,src=0,dst=1,val=20",
        "dist,src=1,dst=0,val=20",
    ]


def test_even_numa_with_remainder(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "6", "--numa", "4", "--mem", "2G",
              capsys=capsys)
    nodes = [v for v in opt_values(cmd, "-numa") if v.startswith("node,")]
    assert nodes == ["node,nodeid=0,cpus=0-1,memdev=m0", "node,nodeid=1,cpus=2-3,memdev=m1",
                     "node,nodeid=2,cpus=4,memdev=m2", "node,nodeid=3,cpus=5,memdev=m3"]
    assert opt_values(cmd, "-object") == [f"memory-backend-ram,id=m{i},size=512M,share=on" for i in range(4)]
    assert opt_values(cmd, "-m") == ["2G"]


def test_single_numa_node_has_no_distances(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--numa", "1", capsys=capsys)
    assert opt_values(cmd, "-numa") == ["node,nodeid=0,cpus=0-3,memdev=m0"]


def test_uneven_numa_nodes(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "6", "--mem", "1536M",
              "--numa-node", "cpus=0-1,4-5,mem=1G",
              "--numa-node", "cpus=2-3,mem=256M",
              "--numa-node", "mem=256M",          # memory, no CPUs
              capsys=capsys)
    assert opt_values(cmd, "-m") == ["1536M"]
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=m0,size=1G,share=on",
                                          "memory-backend-ram,id=m1,size=256M,share=on",
                                          "memory-backend-ram,id=m2,size=256M,share=on"]
    numa = opt_values(cmd, "-numa")
    assert numa[:3] == ["node,nodeid=0,cpus=0-1,cpus=4-5,memdev=m0",
                        "node,nodeid=1,cpus=2-3,memdev=m1",
                        "node,nodeid=2,memdev=m2"]
    assert len([v for v in numa if v.startswith("dist,")]) == 6


def test_numa_node_overrides_numa_and_mem_defaults_to_sum(fake_kernel, capsys):
    # The Makefile always passes --numa; --numa-node in RUNFLAGS wins.
    cmd = dry(fake_kernel, "--accel", "tcg", "--numa", "2", "--smp", "4",
              "--numa-node", "cpus=0,mem=256M", "--numa-node", "cpus=1-3,mem=768M", capsys=capsys)
    assert opt_values(cmd, "-m") == ["1G"]
    assert [v for v in opt_values(cmd, "-numa") if v.startswith("node")] == [
        "node,nodeid=0,cpus=0,memdev=m0", "node,nodeid=1,cpus=1-3,memdev=m1"]


def test_numa_node_without_mem_shares_the_rest(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "3", "--mem", "1G",
              "--numa-node", "cpus=0,mem=512M", "--numa-node", "cpus=1", "--numa-node", "cpus=2",
              capsys=capsys)
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=m0,size=512M,share=on",
                                          "memory-backend-ram,id=m1,size=256M,share=on",
                                          "memory-backend-ram,id=m2,size=256M,share=on"]


def test_default_distances(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "3", "--numa", "3", "--mem", "768M",
              capsys=capsys)
    dist = [v for v in opt_values(cmd, "-numa") if v.startswith("dist,")]
    assert dist == [f"dist,src={i},dst={j},val=20" for i in range(3) for j in range(3) if i != j]


def test_custom_distance_pairs(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--smp", "4", "--numa", "4",
              "--numa-dist", "0-1=15,0-2=30,2-3=25", capsys=capsys)
    dist = {tuple(int(f.split("=")[1]) for f in v.split(",")[1:3]): int(v.rsplit("=", 1)[1])
            for v in opt_values(cmd, "-numa") if v.startswith("dist,")}
    assert dist[(0, 1)] == dist[(1, 0)] == 15
    assert dist[(0, 2)] == dist[(2, 0)] == 30
    assert dist[(2, 3)] == dist[(3, 2)] == 25
    assert dist[(1, 3)] == dist[(0, 3)] == dist[(1, 2)] == 20
    assert len(dist) == 12


def test_custom_distance_matrix(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--numa", "2", "--numa-dist", "10,21;31,10",
              capsys=capsys)
    assert [v for v in opt_values(cmd, "-numa") if v.startswith("dist,")] == [
        "dist,src=0,dst=1,val=21", "dist,src=1,dst=0,val=31"]


@pytest.mark.parametrize("args,smp", [
    (["--smp", "8", "--sockets", "2", "--cores", "2", "--threads", "2"],
     "8,sockets=2,cores=2,threads=2"),
    (["--smp", "8", "--sockets", "2"], "8,sockets=2,cores=4,threads=1"),
    (["--smp", "8", "--cores", "2"], "8,sockets=4,cores=2,threads=1"),
    (["--smp", "8", "--threads", "2"], "8,sockets=1,cores=4,threads=2"),
    (["--smp", "16", "--sockets", "2", "--threads", "2"], "16,sockets=2,cores=4,threads=2"),
])
def test_topology(fake_kernel, capsys, args, smp):
    cmd = dry(fake_kernel, "--accel", "tcg", *args, capsys=capsys)
    assert opt_values(cmd, "-smp") == [smp]


def test_pc_machine(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--machine", "pc", "--mem", "512M", capsys=capsys)
    assert opt_values(cmd, "-machine") == ["pc,accel=tcg,memory-backend=ram"]
    assert opt_values(cmd, "-m") == ["512M"]


def test_host_pages(fake_kernel, capsys):
    """small (the default): the guest's RAM is shared memory, which the host
    backs with 4 KiB pages; huge: QEMU's own private RAM (transparent huge
    pages), with or without NUMA nodes."""
    cmd = dry(fake_kernel, "--host-pages", "huge", capsys=capsys)
    assert opt_values(cmd, "-machine") == ["q35,accel=tcg"] and "-object" not in cmd
    cmd = dry(fake_kernel, "--host-pages", "huge", "--numa", "2", capsys=capsys)
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=m0,size=512M",
                                          "memory-backend-ram,id=m1,size=512M"]
    cmd = dry(fake_kernel, "--mem", "2G", capsys=capsys)
    assert opt_values(cmd, "-object") == ["memory-backend-ram,id=ram,size=2G,share=on"]
    with pytest.raises(atoll_run.ConfigError, match="host-pages"):
        atoll_run.Machine(host_pages="giant").validate()


def test_gdb(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", "--gdb", capsys=capsys)
    assert cmd[-3:] == ["-gdb", "tcp::1234", "-S"]
    cmd = dry(fake_kernel, "--accel", "tcg", "--gdb", "4321", capsys=capsys)
    assert cmd[-3:] == ["-gdb", "tcp::4321", "-S"]


def test_cmdline_and_poweroff_reach_the_machine(fake_kernel):
    m, opts = parse_args(["--kernel", fake_kernel, "--cmdline", "a b=c", "--poweroff",
                          "--module", "/x/init=-v 1", "--module", "/y/hello"])
    assert m.cmdline == "a b=c poweroff"
    assert opts.poweroff
    assert m.modules == [Module("/x/init", "-v 1"), Module("/y/hello", "")]
    m, _ = parse_args(["--poweroff"])
    assert m.cmdline == "poweroff"


def test_dry_run_iso_depends_on_cmdline(fake_kernel, capsys):
    a = opt_values(dry(fake_kernel, "--accel", "tcg", capsys=capsys), "-cdrom")
    b = opt_values(dry(fake_kernel, "--accel", "tcg", "--poweroff", capsys=capsys), "-cdrom")
    assert a != b


def test_prebuilt_iso(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--accel", "tcg", capsys=capsys)   # kernel is ignored...
    rc = atoll_run.main(["--dry-run", "--accel", "tcg", "--iso", "/some/where.iso"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert opt_values(shlex.split(out), "-cdrom") == ["/some/where.iso"]
    assert len(shlex.split(out)) == len(cmd)


def test_machine_api():
    """Tests may build a Machine directly; numa may be a node count."""
    m = Machine(smp=8, numa=4, mem=2 << 30, accel="tcg").validate()
    assert [n.cpus for n in m.numa] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [n.mem for n in m.numa] == [512 << 20] * 4
    assert m.dist == [[10 if i == j else 20 for j in range(4)] for i in range(4)]
    cmd = qemu_command(m, "x.iso")
    assert cmd[cmd.index("-cdrom") + 1] == "x.iso"


# -- invalid options ---------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--smp", "0"], "--smp must be at least 1"),
    (["--smp", "-3"], "--smp must be at least 1"),
    (["--smp", "2", "--numa", "3"], "more nodes than CPUs"),
    (["--numa", "3", "--mem", "1G"], "does not split into 3 NUMA nodes"),
    (["--mem", "1001M"], "not a multiple of 2M"),
    (["--mem", "1X"], "bad size '1X'"),
    (["--mem", "G"], "bad size 'G'"),
    (["--numa-node", "cpus=0-1,mem=1X", "--numa-node", "cpus=2-3,mem=512M"], "bad size '1X'"),
    (["--smp", "4", "--numa-node", "cpus=0-2,mem=512M", "--numa-node", "cpus=2-3,mem=512M"],
     "CPU 2 is in NUMA node 0 and node 1"),
    (["--smp", "4", "--numa-node", "cpus=0,mem=512M", "--numa-node", "cpus=2-3,mem=512M"],
     "CPUs 1 are in no NUMA node"),
    (["--smp", "4", "--numa-node", "cpus=0-1,mem=512M", "--numa-node", "cpus=2-4,mem=512M"],
     "CPU 4 does not exist"),
    (["--smp", "4", "--mem", "2G", "--numa-node", "cpus=0-1,mem=512M",
      "--numa-node", "cpus=2-3,mem=512M"], "adds up to 1G, but --mem is 2G"),
    (["--smp", "2", "--numa-node", "cpus=0-1,mem=3M"], "not a multiple of 2M"),
    (["--numa-node", "cpus=0-3,size=1G"], "unknown field 'size'"),
    (["--numa-node", "cpus=0-3,mem=1G", "--numa-dist", "0-1=20"], "at least two NUMA nodes"),
    (["--numa", "2", "--numa-dist", "0-1=5"], "remote distances must be 11..255"),
    (["--numa", "2", "--numa-dist", "0-1=256"], "remote distances must be 11..255"),
    (["--numa", "2", "--numa-dist", "0-0=10"], "distance to itself"),
    (["--numa", "2", "--numa-dist", "0-2=30"], "only nodes 0-1"),
    (["--numa", "2", "--numa-dist", "11,20;20,10"], "distance 0-0 must be 10"),
    (["--numa", "2", "--numa-dist", "10,20,30;20,10,30"], "need 2x2"),
    (["--numa", "2", "--numa-dist", "far"], "bad --numa-dist"),
    (["--machine", "isapc"], "unknown machine 'isapc'"),
    (["--accel", "hvf"], "unknown accelerator 'hvf'"),
    (["--accel", "tcg", "--x2apic", "on"], "--x2apic on needs KVM"),
    (["--x2apic", "maybe"], "--x2apic must be on, off or auto"),
    (["--accel", "tcg", "--smp", "256"], "more than 255 CPUs need x2APIC"),
    (["--machine", "pc", "--smp", "256"], "supports at most 255 CPUs"),
    (["--smp", "300"], "supports at most 288 CPUs"),
    (["--smp", "8", "--sockets", "3"], "not a multiple of sockets*threads"),
    (["--smp", "8", "--sockets", "2", "--cores", "2", "--threads", "1"],
     "sockets*cores*threads = 2*2*1 = 4, but --smp is 8"),
    (["--smp", "8", "--cores", "0"], "--cores must be at least 1"),
    (["--iso", "x.iso", "--cmdline", "a"], "drop --cmdline"),
    (["--iso", "x.iso", "--poweroff"], "drop --poweroff"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["--gdb", "70000"], "not a TCP port"),
    (["--smp", "four"], "invalid int value"),
    (["--no-such-option"], "unrecognized arguments"),
    (["--program", "nosuch"], "no build/user/nosuch.elf"),
    (["--program", "../echo"], "no build/user/../echo.elf"),
    (["--program", "echo2", "--module", "x.elf"], "--program goes with the built user programs"),
])
def test_invalid_options(capsys, args, message):
    err = run_error(capsys, "--dry-run", *args)
    assert message in err


def test_parse_args_raises_config_error():
    with pytest.raises(ConfigError, match="more nodes than CPUs"):
        parse_args(["--smp", "2", "--numa", "4"])


def test_shell_commands_are_kept():
    _, opts = parse_args(["--smp", "2", "--", "ls", "-l"])
    assert opts.shell_commands == ["ls", "-l"]


def test_missing_kernel_is_exit_2(tmp_path, capsys):
    err = run_error(capsys, "--kernel", str(tmp_path / "nope.elf"), "--accel", "tcg")
    assert "not found" in err


def test_cli_exit_status_and_message(tmp_path):
    """The real executable: exit 2, message on stderr, nothing on stdout."""
    p = subprocess.run([os.path.join(TOOLS, "run"), "--dry-run", "--smp", "2", "--numa", "3"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stdout == ""
    assert "run: error: --numa 3 is more nodes than CPUs (--smp 2)" in p.stderr


def test_cli_help():
    p = subprocess.run([os.path.join(TOOLS, "run"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for opt in ("--smp", "--numa", "--numa-node", "--numa-dist", "--mem", "--machine", "--accel",
                "--x2apic", "--cmdline", "--poweroff", "--kernel", "--module", "--iso",
                "--timeout", "--log", "--gdb", "--dry-run", "--quiet", "--print-cmd"):
        assert opt in p.stdout


def test_makefile_options_exist():
    """make run passes these; they must stay tools/run options."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        text = f.read()
    line = text[text.index("$(PYTHON) tools/run"):].split("\n\n")[0]
    for opt in ("--smp", "--numa", "--mem", "--accel", "--machine", "--cmdline"):
        assert opt in line
    parse_args(["--smp", "16", "--numa", "4", "--mem", "2G", "--accel", "auto",
                "--machine", "q35", "--cmdline", "x"])


# -- value parsers ---------------------------------------------------------------------
@pytest.mark.parametrize("text,n", [("512M", 512 << 20), ("2G", 2 << 30), ("1536m", 1536 << 20),
                                    ("4096K", 4 << 20), ("1T", 1 << 40), ("2GiB", 2 << 30),
                                    ("64", 64 << 20)])
def test_parse_size(text, n):
    assert atoll_run.parse_size(text) == n


@pytest.mark.parametrize("text", ["", "1.5G", "-1G", "12Q", "G", "1 G B"])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError, match="bad size"):
        atoll_run.parse_size(text)


def test_fmt_size():
    assert atoll_run.fmt_size(1 << 30) == "1G"
    assert atoll_run.fmt_size(1536 << 20) == "1536M"
    assert atoll_run.fmt_size(2 << 20) == "2M"


def test_cpu_lists():
    assert atoll_run.parse_cpus("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    assert atoll_run.cpu_ranges([5, 0, 1, 2, 7, 8]) == ["0-2", "5", "7-8"]
    with pytest.raises(ConfigError):
        atoll_run.parse_cpus("3-1")
    with pytest.raises(ConfigError):
        atoll_run.parse_cpus("0-2,2")
    assert atoll_run.parse_numa_node("cpus=0-1,4-5,mem=1G") == ([0, 1, 4, 5], 1 << 30)
    assert atoll_run.parse_numa_node("mem=256M") == ([], 256 << 20)


# -- exit statuses -------------------------------------------------------------------------
@pytest.mark.parametrize("rc,seen,status", [
    (1, True, 0),        # guest status 0
    (3, True, 1),
    (11, True, 5),
    (255, True, 127),
    (0, True, 3),        # triple fault / halt / power-off: no status
    (0, False, 3),
    (1, False, 2),       # QEMU's own error, before any console output
    (2, False, 2),
    (-9, True, 137),     # killed by SIGKILL
])
def test_exit_status_mapping(rc, seen, status):
    got, message = atoll_run.exit_status(rc, console_seen=seen)
    assert got == status
    if status == 3:
        assert "guest ended without reporting a status" in message
    if rc & 1 and rc > 0 and seen:
        assert message is None


# -- console events -------------------------------------------------------------------------
def test_parse_events():
    text = ("  Booting `Atoll'\r\n"
            "\r\n"
            '@atoll {"event":"boot","cmdline":"poweroff"}\r\n'
            "core 0 up\n"
            '@atoll {"event":"core_up","core":0}\n'
            '  @atoll {"event":"indented"}\n'
            '@atoll {"event":"core_up","core":1\n'           # cut short
            '@atoll ["not", "an", "object"]\n'
            'core 2 up@atoll {"event":"core_up","core":2}\n'  # interleaved with other output
            '@atoll {"a":1} trailing\n'
            "@atoll\n"
            '@atoll {"event":"exit","status":0}')
    events, malformed = atoll_run.parse_events(text)
    assert events == [{"event": "boot", "cmdline": "poweroff"}, {"event": "core_up", "core": 0},
                      {"event": "indented"}, {"event": "exit", "status": 0}]
    assert malformed == ['@atoll {"event":"core_up","core":1',
                         '@atoll ["not", "an", "object"]',
                         'core 2 up@atoll {"event":"core_up","core":2}',
                         '@atoll {"a":1} trailing']


def test_parse_events_empty():
    assert atoll_run.parse_events("") == ([], [])
    assert atoll_run.parse_events("no events here\n") == ([], [])


# -- ISO images -------------------------------------------------------------------------------
def test_grub_cfg_text():
    cfg = atoll_image.grub_cfg("poweroff numa=on x=$y 'q' a;b", [
        Module("/build/usr/init", "-v 2"), Module("/build/usr/hello")])
    lines = [l.strip() for l in cfg.splitlines()]
    assert "set timeout=0" in lines
    assert "serial --unit=0 --speed=115200" in lines
    assert "terminal_input serial; terminal_output serial" in lines
    assert lines.count("boot") == 1
    assert sum(1 for l in lines if l.startswith("menuentry ")) == 1
    assert "multiboot2 /boot/atoll.elf poweroff numa=on 'x=$y' ''\\''q'\\''' 'a;b'" in lines
    assert "module2 /boot/init init -v 2" in lines
    assert "module2 /boot/hello hello" in lines
    assert lines.index("module2 /boot/init init -v 2") < lines.index("module2 /boot/hello hello")


def test_grub_cfg_without_cmdline():
    cfg = atoll_image.grub_cfg("", [])
    assert "  multiboot2 /boot/atoll.elf\n" in cfg
    assert "module2" not in cfg


@pytest.mark.parametrize("word,quoted", [
    ("plain", "plain"), ("a=b,c:d/e.f", "a=b,c:d/e.f"), ("", "''"), ("$x", "'$x'"),
    ("a b", "'a b'"), ("it's", "'it'\\''s'"), ("{x}", "'{x}'"), ("#c", "'#c'"), ("\\", "'\\'"),
])
def test_grub_quote(word, quoted):
    assert atoll_image.grub_quote(word) == quoted


def test_module_specs():
    assert Module.parse("build/usr/init") == Module("build/usr/init", "")
    assert Module.parse("build/usr/init=-v a=b") == Module("build/usr/init", "-v a=b")
    assert Module.parse("a/b=").args == ""
    with pytest.raises(atoll_image.ImageError, match="would both be /boot/init"):
        atoll_image.grub_cfg("", [Module("/a/init"), Module("/b/init")])
    with pytest.raises(atoll_image.ImageError, match="reserved"):
        atoll_image.grub_cfg("", [Module("/a/atoll.elf")])
    # The same file twice (two instances with different arguments) is fine.
    cfg = atoll_image.grub_cfg("", [Module("/a/init", "1"), Module("/a/init", "2")])
    assert "module2 /boot/init init 1" in cfg and "module2 /boot/init init 2" in cfg


def test_control_characters_rejected():
    with pytest.raises(atoll_image.ImageError, match="control character"):
        atoll_image.grub_cfg("a\x1bb")
    with pytest.raises(ConfigError, match="control character"):
        parse_args(["--cmdline", "a\x07"])


@needs_grub
def test_iso_contents(tmp_path, fake_kernel):
    mod = tmp_path / "hello"
    mod.write_bytes(b"module bytes")
    iso = str(tmp_path / "out.iso")
    p = subprocess.run([os.path.join(TOOLS, "mkimage"), "--kernel", fake_kernel,
                        "--module", f"{mod}=one two", "--cmdline", "poweroff x=1", "-o", iso],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    size = os.path.getsize(iso)
    assert size < 700 * 1024, f"ISO is {size} bytes"
    cfg = atoll_image.read_iso_file(iso, "/boot/grub/grub.cfg").decode()
    assert cfg == atoll_image.grub_cfg("poweroff x=1", [Module(str(mod), "one two")])
    assert "  multiboot2 /boot/atoll.elf poweroff x=1\n" in cfg
    assert "  module2 /boot/hello hello one two\n" in cfg
    assert atoll_image.read_iso_file(iso, "/boot/hello") == b"module bytes"
    with open(fake_kernel, "rb") as f:
        assert atoll_image.read_iso_file(iso, "/boot/atoll.elf") == f.read()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []   # no temp files left


def test_mkimage_errors(tmp_path, fake_kernel):
    p = subprocess.run([os.path.join(TOOLS, "mkimage"), "--kernel", str(tmp_path / "none"),
                        "-o", str(tmp_path / "x.iso")], capture_output=True, text=True)
    assert p.returncode == 1 and "not found" in p.stderr
    p = subprocess.run([os.path.join(TOOLS, "mkimage"), "--kernel", fake_kernel,
                        "--cmdline", "a b", "--print-cfg"], capture_output=True, text=True)
    assert p.returncode == 0 and "multiboot2 /boot/atoll.elf a b" in p.stdout


@needs_grub
def test_image_cache(tmp_path, fake_kernel):
    cache = str(tmp_path / "images")
    a = atoll_image.cached_iso(fake_kernel, [], "x=1", cache_dir=cache)
    mtime = os.stat(a).st_mtime_ns
    assert atoll_image.cached_iso(fake_kernel, [], "x=1", cache_dir=cache) == a
    assert os.stat(a).st_mtime_ns >= mtime
    b = atoll_image.cached_iso(fake_kernel, [], "x=2", cache_dir=cache)
    assert b != a
    assert os.path.dirname(a) == os.path.dirname(b) == cache
    # Module bytes count too, not only the path.
    mod = tmp_path / "m"
    mod.write_bytes(b"1")
    c = atoll_image.cached_iso(fake_kernel, [str(mod)], "x=1", cache_dir=cache)
    mod.write_bytes(b"2")
    d = atoll_image.cached_iso(fake_kernel, [str(mod)], "x=1", cache_dir=cache)
    assert len({a, c, d}) == 3
    assert atoll_image.cached_iso_path(fake_kernel, [str(mod)], "x=1", cache_dir=cache) == d
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(p) for p in (a, b, c, d))


@needs_grub
def test_image_cache_parallel(tmp_path, fake_kernel):
    cache = str(tmp_path / "images")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda i: atoll_image.cached_iso(fake_kernel, [], "same",
                                                               cache_dir=cache), range(4)))
    assert len(set(paths)) == 1
    assert os.listdir(cache) == [os.path.basename(paths[0])]
    assert b"set timeout=0" in atoll_image.read_iso_file(paths[0], "/boot/grub/grub.cfg")


# -- booting a stub kernel ---------------------------------------------------------------------------
# A multiboot2 kernel in 40 lines: prints its modules and command line as
# events, then, by command-line word: exit=N reports status N; hang spins;
# triple triple-faults; malformed prints a bad event line.
STUB_C = r"""
typedef unsigned int u32; typedef unsigned short u16; typedef unsigned char u8;
__attribute__((section(".mbhdr"), used, aligned(8)))
static const u32 mbhdr[6] = {0xE85250D6u, 0u, 24u, (u32)(0u - 0xE85250D6u - 24u), 0u, 8u};
__asm__(".pushsection .text\n.globl _start\n_start:\n mov $stack_top, %esp\n push %ebx\n"
        " push %eax\n call cmain\n1: hlt\n jmp 1b\n"
        ".section .bss\n.align 16\n.skip 4096\nstack_top:\n.popsection\n");
static void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(p)); }
static void outl(u16 p, u32 v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(p)); }
static void puts_(const char *s) { while (*s) outb(0x3f8, (u8)*s++); }
static void putj(const char *s) {
    for (; *s; s++) { if (*s == '"' || *s == '\\') outb(0x3f8, '\\'); outb(0x3f8, (u8)*s); }
}
static const char *find(const char *s, const char *w) {
    for (; *s; s++) { const char *a = s, *b = w; while (*b && *a == *b) { a++; b++; } if (!*b) return a; }
    return 0;
}
void cmain(u32 magic, u8 *info) {
    const char *cmd = "";
    if (magic != 0x36d76289u) outl(0xf4, 99);
    for (u8 *t = info + 8;;) {
        u32 type = ((u32 *)t)[0], size = ((u32 *)t)[1];
        if (type == 0) break;
        if (type == 1) cmd = (const char *)(t + 8);
        if (type == 3) { puts_("@atoll {\"event\":\"module\",\"args\":\""); putj((const char *)(t + 16)); puts_("\"}\r\n"); }
        t += (size + 7) & ~7u;
    }
    puts_("@atoll {\"event\":\"cmdline\",\"cmdline\":\""); putj(cmd); puts_("\"}\r\n");
    if (find(cmd, "malformed")) puts_("@atoll {not json\r\n");
    if (find(cmd, "hang")) for (;;) __asm__ volatile("hlt");
    if (find(cmd, "triple")) { static const u16 idt[3]; __asm__ volatile("lidt %0; int3" :: "m"(idt)); }
    u32 st = 0;
    const char *e = find(cmd, "exit=");
    if (e) while (*e >= '0' && *e <= '9') st = st * 10 + (u32)(*e++ - '0');
    puts_("stub: exiting\r\n");
    outl(0xf4, st);
    for (;;) __asm__ volatile("cli; hlt");
}
"""
STUB_LD = """ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { KEEP(*(.mbhdr)) *(.text*) *(.rodata*) *(.data*) *(.bss*) *(COMMON) }
  /DISCARD/ : { *(.eh_frame) *(.comment) *(.note*) }
}
"""


@pytest.fixture(scope="module")
def stub_kernel(tmp_path_factory):
    if not (HAVE_GRUB and HAVE_QEMU):
        pytest.skip("QEMU or GRUB not installed")
    d = tmp_path_factory.mktemp("stub")
    (d / "stub.c").write_text(STUB_C)
    (d / "stub.ld").write_text(STUB_LD)
    try:
        subprocess.run(["gcc", "-m32", "-ffreestanding", "-fno-pic", "-fno-pie", "-O2",
                        "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-nostdlib",
                        "-c", "stub.c", "-o", "stub.o"], cwd=d, check=True, capture_output=True)
        subprocess.run(["ld", "-m", "elf_i386", "-z", "max-page-size=0x1000", "-T", "stub.ld",
                        "-o", "stub.elf", "stub.o"], cwd=d, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot build the 32-bit stub kernel: {e}")
    return str(d / "stub.elf")


def stub_machine(kernel, cmdline, **kw):
    return Machine(smp=2, mem=128 << 20, accel="tcg", kernel=kernel, cmdline=cmdline, **kw)


def test_boot_status_events_and_modules(stub_kernel, tmp_path):
    mod = tmp_path / "init"
    mod.write_bytes(b"x")
    log = tmp_path / "console.log"
    m = stub_machine(stub_kernel, "exit=5 a=b", modules=[Module(str(mod), "-v 1")])
    r = atoll_run.boot(m, timeout=60, log=str(log), cache_dir=str(tmp_path / "img"))
    assert r.status == 5 and r.qemu_rc == 11 and not r.timed_out, r.console
    assert r.events == [{"event": "module", "args": "init -v 1"},
                        {"event": "cmdline", "cmdline": "exit=5 a=b"}]
    assert r.events_named("cmdline")[0]["cmdline"] == "exit=5 a=b"
    assert r.malformed == []
    assert "\r" not in r.console
    assert "stub: exiting\n" in r.console
    assert log.read_text() == r.console
    assert 0 < r.wall_s < 60


def test_boot_status_zero_and_numa(stub_kernel, tmp_path):
    m = Machine(smp=4, numa=2, mem=256 << 20, accel="tcg", kernel=stub_kernel,
                cmdline="malformed")
    r = atoll_run.boot(m, timeout=60, cache_dir=str(tmp_path))
    assert r.status == 0 and r.message is None, r.console
    assert r.malformed == ["@atoll {not json"]


def test_boot_triple_fault_is_3(stub_kernel, tmp_path):
    r = atoll_run.boot(stub_machine(stub_kernel, "triple"), timeout=60, cache_dir=str(tmp_path))
    assert r.status == 3 and r.qemu_rc == 0
    assert "guest ended without reporting a status" in r.message


def test_boot_timeout(stub_kernel, tmp_path):
    # 10 s: GRUB must reach the stub first, which takes seconds on a loaded machine.
    r = atoll_run.boot(stub_machine(stub_kernel, "hang"), timeout=10, cache_dir=str(tmp_path))
    assert r.timed_out and r.status == 124
    assert "timed out" in r.message
    assert r.events_named("cmdline")                  # the console up to the kill is kept
    assert r.wall_s < 30


def test_boot_not_a_kernel_is_3_quickly(fake_kernel, tmp_path):
    """GRUB refusing the kernel reports an event and powers off at once."""
    if not (HAVE_GRUB and HAVE_QEMU):
        pytest.skip("QEMU or GRUB not installed")
    r = atoll_run.boot(stub_machine(fake_kernel, ""), timeout=60, cache_dir=str(tmp_path))
    assert r.status == 3, r.console
    assert r.events_named("grub_error") == [
        {"event": "grub_error", "command": "multiboot2", "file": "/boot/atoll.elf"}]
    assert r.wall_s < 20


def test_qemu_failing_to_start_is_2(stub_kernel, tmp_path):
    iso = atoll_image.cached_iso(stub_kernel, [], "", cache_dir=str(tmp_path))
    cmd = qemu_command(stub_machine(stub_kernel, ""), iso) + ["-no-such-qemu-option"]
    r = atoll_run.run_qemu(cmd, timeout=30)
    assert r.status == 2 and r.console == ""
    assert "QEMU failed to start" in r.message and "-no-such-qemu-option" in r.message


def test_cli_streams_console(stub_kernel, tmp_path):
    log = tmp_path / "log.txt"
    p = subprocess.run([os.path.join(TOOLS, "run"), "--kernel", stub_kernel, "--accel", "tcg",
                        "--smp", "2", "--mem", "128M", "--cmdline", "exit=7", "--timeout", "60",
                        "--log", str(log), "--print-cmd"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 7, p.stderr
    assert '@atoll {"event":"cmdline","cmdline":"exit=7"}\n' in p.stdout
    assert log.read_text() == p.stdout
    assert "qemu-system-x86_64 -machine q35,accel=tcg" in p.stderr
    assert "guest reported status 7" in p.stderr
    q = subprocess.run([os.path.join(TOOLS, "run"), "--kernel", stub_kernel, "--accel", "tcg",
                        "--smp", "2", "--mem", "128M", "--cmdline", "hang", "--timeout", "2",
                        "--quiet"], capture_output=True, text=True, timeout=120)
    assert q.returncode == 124
    assert q.stdout == ""
    assert "timed out after 2 s" in q.stderr


# -- hostile or careless command lines: a clear message and status 2, never a traceback ----------
RUN = [sys.executable, os.path.join(TOOLS, "run")]


@pytest.mark.parametrize("args,says", [
    ([b"--cmdline", b"a\xff"], "not UTF-8"),
    ([b"--poweroff", b"--", b"ps \xfe"], "not UTF-8"),
    ([b"--poweroff", b"--", "ps \u00e9".encode()], "printable ASCII"),
    ([b"--log", b"/"], "is a directory"),
    ([b"--log", b"/no/such/folder/x.log"], "does not exist"),
    ([b"--numa-node", b"cpus=0-99999999999999,mem=1G"], "CPU numbers go up to"),
    ([b"--timeout", b"nan"], "positive number"),
    ([b"--timeout", b"inf"], "positive number"),
    ([b"--timeout", b"0"], "positive number"),
])
def test_bad_command_lines_are_refused_clearly(args, says, tmp_path, fake_kernel):
    p = subprocess.run(RUN + [b"--kernel", fake_kernel.encode()] + args, capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 2, err
    assert says in err and "Traceback" not in err, err


def test_iso_that_is_not_an_iso_fails_fast(tmp_path, fake_kernel):
    bogus = tmp_path / "x.iso"
    bogus.write_bytes(b"\0" * 70000)
    p = subprocess.run(RUN + ["--kernel", fake_kernel, "--iso", str(bogus)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2 and "not an ISO 9660 image" in p.stderr and "Traceback" not in p.stderr


# -- the cost model (docs/costmodel.md) --------------------------------------------------------
def test_cost_model_command(fake_kernel, capsys, tmp_path):
    plain = dry(fake_kernel, "--smp", "4", "--accel", "tcg", capsys=capsys)
    assert "-plugin" not in plain and "-accel" not in plain
    out = str(tmp_path / "c,x.jsonl")
    cmd = dry(fake_kernel, "--smp", "6", "--numa-node", "cpus=0-1,4,mem=512M", "--numa-node",
              "cpus=2-3,mem=256M", "--numa-node", "cpus=5,mem=256M", "--numa-dist",
              "0-1=30,0-2=40", "--cost-model", "--cost-out", out, "--cost-hot", "3",
              capsys=capsys)
    assert opt_values(cmd, "-machine") == ["q35"]
    assert opt_values(cmd, "-accel") == ["tcg,thread=single"]
    plugin, = opt_values(cmd, "-plugin")
    assert plugin.startswith("file=" + os.path.join(ROOT, "build", "host", "tools", "costmodel",
                                                    "costmodel.so") + ",")
    # A comma in a value is doubled, as QEMU's option syntax wants.
    assert plugin.split(",", 1)[1] == (f"out={out.replace(',', ',,')},node=0-1+4,node=2-3,"
                                       "node=5,dist=10:30:40:30:10:20:40:20:10,hot=3")


def test_cost_model_defaults_to_tcg(fake_kernel, capsys):
    cmd = dry(fake_kernel, "--smp", "2", "--accel", "auto", "--cost-model", capsys=capsys)
    assert opt_values(cmd, "-accel") == ["tcg,thread=single"]
    assert "out=" + os.path.join(ROOT, "build", "costmodel", "run.jsonl") in opt_values(cmd, "-plugin")[0]


@pytest.mark.parametrize("args, message", [
    (["--cost-model", "--accel", "kvm"], "cannot run with --accel kvm"),
    (["--cost-out", "x.jsonl"], "--cost-out and --cost-hot need --cost-model"),
    (["--cost-hot", "2"], "need --cost-model"),
    (["--cost-model", "--cost-hot", "5000"], "--cost-hot must be 0..1000"),
])
def test_cost_model_errors(capsys, args, message):
    assert message in run_error(capsys, "--dry-run", *args)


def test_program_adds_a_built_program_to_the_default_image():
    """--program echo2 boots build/user/echo2.elf besides the default image's
    programs and the manifest (docs/runner.md); without it echo2 is not there."""
    if not os.path.isfile(os.path.join(ROOT, "build", "user", "echo2.elf")):
        pytest.fail("build/user/echo2.elf is missing: run make first", pytrace=False)
    m, _ = parse_args(["--program", "echo2"])
    names = [os.path.basename(x.path) for x in m.modules]
    assert "echo2.elf" in names and "echo.elf" in names and "monitor.elf" in names, names
    m, _ = parse_args([])
    assert "echo2.elf" not in [os.path.basename(x.path) for x in m.modules]
