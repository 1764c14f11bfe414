"""Domains that span cores (issue 12, docs/spanning.md): a domain's threads
on other cores run on dispatchers of the domain there, on its page tables,
and end with it."""
import collections
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_userspace import PS_ROW, exits, run_shell  # noqa: E402


def spans(r):
    return r.events_named("domain_span")


def span_ends(r, home_core, home_domain):
    """How each span dispatcher of that home ended: its own exit (why), or
    "stopped" when its thread had been joined but its dispatcher was not
    gone yet as the home ended, taking its tables (span_stopped: a loaded
    CI host saw it). Either is an end; a fault or a kill is not."""
    ends = [(x["core"], x["why"]) for x in exits(r, f"span:{home_core}.{home_domain}")]
    return ends + [(x["core"], "stopped") for x in r.events_named("span_stopped")
                   if x["home_core"] == home_core and x["home_domain"] == home_domain]


def test_threads_on_every_core_of_four_and_join():
    """`threads span 2`: twice, a thread on each of the 4 cores (3 remote,
    one local) reads what the first thread wrote, asks the kernel which
    core it runs on, and is joined with its return value. Each remote one
    is a span dispatcher made by that core's CPU driver (domain_span, home
    core 1) that ends with exit status 0; nothing is left running."""
    r = run_shell(["run 1 threads span 2", "wait", "ps"], smp=4)
    ev = r.events_named("span_threads")
    assert len(ev) == 1, r.console[-3000:]
    e = ev[0]
    assert e["ok"] is True and e["core"] == 1 and e["ncores"] == 4, e
    assert e["ran_on"] == [0, 1, 2, 3], e
    assert e["joined"] == 8 and e["hits"] == 8, e
    home = [x for x in r.events_named("domain_spawn") if x["name"] == "threads"][0]
    made = spans(r)
    assert sorted(x["core"] for x in made) == [0, 0, 2, 2, 3, 3], made
    assert all(x["home_core"] == 1 and x["home_domain"] == home["domain"] for x in made), made
    ends = span_ends(r, 1, home["domain"])
    assert sorted(core for core, _ in ends) == [0, 0, 2, 2, 3, 3], ends
    assert all(how in ("exit status 0", "stopped") for _, how in ends), ends
    assert all(x["reclaimed"] for x in exits(r, f"span:1.{home['domain']}")), ends
    assert [x["why"] for x in exits(r, "threads")] == ["exit status 0"]
    rows = PS_ROW.findall(r.console.split("atoll> ps")[-1])
    assert rows and not [x for x in rows if x[2].startswith("span:")], rows


def test_home_domain_ends_under_a_running_span_dispatcher():
    """A thread spinning for ever on core 2 when its domain (home core 1)
    ends: the home's PML4 copy on core 2 is revoked before the domain's
    memory comes back, and the span dispatcher stops with it
    (span_stopped); core 2 runs only its monitor afterwards."""
    r = run_shell(["run 1 threads abandon 2", "wait", "sleep 20", "ps 2"], smp=4)
    ab = r.events_named("span_abandon")
    assert ab and ab[0]["err"] == "ERR_OK", r.console[-3000:]
    made = spans(r)
    assert [(x["core"], x["home_core"]) for x in made] == [(2, 1)], made
    stopped = r.events_named("span_stopped")
    assert [(x["core"], x["domain"], x["home_core"]) for x in stopped] == [(2, made[0]["domain"], 1)], \
        r.console[-3000:]
    rows = PS_ROW.findall(r.console.split("atoll> ps 2")[-1])
    assert [x[2] for x in rows] == ["monitor"], rows


def test_home_domain_ends_under_a_span_dispatcher_that_checks_its_tables():
    """The window of the test above, watched: the thread on core 2 asks the
    kernel about itself without pause (each answer checked against the page
    tables it runs on), and the moment that fails it reads a page its core
    never cached. The home's tables must stay whole until core 2's monitor
    has revoked its copy of the home's root: the dispatcher stops
    (span_stopped) and never faults. It failed before the fix: the home's
    end emptied its tables at once, and the thread faulted at the page."""
    r = run_shell(["run 1 threads abandon 2 probe", "wait", "sleep 20", "ps 1", "ps 2"], smp=4)
    ab = r.events_named("span_abandon")
    assert ab and ab[0]["err"] == "ERR_OK" and ab[0]["probe"] is True, r.console[-3000:]
    made = spans(r)
    assert [(x["core"], x["home_core"]) for x in made] == [(2, 1)], made
    name = f"span:1.{made[0]['home_domain']}"
    faults = [x for x in r.events_named("domain_fault") if x["name"] == name]
    assert faults == [], faults
    stopped = r.events_named("span_stopped")
    assert [(x["core"], x["domain"], x["home_core"]) for x in stopped] == [(2, made[0]["domain"], 1)], \
        r.console[-3000:]
    assert [x["why"] for x in exits(r, "threads")] == ["exit status 0"]
    # The home, only stopped at its end, is taken back by its monitor.
    for core in (1, 2):
        rows = PS_ROW.findall(r.console.split(f"atoll> ps {core}")[-1].split("atoll>")[0])
        assert [x[2] for x in rows] == ["monitor"], (core, rows)


def test_deleting_a_mapped_frame_shoots_it_down_before_reuse():
    """The home (core 1) deletes a Frame mapped in its tables, without
    span_unmap, while threads on the 3 other cores keep reading it, then
    makes a new Frame of the same RAM and writes there. The delete returns
    only when every core where the domain runs forgot the page: each reader
    faults at the page and none reads the new object's memory. Before, only
    core 1 flushed: the readers went on through their cores' cached
    translations and read the reused memory (survived=3)."""
    r = run_shell(["run 1 threads reuse", "wait"], smp=4)
    ev = r.events_named("span_reuse")
    assert len(ev) == 1, r.console[-3000:]
    e = ev[0]
    assert e["delete"] == "ERR_OK" and e["retype"] == "ERR_OK", e
    assert e["cores"] == 3 and e["ready"] == 3 and e["survived"] == 0 and e["ok"] is True, e
    spawned = [x for x in r.events_named("domain_spawn") if x["name"] == "threads"][0]
    faults = [x for x in r.events_named("domain_fault") if x["name"] == f"span:1.{spawned['domain']}"]
    assert sorted(x["core"] for x in faults) == [0, 2, 3], faults
    assert all(x["vector"] == 14 and x["addr"] == e["addr"] for x in faults), faults
    assert not r.events_named("span_flush_failed"), r.console[-3000:]


def check_shootdown(r, op, protocol, home, ncores):
    """The span_unmap event is ok and every other core's toucher faulted at
    the page (unmap) or at its own word of it (protect): none survived."""
    ev = r.events_named("span_unmap")
    assert len(ev) == 1, r.console[-3000:]
    e = ev[0]
    assert e["op"] == op and e["protocol"] == protocol and e["core"] == home, e
    assert e["ok"] is True and e["err"] == "ERR_OK" and e["survived"] == 0, e
    assert e["cores"] == ncores - 1 and e["ready"] == ncores - 1, e
    assert e["again"] == ("ERR_NOT_MAPPED" if op == "unmap" else "ERR_OK"), e
    spawned = [x for x in r.events_named("domain_spawn") if x["name"] == "threads"][0]
    name = f"span:{home}.{spawned['domain']}"
    faults = [x for x in r.events_named("domain_fault") if x["name"] == name]
    assert sorted(x["core"] for x in faults) == [c for c in range(ncores) if c != home], faults
    for x in faults:
        assert x["vector"] == 14, x
        assert e["addr"] <= x["addr"] < e["addr"] + 4096, (x, e)
        if op == "unmap":
            assert x["addr"] == e["addr"], x
        else:
            assert x["addr"] != e["addr"], x   # a write to its own word, after reading word 0


PROTOCOLS = ("unicast", "broadcast", "multicast", "numa-multicast", "ipi")


@pytest.mark.parametrize("op,protocol", [(op, p) for op in ("unmap", "protect") for p in PROTOCOLS])
def test_shootdown_on_four_cores(op, protocol):
    """After the unmap (write-protect) returns, the threads on the 3 other
    cores, which kept the page's translation warm, fault on their next
    touch (write); a second unmap is ERR_NOT_MAPPED. With the remote step
    left out, the touchers read (write) on and the test fails."""
    r = run_shell([f"run 1 threads {op} {protocol}", "wait"], smp=4)
    check_shootdown(r, op, protocol, 1, 4)


@pytest.mark.parametrize("op,protocol", [("unmap", p) for p in PROTOCOLS] + [("protect", "numa-multicast")])
def test_shootdown_asked_by_a_thread_on_another_core(op, protocol):
    """The unmap (write-protect) is called by the thread on core 3, not the
    home (core 1): the home runs it for that thread (thread_at_home), and
    the shootdown covers every other core, the caller's too. After the call
    returns, every thread on another core faults at the page, the caller
    included (its own touch)."""
    r = run_shell([f"run 1 threads {op} {protocol} 3", "wait"], smp=4)
    check_shootdown(r, op, protocol, 1, 4)
    assert r.events_named("span_unmap")[0]["by"] == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shootdown_on_eight_cores_two_nodes(protocol):
    """8 cores on two nodes (0-3, 4-7), home core 5. multicast sends one
    message per node, to a leader that forwards to the others of its node:
    the home monitor sends 2 tlb_calls, leaders forward 3 (node 0) and 2
    (node 1, the home's other cores). numa-multicast asks the other node's
    leader first (it forwards 3), then the home's node directly (3): 4
    messages, its tree by distance (nothing measured yet). unicast and
    broadcast send 7, ipi none."""
    r = run_shell([f"run 5 threads unmap {protocol}", "wait", "stats"], smp=8, numa=2)
    check_shootdown(r, "unmap", protocol, 5, 8)
    stats = {e["core"]: e["span"] for e in r.events_named("monitor_stats")}
    assert stats[5]["shootdowns"] == 1, stats[5]
    sent = {"unicast": 7, "broadcast": 7, "multicast": 2, "numa-multicast": 4, "ipi": 0}[protocol]
    assert stats[5]["tlb_msgs"] == sent, stats[5]
    forwarded = sorted(s["forwarded"] for c, s in stats.items() if c != 5 and s["forwarded"])
    assert forwarded == {"multicast": [2, 3], "numa-multicast": [3]}.get(protocol, []), stats
    assert stats[5]["tree_by_distance"] == (protocol == "numa-multicast") and stats[5]["tree_by_cost"] == 0


@pytest.mark.parametrize("protocol", ["multicast", "numa-multicast"])
def test_shootdown_on_sixteen_cores_two_nodes_in_subtrees(protocol):
    """16 cores on two nodes (0-7, 8-15), home core 1. multicast: one
    message per node, each leader (0, 8) forwarding to the rest of its
    node, 6 and 7. numa-multicast goes deeper where a core would ask more
    than MCAST_FANOUT (4): node 1's leader 8 asks 4 subtree leaders (9, 11,
    13, 15) instead of 7 cores, and the home asks its node in 4 subtrees
    (0, 3, 5, 7) after node 1: 5 messages; each subtree leader of two asks
    its other core. Every core still forgets before the unmap returns."""
    r = run_shell([f"run 1 threads unmap {protocol}", "wait", "stats"], smp=16, numa=2)
    check_shootdown(r, "unmap", protocol, 1, 16)
    stats = {e["core"]: e["span"] for e in r.events_named("monitor_stats")}
    assert stats[1]["tlb_msgs"] == {"multicast": 2, "numa-multicast": 5}[protocol], stats[1]
    forwarded = {c: s["forwarded"] for c, s in stats.items() if c != 1 and s["forwarded"]}
    want = {"multicast": {0: 6, 8: 7},
            "numa-multicast": {8: 4, 0: 1, 3: 1, 5: 1, 9: 1, 11: 1, 13: 1}}[protocol]
    assert forwarded == want, stats
    assert all(s["tlb_timeouts"] == 0 for s in stats.values()), stats


def test_numa_multicast_tree_follows_the_mesh_on_thirty_two_cores():
    """32 cores on two nodes of 16, each node two of the mesh's clusters of
    8 (0-7, 8-15, 16-23, 24-31; a cluster's cores are linked to each other,
    its leader to the other leaders). Home 1. Every tlb_call the tree's
    leaders send goes where a direct channel does (the home's own, from a
    core that leads no cluster, are relayed by its leader 0 as the mesh
    does): node 1's leader 16 reaches the other cluster of its
    node through that cluster's leader 24 (which asks 25-31 in 4 subtrees),
    and its own cluster in the 3 subtrees left (17, 20, 22); the home asks
    16, then cluster 8-15 through 8, then its own cluster in 3 subtrees
    (0, 4, 6): 5 messages. Subtrees of cores next to each other (9-12 led
    by 9, asked by 8's node leader 16, say) would cross clusters."""
    r = run_shell(["run 1 threads unmap numa-multicast", "wait", "stats"], smp=32, numa=2, timeout=600)
    check_shootdown(r, "unmap", "numa-multicast", 1, 32)
    stats = {e["core"]: e["span"] for e in r.events_named("monitor_stats")}
    assert stats[1]["tlb_msgs"] == 5, stats[1]
    forwarded = {c: s["forwarded"] for c, s in stats.items() if c != 1 and s["forwarded"]}
    assert forwarded == {16: 4, 24: 4, 25: 1, 27: 1, 29: 1, 17: 2, 20: 1, 22: 1,
                         8: 4, 9: 1, 11: 1, 13: 1, 0: 2, 4: 1, 6: 1}, forwarded
    assert all(s["tlb_timeouts"] == 0 for s in stats.values()), stats


def test_numa_multicast_tree_from_measured_costs():
    """`threads bench` on 8 cores over two nodes, numa-multicast only, 6
    unmaps and 6 protects: the first tree is ordered by distance; every
    answer is a measure of its channel (the leader's of its node), so every
    later one is ordered by the measured costs. Each still returns only
    after every core forgot (the benchmark counts none failed)."""
    r = run_shell(["run 5 threads bench 5 1 8 unmap,protect numa-multicast", "wait", "stats"], smp=8, numa=2)
    rows = r.events_named("unmap_bench")
    assert sorted(x["op"] for x in rows) == ["protect", "unmap"], r.console[-3000:]
    assert all(x["failed"] == 0 and x["cores"] == 8 for x in rows), rows
    home = {e["core"]: e["span"] for e in r.events_named("monitor_stats")}[5]
    assert home["tree_by_distance"] == 1, home
    assert home["tree_by_cost"] == home["shootdowns"] - 1 and home["shootdowns"] >= 12, home
    assert home["tlb_timeouts"] == 0, home


@pytest.mark.parametrize("smp,numa", [(4, 0), (8, 2)])
def test_threads_on_every_core_share_a_mutex_conditions_a_barrier_and_the_heap(smp, numa):
    """`threads xsync 100`: a thread on every core (the home's is the first
    thread) adds to a counter under one mutex 100 times each with a window
    between read and write: the total is exact and never two are inside
    at once. They meet at a barrier 2 x 25 times: every round has all
    threads arrived before any leaves, none past the next round, exactly
    one last. Producers and consumers on different cores move every item
    over condition variables (exact sum). Every thread mallocs up to
    384 KiB, which grows the heap: for threads on other cores the home
    does it (home_grew: the threads on cores 0 and 1, one of them the
    home's, hold their blocks until all have allocated, so the heap holds
    both at once), and every block keeps its contents. Then every thread
    prints 20 lines with printf at once: each comes out whole, once."""
    r = run_shell(["run 1 threads xsync 100", "wait"], smp=smp, numa=numa)
    ev = r.events_named("thread_xsync")
    assert len(ev) == 1, r.console[-3000:]
    e = ev[0]
    assert e["ncores"] == smp and e["ran_on"] == list(range(smp)), e
    assert e["counter"] == e["counter_want"] == 100 * smp and e["most_in_section"] == 1, e
    assert e["barrier_rounds"] == 25 and e["overlaps"] == 0 and e["bad_lasts"] == 0, e
    assert e["items"] == 200 * ((smp + 1) // 2) and e["sum"] == e["sum_want"], e
    assert e["mallocs"] == 5 * smp and e["malloc_bad"] == 0 and e["heap"] == "ok", e
    assert e["home_grew"] >= 1 and e["errors"] == 0 and e["ok"] is True, e
    # Every thread printed its lines at once, one printf each: all whole,
    # none twice (one shared line buffer, unguarded, garbled and doubled
    # them at 8 cores).
    assert not r.malformed, r.malformed[:3]
    lines = collections.Counter((x["core"], x["i"]) for x in r.events_named("thread_line"))
    assert set(lines) == {(c, i) for c in range(smp) for i in range(20)}, sorted(lines)
    assert set(lines.values()) == {1}, [k for k, v in lines.items() if v > 1]
    assert r.events_named("domain_fault") == [], r.console[-3000:]
    ends = span_ends(r, 1, [x for x in r.events_named("domain_spawn") if x["name"] == "threads"][0]["domain"])
    assert sorted(core for core, _ in ends) == [c for c in range(smp) if c != 1], ends
    assert all(how in ("exit status 0", "stopped") for _, how in ends), ends


@pytest.mark.parametrize("smp,numa,laps", [(4, 0, 2), (8, 2, 3)])
def test_threads_on_other_cores_make_threads(smp, numa, laps):
    """`threads makers LAPS`: a chain of threads around every core, LAPS
    times; each thread on a core other than the home makes the next link
    on the next core (a span dispatcher there, or a thread on the home's
    run queue: the home starts either, thread_at_home) and, beside it, a
    thread on its own core that grows the heap, while other links are
    being made; each joins what it made. A maker allocates the new thread
    itself first (the home allocating could wait for the heap's lock held
    by a grower that waits to ask the home): no deadlock, every link ran
    on its core, every grower's blocks kept their contents, nothing is
    left."""
    r = run_shell([f"run 1 threads makers {laps}", "wait"], smp=smp, numa=numa)
    [e] = r.events_named("thread_makers")
    links = laps * smp
    assert e["error"] == "ERR_OK" and e["links"] == links and e["depth"] == links - 1, e
    assert e["ran"] == [laps] * smp, e
    assert e["grown"] == laps * (smp - 1), e   # one grower per link not at home
    # Every link and grower made on another core than the home was started
    # by the home (a link on the home core makes its next one itself).
    assert e["home_served"] >= links - laps + laps * (smp - 1), e
    assert e["threads_left"] == 1 and e["ok"] is True, e
    assert r.events_named("domain_fault") == [] and r.events_named("thread_fatal") == [], r.console[-3000:]
    home = [x for x in r.events_named("domain_spawn") if x["name"] == "threads"][0]["domain"]
    ends = span_ends(r, 1, home)   # a fresh clone's run saw 41 exits and 1 stop of 42
    assert len(ends) == (links - laps) + laps * (smp - 1), ends   # every span dispatcher ended
    assert all(how in ("exit status 0", "stopped") for _, how in ends), ends

