"""QEMU tests: an idle core stops its periodic timer and wakes for its next
timed wait (cpudriver/idle.c), and still counts the ticks it slept through;
`periodic` on the kernel command line keeps every core ticking. Each boot's
`cores` prints every core's `core_timer` event (docs/user-space.md, Idle)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
from atoll_run import Machine  # noqa: E402


def timers_around_a_sleep(cmdline):
    """Boot 4 cores, take `cores`, sleep 150 ticks (1.5 s), take `cores`
    again: each AP's (ticks, timer_irqs, idle_stops) deltas, and the
    periodic flags seen."""
    m = Machine(smp=4, accel="tcg", modules=atoll_run.user_modules(), cmdline=cmdline)
    r = atoll_run.boot(m, timeout=180, shell_commands=["cores", "sleep 150", "cores"])
    assert not r.timed_out and r.status == 0, r.console[-3000:]
    timers = r.events_named("core_timer")
    assert len(timers) == 8, timers
    before, after = {t["core"]: t for t in timers[:4]}, {t["core"]: t for t in timers[4:]}
    deltas = {c: tuple(after[c][k] - before[c][k] for k in ("ticks", "timer_irqs", "idle_stops")) for c in (1, 2, 3)}
    return deltas, {t["periodic"] for t in timers}


def test_an_idle_core_sleeps_through_its_ticks_and_counts_them():
    deltas, periodic = timers_around_a_sleep("")
    assert periodic == {False}
    for core, (ticks, irqs, stops) in deltas.items():
        # The clock goes on (150 ticks of the shell's sleep, at least: by the TSC
        # while the timer was stopped) ...
        assert ticks >= 140, (core, deltas)
        # ... but an idle AP (its monitor alone, waking for its 20 ms sleeps
        # and heartbeats) takes far fewer interrupts, most of them one-shots
        # (about half; a host that preempts its vCPU while awake adds some:
        # a core that never stops its tick takes one per tick).
        assert stops > 0 and irqs <= ticks * 0.85, (core, deltas)


def test_periodic_keeps_every_core_ticking():
    deltas, periodic = timers_around_a_sleep("periodic")
    assert periodic == {True}
    for core, (ticks, irqs, stops) in deltas.items():
        assert stops == 0 and irqs == ticks and ticks > 0, (core, deltas)
