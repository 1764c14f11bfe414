# Atoll: the only entry point. `make run` and `make test` are the two commands.
#
#   make            build everything into build/
#   make run        boot the default machine (q35, 4 cores, 2 NUMA nodes)
#                   make run SMP=16 NUMA=4 MEM=2G ACCEL=kvm CMDLINE="..."
#                   RUNFLAGS="..." passes any other tools/run option
#   make test       build, then run the whole suite (host unit tests + QEMU boots)
#   make bench      benchmark sweep, Atoll beside Linux in the same QEMU machines
#                   (docs/bench.md): BENCH_SHAPES="2 4 8n2" ACCEL=tcg|kvm|both|auto
#                   BENCH_OUT=build/bench BENCH_FLAGS="--set pingpong.samples=20 ..."
#                   then the boot time beside its floor (tools/bench-boot):
#                   BOOT_CPUS="8 64 255" BOOT_RUNS=3; `make bench-boot` runs only that
#                   COST_MODEL=1: count cache-line transfers and IPIs per operation
#                   with the cost model plugin instead of timing (docs/costmodel.md)
#   make fuzz       coverage-guided fuzzing of every parser (docs/fuzzing.md), AFL++ for C:
#                   FUZZ_SECONDS=60 per target, FUZZ_TARGETS="elf acpi" for some
#   make models     the protocol models, checked by spin (docs/models.md; make test runs them too)
#   make clean      remove build/

PYTHON := /usr/bin/python3
BUILD := build
HAKEFILES := $(shell find . -name Hakefile.py -not -path './build/*' -not -path './.git/*')
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

SMP ?= 4
NUMA ?= 2
MEM ?= 1G
# TCG unless asked: under nested KVM on some hosts (QEMU 7.2, AMD) Atoll's
# user space stops at an "emulation failure" (docs/runner.md, Known problems).
ACCEL ?= tcg
MACHINE ?= q35
CMDLINE ?=
RUNFLAGS ?=
BENCH_SHAPES ?= 2 4 8 16 32 8n2 16n4
BENCH_SYSTEMS ?= linux,atoll
BENCH_OUT ?= $(BUILD)/bench
BENCH_FLAGS ?=
BOOT_CPUS ?= 8 64 255
BOOT_RUNS ?= 3
COST_MODEL ?=

FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all build run test bench fuzz models deps clean
all build: deps-check $(BUILD)/rules.mk
	@$(MAKE) --no-print-directory -j$(JOBS) -f $(BUILD)/rules.mk PYTHON=$(PYTHON) all

$(BUILD)/rules.mk: $(HAKEFILES) hake/hake.py hake/ksyms.py
	@mkdir -p $(BUILD)
	@$(PYTHON) hake/hake.py . $(BUILD)

# Install missing Debian packages (quietly does nothing when all are there).
.PHONY: deps-check
deps-check:
	@tools/install-deps

run: all
	@$(PYTHON) tools/run --smp $(SMP) --numa $(NUMA) --mem $(MEM) --accel $(ACCEL) \
	    --machine $(MACHINE) $(if $(CMDLINE),--cmdline "$(CMDLINE)") \
	    $(if $(COST_MODEL),--cost-model) $(RUNFLAGS)

# Tests run in parallel (pytest-xdist), one worker per host CPU. The test of
# tools/bench --slurm runs a one-node Slurm cluster: install-deps --cluster.
test: all
	@tools/install-deps --cluster
	@$(PYTHON) -m pytest -q -p no:cacheprovider -n $(JOBS) tests/ $(PYTEST_ARGS)

# The benchmark sweep also needs Debian's Linux kernel (install-deps --bench).
# A broken Atoll build does not stop the Linux half: Atoll's points then fail
# with the reason in the report.
bench: deps-check
	@$(MAKE) --no-print-directory all || echo "bench: building Atoll failed; its points will fail"
	@tools/install-deps --bench
	@$(PYTHON) tools/bench --shapes "$(BENCH_SHAPES)" --systems $(BENCH_SYSTEMS) \
	    --accel $(ACCEL) --out $(BENCH_OUT) $(if $(COST_MODEL),--cost-model) $(BENCH_FLAGS)
	@$(MAKE) --no-print-directory bench-boot

# Boot time to every core's monitor, beside the floor (QEMU, firmware, GRUB and
# a bare kernel that only starts every core): JSON lines, also in boot.jsonl.
.PHONY: bench-boot
bench-boot: all
	@$(PYTHON) tools/bench-boot --cpus "$(BOOT_CPUS)" --runs $(BOOT_RUNS) --accel $(ACCEL) \
	    --out $(BENCH_OUT)/boot.jsonl

# Each target FUZZ_SECONDS; the closing summary lists executions, coverage and
# crashes per target, and exits 1 if anything crashed or hung.
fuzz: all
	@$(PYTHON) tools/fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

models: deps-check
	@$(PYTHON) tools/check-models

clean:
	rm -rf $(BUILD)
