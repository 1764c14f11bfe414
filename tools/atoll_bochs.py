"""Boot Atoll in Bochs, the second emulator (docs/runner.md, "Bochs").

tools/run --emulator bochs boots the same ISO as under QEMU in Debian's Bochs
2.7: an i440FX PC with its own BIOS (bochsbios, vgabios), SMP, and a CPU
model with x2APIC, SMEP and SMAP (corei7_skylake_x unless --bochs-cpu says
otherwise). This module only describes Bochs: what a Machine may ask of it
(problems()), its configuration file (config()) and its command line
(command()); tools/atoll_run.py runs it like QEMU.

How it differs from QEMU, and why:
  - the serial console goes over a TCP connection to the runner (Bochs's
    `socket-client` mode): Bochs's own stdout carries its debugger's prompt
    (Debian builds Bochs with its debugger, which stops before the first
    instruction; a command file with `c` starts the machine);
  - Bochs has no isa-debug-exit device, so the runner ends Bochs itself when
    the kernel prints its `exit` event and takes the guest's status from it;
  - guest time follows the instruction count (`clock: sync=none` with a
    fixed instructions-per-second figure and start time): two boots of the
    same image run the same way, and the TSC and APIC timer the kernel
    calibrates against the PIT are Bochs's, never the host's;
  - no NUMA (Bochs's BIOS writes no SRAT or SLIT) and no accelerator.

Bochs numbers the APIC ids of `count=P:C:T` one after another, while its
CPUID reserves a power of two of ids per core and per package; the two agree
only when threads per core (with several cores) and cores * threads (with
several packages) are powers of two, so other shapes are refused.

Standard library only.
"""
import os

BOCHS = "bochs"                              # Debian's wrapper: exec bochs-bin -q "$@"
BIOS = "/usr/share/bochs/BIOS-bochs-latest"  # bochsbios
VGABIOS = "/usr/share/vgabios/vgabios.bin"   # vgabios
DEFAULT_CPU = "corei7_skylake_x"             # x2APIC, SMEP, SMAP, PCID, NX, 1 GiB pages
MAX_CPUS = 254                               # Bochs 2.7's BX_MAX_SMP_THREADS_SUPPORTED
MAX_MEM_MIB = 2048                           # Bochs 2.7's memory: host= range
# Guest instructions per guest second. Guest time is counted, not measured:
# a lower figure makes the serial port (115200 baud of guest time) cheaper in
# instructions and timer ticks dearer. 20 M keeps a boot's console output
# from dominating and a 100 Hz tick at 200 000 instructions.
IPS = 20_000_000
# The CPU models of Bochs 2.7 (bochs --help cpu); x2APIC in all but the oldest.
CPU_MODELS = ("bx_generic", "pentium", "pentium_mmx", "amd_k6_2_chomper", "p2_klamath", "p3_katmai",
              "p4_willamette", "core_duo_t2400_yonah", "atom_n270", "p4_prescott_celeron_336",
              "athlon64_clawhammer", "athlon64_venice", "turion64_tyler", "phenom_8650_toliman",
              "core2_penryn_t9600", "corei5_lynnfield_750", "corei5_arrandale_m520",
              "corei7_sandy_bridge_2600k", "zambezi", "trinity_apu", "ryzen", "corei7_ivy_bridge_3770k",
              "corei7_haswell_4770", "broadwell_ult", "corei7_skylake_x", "corei3_cnl",
              "corei7_icelake_u", "tigerlake")
# The debugger's command file: continue (and quit if the machine ever stops).
DEBUGGER_COMMANDS = "c\nquit\n"


def _pow2(n):
    return n > 0 and n & (n - 1) == 0


def shape(machine):
    """(packages, cores per package, threads per core) for `cpu: count=`. With
    no topology given, like QEMU: one package of smp cores."""
    if machine.sockets is None:
        return 1, machine.smp, 1
    return machine.sockets, machine.cores, machine.threads


def problems(machine, mib):
    """Why Bochs cannot boot this (validated) machine, or None. `mib` is its
    memory in MiB."""
    m = machine
    if m.machine != "pc":
        return (f"Bochs emulates an i440FX PC, not QEMU's {m.machine}: use --machine pc "
                "(the default with --emulator bochs)")
    if m.accel not in ("tcg", "auto"):
        return f"Bochs has no accelerator: --accel {m.accel} is for QEMU"
    if m.x2apic == "off":
        return ("Bochs's CPU model fixes its features: for an xAPIC boot pick a --bochs-cpu without "
                "x2APIC, or keep the kernel in xAPIC mode with --cmdline nox2apic")
    if m.cpu_flags:
        return "--cpu-flags is for QEMU; Bochs's CPU is chosen whole with --bochs-cpu"
    if m.bochs_cpu not in CPU_MODELS:
        return f"unknown Bochs CPU model {m.bochs_cpu!r}: use one of " + ", ".join(CPU_MODELS)
    if m.numa:
        return "Bochs's BIOS gives no SRAT: NUMA nodes (--numa, --numa-node, --topology) need QEMU"
    if m.smp > MAX_CPUS:
        return f"--smp {m.smp}: Bochs 2.7 emulates at most {MAX_CPUS} CPUs"
    if mib > MAX_MEM_MIB:
        return f"--mem: Bochs 2.7 emulates at most {MAX_MEM_MIB} MiB"
    p, c, t = shape(m)
    if (c > 1 or p > 1) and not _pow2(t):
        return (f"--threads {t}: Bochs numbers APIC ids in order but reserves a power of two per core; "
                "use 1, 2, 4, ... threads")
    if p > 1 and not _pow2(c * t):
        return (f"{c} cores x {t} threads per package: Bochs numbers APIC ids in order but reserves a "
                "power of two per package; make cores * threads a power of two, or use one package")
    return None


def config(machine, mib, iso, console_port, log_path):
    """The bochsrc text for `machine` booting `iso`, its serial console
    connecting to 127.0.0.1:console_port (None: written to Bochs's stdout),
    Bochs's own messages in log_path."""
    p, c, t = shape(machine)
    com1 = (f"mode=socket-client, dev=127.0.0.1:{console_port}" if console_port is not None
            else "mode=file, dev=/dev/stdout")
    return "\n".join([
        "# Atoll under Bochs, written by tools/run (tools/atoll_bochs.py)",
        f"memory: guest={mib}, host={mib}",
        f"romimage: file={BIOS}",
        f"vgaromimage: file={VGABIOS}",
        # The VNC display: it needs no screen, and with timeout=0 it waits for nobody.
        'display_library: rfb, options="timeout=0"',
        f"cpu: count={p}:{c}:{t}, ips={IPS}, model={machine.bochs_cpu}, reset_on_triple_fault=0",
        "pci: enabled=1, chipset=i440fx",
        f"ata0-master: type=cdrom, path={iso}, status=inserted",
        "boot: cdrom",
        f"com1: enabled=1, {com1}",
        "clock: sync=none, time0=1",
        "speaker: enabled=0",
        "sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy",
        f"log: {log_path}",
        "panic: action=fatal",
        "error: action=report",
        "info: action=ignore",
        "debug: action=ignore",
        "",
    ])


def command(rc_path, debugger_path):
    """The command line booting the configuration in rc_path."""
    return [BOCHS, "-q", "-f", rc_path, "-rc", debugger_path]


def last_panic(log_path, limit=3):
    """The last PANIC/ERROR lines of Bochs's log, to explain an early end."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            lines = [ln.rstrip() for ln in f if ">>PANIC<<" in ln or "e[" in ln[:20]]
    except OSError:
        return ""
    return "\n".join(lines[-limit:])


def exit_message(output):
    """Bochs's own last words on its stdout (a bad configuration is refused
    there, before its log is open), or ""."""
    text = output.replace("\r", "")
    mark = "Bochs is exiting with the following message:"
    if mark not in text:
        return ""
    said = []
    for ln in text.split(mark, 1)[1].strip().splitlines():
        if ln.startswith("="):
            break
        said.append(ln)
    return "\n".join(said).strip()


def installed():
    """Is Bochs with its BIOSes there (tools/install-deps)?"""
    import shutil
    return bool(shutil.which(BOCHS)) and os.path.isfile(BIOS) and os.path.isfile(VGABIOS)
