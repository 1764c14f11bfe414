"""QEMU tests: capabilities across cores (issue #10, monitor/capops.c,
docs/capabilities.md "Across cores").

user/capxfer gives 64 KiB of RAM from a domain on core 0 (node 0) to one on
the last core (the last node), which retypes it there with the owner's
agreement; the giver's own carve of the same range is then refused; the
giver revokes, and the receiver's copy and Frames are gone before the revoke
returns, after which the giver carves the whole range again. A Frame given
and deleted by the receiver lets the giver delete its own. The receiver
tells the giver it has written by giving it a Frame of its own core
(capabilities cross both ways). What may not cross is refused. Every monitor's capability records are back to none
afterwards, and its slots where they were."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from test_userspace import run_shell  # noqa: E402


def stats(r):
    """Every monitor_stats event, in order, per core."""
    out = {}
    for e in r.events_named("monitor_stats"):
        out.setdefault(e["core"], []).append(e)
    return out


def one(r, name, **match):
    got = [e for e in r.events_named(name) if all(e.get(k) == v for k, v in match.items())]
    assert len(got) == 1, (name, match, got, r.console[-4000:])
    return got[0]


@pytest.mark.parametrize("smp,numa", [(4, 4), (16, 4), (64, 4)])
def test_ram_crosses_cores_and_comes_back(smp, numa):
    """The module's scenario on 4, 16 and 64 cores (the issue's sizes): the
    revoke from core 0 reaches core `last` alone (one revoke message,
    whatever the machine)."""
    last = smp - 1
    # The baseline after the boot's own connections have settled (a
    # connection holds up to three of a monitor's slots).
    r = run_shell(["sleep 500", f"stats {last}", "stats 0", f"run 0 capxfer {last}", "wait 120000", "sleep 300", "stats 0",
                   f"stats {last}"],
                  smp=smp, numa=numa, timeout=600, mem=(2 << 30) if smp >= 64 else 1 << 30)
    nodes = {e["core"]: e["node"] for e in r.events_named("core_up")}
    assert nodes[0] == 0 and nodes[last] == numa - 1

    took = one(r, "capxfer_take", step="retype")
    assert took["core"] == last and took["from_core"] == 0
    assert took["type"] == "RAM" and took["bytes"] == 64 << 10
    assert took["flags"] & 0x4 == 0   # the domain's copy is plain; its root (the monitor's) is FOREIGN
    assert took["alone"] == "ERR_CAP_REMOTE"       # not without the owner's agreement
    assert took["agreed"] == "ERR_OK" and took["written"] == 4
    assert took["gave_back"] == "ERR_OK"

    gave = one(r, "capxfer_give")
    assert gave["given"] == "ERR_OK"
    # The way back: a Frame the receiver's core owns, re-created here FOREIGN; deleting it releases it there.
    assert gave["back"] == "Frame" and gave["back_core"] == last and gave["back_deleted"] == "ERR_OK"
    assert gave["overlap"] == "ERR_OVERLAP"        # the owner reserved the range for the receiver
    assert gave["revoke_alone"] == "ERR_CAP_REMOTE"
    assert gave["revoked"] == "ERR_OK"
    assert gave["again"] == "ERR_OK"               # reusable: ours alone again
    assert one(r, "capxfer_take", step="revoked")["left"] == 0

    assert gave["frame_given"] == "ERR_OK"
    assert one(r, "capxfer_take", step="delete") == {"event": "capxfer_take", "step": "delete", "type": "Frame",
                                                      "error": "ERR_OK"}
    assert gave["frame_deleted"] == "ERR_OK"       # refused while the copy lived on core `last`

    assert gave["dispatcher"] == "ERR_CAP_NOT_TRANSFERABLE"
    assert gave["cnode"] == "ERR_CAP_NOT_TRANSFERABLE"
    assert gave["same_core"] == "ERR_INVALID_ARG"

    s = stats(r)
    for core in (0, last):
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        assert (after["slots_free"], after["conns"]) == (before["slots_free"], before["conns"]), (core, before, after)
    owner, holder = s[0][-1]["caps"], s[last][-1]["caps"]
    assert owner["given"] == 2 and owner["revokes"] == 1 and owner["revoke_msgs"] == 1
    assert owner["retypes_agreed"] >= 1 and owner["timeouts"] == 0 and owner["taken"] == 1
    assert holder["taken"] == 2 and holder["given"] == 1 and holder["released"] == 1


@pytest.mark.parametrize("how", ["exit", "fault"])
def test_a_giver_that_ends_takes_its_copies_with_it(how):
    """The giver on core 0 ends (or faults) while the receiver on core 3
    holds a copy of its RAM (and it holds a Frame of core 3's): the kernel
    keeps the anchor (adopted), the monitor revokes the copy on core 3
    before it takes the domain's RAM back, and the Frame it held is released
    to core 3. Both monitors end where they began."""
    r = run_shell(["sleep 500", "stats 0", "stats 3", f"run 0 capxfer orphan 3 {how}", "wait 120000", "sleep 500", "stats 0",
                   "stats 3"], smp=4, numa=4, timeout=600)
    assert one(r, "capxfer_orphan")["error"] == "ERR_OK"
    kept = one(r, "capxfer_keep")
    assert kept["type"] == "RAM" and kept["error"] == "ERR_OK" and kept["gone"] is True, kept
    if how == "fault":
        assert [e["name"] for e in r.events_named("domain_fault")] == ["capxfer"]
    s = stats(r)
    for core in (0, 3):
        before, after = s[core][0], s[core][-1]
        for k in ("slots_free", "ram_free", "heap_in_use"):
            assert before[k] == after[k], (core, k, before, after)
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0, after
    # One revoke, of the one holder: started by the kernel's notice of the
    # adopted anchor, or by the RAM's reclaim, whichever came first.
    assert s[0][-1]["caps"]["revokes"] == 1 and s[0][-1]["caps"]["revoke_msgs"] == 1
    # The Frame core 0 held came back (released, or revoked when its giver
    # on core 3 ended first): nothing of it is recorded anywhere.
    assert s[3][-1]["caps"]["given"] == 1 and s[0][-1]["caps"]["taken"] == 1


def test_each_copy_keeps_its_rights():
    """A Frame given twice to one domain on core 3, in full and then
    read-only, and another read-only and then in full: the holder's monitor
    keeps one root per object, and each copy its domain takes has the rights
    it was given with (review of issue 10, defect 3: the copies had the
    first grant's rights). A write mapping of a read-only copy is refused."""
    r = run_shell(["sleep 500", "stats 0", "stats 3", "run 0 capxfer rights 3", "wait 120000", "sleep 500",
                   "stats 0", "stats 3"], smp=4, numa=4, timeout=600)
    gave = one(r, "capxfer_rights_give")
    assert gave["given"] == ["ERR_OK"] * 4 and gave["deleted"] == ["ERR_OK"] * 2, gave
    took = one(r, "capxfer_rights_take")
    assert took["core"] == 3 and all(t["error"] == "ERR_OK" for t in took["took"]), took
    full, ro = 0xF, 0x1
    want = sorted([(gave["bases"][0], full), (gave["bases"][0], ro), (gave["bases"][1], ro),
                   (gave["bases"][1], full)])
    assert sorted((t["base"], t["rights"]) for t in took["took"]) == want, took
    for t in took["took"]:
        assert t["map_write"] == ("ERR_OK" if t["rights"] == full else "ERR_CAP_RIGHTS"), took
    s = stats(r)
    for core in (0, 3):
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        assert after["slots_free"] == before["slots_free"], (core, before, after)


def test_a_channel_frame_does_not_cross():
    """A copy of a channel's frame, whose original is the monitor's own
    (freed by it when the connection closes), given to another core: refused
    (review of issue 10, defect 5: the give anchored the object under the
    monitor's frame, whose later release failed and leaked). The monitor
    ends with no object recorded and its slots where they were."""
    r = run_shell(["sleep 500", "stats 0", "run 0 capxfer chanframe 3", "wait 60000", "sleep 500", "stats 0"],
                  smp=4, numa=4, timeout=600)
    got = one(r, "capxfer_chanframe")
    assert got == {"event": "capxfer_chanframe", "connect": "ERR_OK", "given": "ERR_NOT_PERMITTED"}, got
    s = stats(r)
    before, after = s[0][0], s[0][-1]
    assert after["caps"]["owned"] == 0 and after["caps"]["given"] == 0, after
    assert (after["slots_free"], after["conns"]) == (before["slots_free"], before["conns"]), (before, after)


def test_only_the_benchmark_asks_every_core():
    """CAPOPS_BROADCAST (the caps benchmark's baseline: a revoke sent to
    every monitor) from a domain that is not the benchmark's program:
    refused, and the plain revoke of the same RAM works (review of issue 10,
    item 7: any domain could make every monitor work for each revoke)."""
    r = run_shell(["run 1 xattack broadcast", "wait 30000"], smp=4, numa=4, timeout=300)
    got = [e for e in r.events_named("xattack") if e["attack"] == "broadcast"]
    assert len(got) == 1, r.console[-3000:]
    assert got[0]["ok"] is True and got[0]["broadcast"] == "ERR_NOT_PERMITTED" and got[0]["plain"] == "ERR_OK", got


def proto_limit(name):
    """A MON_* limit as lib/include/atoll/monitor_proto.h defines it (docs/limits.md)."""
    import re
    with open(os.path.join(ROOT, "lib", "include", "atoll", "monitor_proto.h")) as f:
        m = re.search(r"#define %s (\d+)" % name, f.read())
    assert m, name
    return int(m.group(1))


def test_a_domain_at_its_limit_alone_is_refused():
    """A domain on core 0 gives RAM to one on core 3 that keeps every copy:
    after MON_CAPS_OBJECTS_PER_DOMAIN objects its next give is refused at
    once with ERR_QUOTA (no grant sent), while another domain of core 0
    gives, is answered and revokes as usual; one of the first domain's
    objects revoked, it may give again. When the keeper ends, every record
    goes and both monitors' slots are back where they were."""
    limit = proto_limit("MON_CAPS_OBJECTS_PER_DOMAIN")
    r = run_shell(["sleep 500", "stats 0", "stats 3", "run 0 capxfer quota 3", "wait 120000", "sleep 500",
                   "stats 0", "stats 3"], smp=4, numa=4, timeout=600)
    q = one(r, "capxfer_quota")
    assert q["error"] == "ERR_OK" and q["given"] == limit and q["refused"] == "ERR_QUOTA", q
    assert q["answers"] == limit and q["answer_error"] == "ERR_OK", q
    other = one(r, "capxfer_quota_other")
    assert other == {"event": "capxfer_quota_other", "given": "ERR_OK", "answered": "ERR_OK", "revoked": "ERR_OK",
                     "deleted": "ERR_OK"}, other
    assert q["other"] == "ERR_OK" and q["other_done"] == "ERR_OK", q
    assert q["freed"] == "ERR_OK" and q["again"] == "ERR_OK" and q["ended"] == "ERR_OK" and q["left"] == 0, q
    assert one(r, "capxfer_hoard")["kept"] == limit + 2   # the hog's, the other's, the hog's again
    s = stats(r)
    assert s[0][-1]["caps"]["quota"] == 1 and s[3][-1]["caps"]["quota"] == 0, s[0][-1]
    for core in (0, 3):
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        assert after["slots_free"] == before["slots_free"], (core, before, after)


def test_the_object_lives_until_its_last_copy_goes():
    """A Frame carved from the giver's RAM on core 0, written, given to a
    domain on core 3; the giver's delete of its original alone is refused
    (ERR_CAP_REMOTE), through the monitor it works at once (issue 10, item
    2): the copy on core 3 lives on and reads what was written, and the
    Frame's range stays taken in the giver's RAM (a carve overlaps) until
    that copy is deleted there; then the object goes on core 0 and the range
    is free again. Both monitors end with no records and their slots back."""
    r = run_shell(["sleep 500", "stats 0", "stats 3", "run 0 capxfer handover 3", "wait 120000", "sleep 500",
                   "stats 0", "stats 3"], smp=4, numa=4, timeout=600)
    h = one(r, "capxfer_handover")
    assert h == {"event": "capxfer_handover", "error": "ERR_OK", "alone": "ERR_CAP_REMOTE", "deleted": "ERR_OK",
                 "gone": "ERR_OK", "held": "ERR_OVERLAP", "told": "ERR_OK", "freed": "ERR_OK"}, h
    t = one(r, "capxfer_handover_take")
    assert t == {"event": "capxfer_handover_take", "error": "ERR_OK", "went": "ERR_OK", "mapped": "ERR_OK",
                 "read": 4096, "deleted": "ERR_OK"}, t
    s = stats(r)
    assert s[0][-1]["caps"]["handed_over"] == 1 and s[0][-1]["caps"]["revokes"] == 0, s[0][-1]
    for core in (0, 3):
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        assert after["slots_free"] == before["slots_free"], (core, before, after)


def test_ten_thousand_gives_and_deletes_leave_nothing():
    """10,000 cycles: a page of RAM from a domain on core 0 given to a sink
    on core 3, which takes it and lets go; once the copy there is gone the
    giver's own delete works and the next page goes (8 in flight). Every
    cycle completes, and afterwards both monitors hold no record and have
    the slots, RAM and heap they started with. (A message that reached the
    monitor while it named its next receive slot used to be lost, and its
    sender hung: this found it.)"""
    n = 10000
    r = run_shell(["sleep 500", "stats 0", "stats 3", f"run 0 capxfer cycles {n} 3", "wait 120000", "sleep 500",
                   "stats 0", "stats 3"], smp=4, numa=4, timeout=600)
    c = one(r, "capxfer_cycles")
    assert c["error"] == "ERR_OK" and c["given"] == n and c["done"] == n and c["refused"] == 0, c
    s = stats(r)
    for core in (0, 3):
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        for k in ("slots_free", "ram_free", "heap_in_use"):
            assert before[k] == after[k], (core, k, before, after)
    assert s[0][-1]["caps"]["given"] - s[0][0]["caps"]["given"] == n + 1   # and the sink's end
    assert s[0][-1]["caps"]["released"] - s[0][0]["caps"]["released"] == n + 1
    assert s[3][-1]["caps"]["taken"] - s[3][0]["caps"]["taken"] == n + 1


def check_records(records):
    """The global invariant over every monitor's records (monclient caps),
    taken while nothing is in flight: a core holds an object of core O
    exactly when O records it among the object's holders (no dangling copy,
    no stray record), unless O marks a grant to it lost."""
    by_core = {rec["core"]: rec for rec in records}
    assert all(not rec["truncated"] for rec in records), records
    held = {(core, owner, obj) for core, rec in by_core.items() for owner, obj in rec["held"]}
    recorded = {}
    for owner, rec in by_core.items():
        for obj, holders, lost in rec["owned"]:
            assert holders, (owner, obj, "an object recorded with no holder")
            for h in holders:
                recorded[(h, owner, obj)] = lost
    for key in held:
        assert key in recorded, ("a copy its owner does not record", key, records)
    for key, lost in recorded.items():
        assert key in held or lost, ("a holder recorded that holds nothing", key, records)


@pytest.mark.parametrize("seed", [7, 11])
def test_random_operations_from_several_cores_keep_the_records_true(seed):
    """A domain on core 0 and one on each of cores 1-3 give, take, delete
    (plain, handed over, with every copy), revoke and retype (through the
    owner) at random, all at once, for 300 steps each; as holders they also
    revoke copies through their monitor (the copies on other cores go,
    the owner core's too, and ownership moves to the revoking core: an
    owner then finds its original's slot empty, ERR_CAP_EMPTY, and sweeps
    it) and give them on to another core. Handed-over RAM moves its ownership to a
    holder core (issue 10, item 5). ERR_CAP_LOCKED is allowed where it is
    the right answer (the object is being revoked, asked or moved by
    another core), ERR_NOT_PERMITTED for a give-on to the owner core
    itself, ERR_QUOTA for a give-on while the object's domain (which pays
    for it) has its share of grants waiting for their answers, ERR_CAP_EMPTY
    for a give or give-on of a copy a revoke took since the domain looked
    (a fresh clone's run saw one give-on so, each seed); no other
    error. Then, everyone paused, every monitor's records
    agree with each other (check_records); then everything is let go and
    every monitor ends with no record and its slots, RAM and heap where
    they began."""
    cores = range(4)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + [f"run 0 capxfer chaos 300 3 {seed}", "wait 120000",
                  "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600)
    paused = one(r, "capxfer_chaos_paused")
    assert paused["paused"] == 3 and paused["settled"] is True, paused
    records = [e["records"] for e in r.events_named("capxfer_chaos_records")]
    assert sorted(rec["core"] for rec in records) == list(cores), records
    check_records(records)
    done = r.events_named("capxfer_chaos_worker") + r.events_named("capxfer_chaos_coordinator")
    assert len(done) == 4, r.console[-3000:]
    total = {k: sum(e[k] for e in done) for k in ("gives", "takes", "deletes", "revokes", "handovers", "retypes",
                                                  "hrevokes", "giveons")}
    # every kind of operation happened (each domain goes on past its rounds until it has done every kind)
    assert all(v > 0 for v in total.values()), json.dumps(total) + " " + json.dumps(done)
    for k in ("give_err", "revoke_err", "hrevoke_err", "giveon_err"):
        bad = [(e["core"], e[k], e["last_err"]) for e in done if e[k]]
        assert not bad, (k, bad)
    s = stats(r)
    assert sum(s[c][-1]["caps"]["moved_out"] - s[c][0]["caps"]["moved_out"] for c in cores) > 0, s   # moves too
    assert sum(s[c][-1]["caps"]["asks_served"] - s[c][0]["caps"]["asks_served"] for c in cores) > 0, s
    # holders' revokes took owner cores' originals (their owners' next step finds the slot empty)
    assert sum(s[c][-1]["caps"]["owner_revoked"] - s[c][0]["caps"]["owner_revoked"] for c in cores) > 0, s
    for core in cores:
        before, after = s[core][0], s[core][-1]
        assert after["caps"]["owned"] == 0 and after["caps"]["held"] == 0 and after["caps"]["waiting"] == 0, after
        assert after["caps"]["timeouts"] == 0 and after["caps"]["forged"] == 0, after
        for k in ("slots_free", "ram_free", "heap_in_use"):
            assert before[k] == after[k], (core, k, before, after)


def test_the_validator_sees_a_dangling_copy():
    """check_records fails on records where a core holds what its owner
    does not record, or the owner records a holder that holds nothing."""
    ok = [{"core": 0, "owned": [[5, [1], False]], "held": [], "truncated": False},
          {"core": 1, "owned": [], "held": [[0, 5]], "truncated": False}]
    check_records(ok)
    with pytest.raises(AssertionError, match="does not record"):
        check_records([{"core": 0, "owned": [], "held": [], "truncated": False}, ok[1]])
    with pytest.raises(AssertionError, match="holds nothing"):
        check_records([ok[0], {"core": 1, "owned": [], "held": [], "truncated": False}])
    check_records([{"core": 0, "owned": [[5, [1], True]], "held": [], "truncated": False}, ok[1] | {"held": []}])


def holder():
    """user/capxfer/holder.c, not in the default image."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import atoll_run
    return [m for m in atoll_run.user_modules(extra=("capholder",)) if m.path.endswith("capholder.elf")]


def test_a_holders_revoke_reaches_its_siblings_on_other_cores():
    """RAM of a domain on core 0 given to a domain on core 2 and one on
    core 3 (which carves a Frame from it with the owner's agreement). The
    domain on core 2 revokes its copy through its monitor (issue 10, item
    3, from any core): its monitor asks the owner (cap_revoke_ask), which
    revokes the copies on every other holder core, core 3 alone, then its
    own core's (the giver's original), before it answers; then its monitor
    removes the revoked copy's sibling on core 2 itself (the domain was
    given two copies). Core 3's copy and its Frame are gone, core 2's
    second copy too, the giver's original too, the revoked copy stays and
    core 2 is its owner (it retypes it alone); the owner's records go from
    holders [2, 3] to [2] (a tombstone held by core 2). Core 2 then
    deletes its copy; every monitor ends with no record and its slots
    back."""
    cores = (0, 2, 3)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + ["run 0 capholder sibling 2 3", "wait 120000",
                  "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600, extra_modules=holder())
    g = one(r, "capxfer_sibling")
    assert (g["error"], g["asked"], g["done"], g["told"], g["clean"]) == ("ERR_OK",) * 5, g
    assert g["original"] == "Null", g   # a holder's revoke takes the owner core's copies too
    before = [o for o in g["before"]["owned"]]
    after = [o for o in g["after"]["owned"]]
    assert len(before) == 1 and before[0][1] == [2, 3] and before[0][2] is False, g["before"]
    assert after == [[before[0][0], [2], False]], g["after"]   # the same object, core 3 gone
    h = one(r, "capxfer_sibling_revoke")
    assert h == {"event": "capxfer_sibling_revoke", "core": 2, "took": "ERR_OK", "revoked": "ERR_OK",
                 "kept": "RAM", "sibling": "Null", "owner": "ERR_OK", "gone": "ERR_OK"}, h
    k = one(r, "capxfer_sibling_keep")
    k = {key: v for key, v in k.items() if key != "from"}
    assert k == {"event": "capxfer_sibling_keep", "core": 3, "took": "ERR_OK", "from_core": 0, "type": "RAM",
                 "carved": "ERR_OK", "told": "ERR_OK", "gone": "ERR_OK", "frame_gone": "ERR_OK"}, k
    s = stats(r)
    assert s[2][-1]["caps"]["asked"] - s[2][0]["caps"]["asked"] == 1, s[2][-1]
    assert s[0][-1]["caps"]["asks_served"] - s[0][0]["caps"]["asks_served"] == 1, s[0][-1]
    assert s[0][-1]["caps"]["owner_revoked"] - s[0][0]["caps"]["owner_revoked"] == 1, s[0][-1]
    assert s[0][-1]["caps"]["timeouts"] == 0, s[0][-1]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)


def test_a_holders_revoke_takes_the_owner_cores_copies_and_the_ownership():
    """RAM owned by a domain on core 0, with a second copy there and a Frame
    carved from that copy, given to a domain on core 2 and one on core 3
    (which carves a Frame with the owner's agreement). The domain on core
    2 revokes its copy through its monitor: every copy and descendant but
    the revoked copy goes, on every core (issue 10, item 3): core 0's
    original, its copy and its Frame (the owner hands the original over
    to its anchor, CAPOPS_HAND_OVER_ANCHOR, before it answers), core 3's
    copy and Frame. Core 2's copy stays and core 2 is the owner (ownership
    moved: its copy retypes alone; core 0 keeps a tombstone held by core 2
    alone; core 2's monitor holds it from core 0 and counts moved_in).
    When core 2 deletes it, every monitor has no record and its slots
    back."""
    cores = (0, 2, 3)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + ["run 0 capholder ownerrev 2 3", "wait 120000",
                  "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600, extra_modules=holder())
    g = one(r, "capxfer_ownerrev")
    assert (g["error"], g["asked"], g["done"], g["told"], g["clean"]) == ("ERR_OK",) * 5, g
    assert g["had"] == ["RAM", "RAM", "Frame"], g
    assert g["has"] == ["Null", "Null", "Null"], g   # core 0's original, copy and Frame went
    before = g["before"]["owned"]
    assert len(before) == 1 and before[0][1] == [2, 3], g["before"]
    rec0, rec2, rec3 = g["after"]
    assert rec0["owned"] == [[before[0][0], [2], False]], rec0   # a tombstone, held by core 2 alone
    assert [0, before[0][0]] in rec2["held"], rec2                 # core 2 holds it from core 0's tombstone
    assert rec3["held"] == [] and rec3["owned"] == [], rec3
    h = one(r, "capxfer_ownerrev_revoke")
    assert h == {"event": "capxfer_ownerrev_revoke", "core": 2, "took": "ERR_OK", "revoked": "ERR_OK",
                 "kept": "RAM", "owner": "ERR_OK", "gone": "ERR_OK"}, h
    k = one(r, "capxfer_ownerrev_keep")
    assert (k["core"], k["type"], k["carved"], k["gone"], k["frame_gone"]) == (3, "RAM", "ERR_OK", "ERR_OK",
                                                                               "ERR_OK"), k
    s = stats(r)
    d = {c: {key: s[c][-1]["caps"][key] - s[c][0]["caps"][key] for key in s[c][0]["caps"]} for c in cores}
    assert (d[0]["asks_served"], d[0]["owner_revoked"], d[0]["owner_kept"], d[0]["moved_out"]) == (1, 1, 0, 1), d[0]
    assert (d[2]["asked"], d[2]["moved_in"]) == (1, 1), d[2]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["caps"]["timeouts"] == 0 and a["caps"]["forged"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)


def test_a_lent_copys_revoke_leaves_the_owner_cores_copies():
    """The same, but core 2's copy was lent: given without CAP_RIGHT_GRANT
    (as the memory service gives its clients memory). Its revoke removes
    the other holder cores' copies (core 3's copy and Frame) and its own
    core's siblings, but not the owner core's: core 0's original, copy and
    Frame stay, and core 0 stays the owner (owner_kept, no move: a client
    cannot take a service's memory by revoking it). Core 0's own revoke
    then takes core 2's copy, and every monitor ends with no record."""
    cores = (0, 2, 3)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + ["run 0 capholder ownerrev 2 3 lent",
                  "wait 120000", "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600,
                  extra_modules=holder())
    g = one(r, "capxfer_ownerrev")
    assert g["lent"] is True and (g["error"], g["asked"], g["done"], g["told"], g["clean"]) == ("ERR_OK",) * 5, g
    assert g["had"] == g["has"] == ["RAM", "RAM", "Frame"], g   # core 0's stayed
    before = g["before"]["owned"]
    assert len(before) == 1 and before[0][1] == [2, 3], g["before"]
    rec0, rec2, rec3 = g["after"]
    assert rec0["owned"] == [[before[0][0], [2], False]], rec0   # core 3 gone, core 2 still a holder
    assert [0, before[0][0]] in rec2["held"] and rec2["owned"] == [], rec2
    assert rec3["held"] == [] and rec3["owned"] == [], rec3
    h = one(r, "capxfer_ownerrev_revoke")
    assert h == {"event": "capxfer_ownerrev_revoke", "core": 2, "took": "ERR_OK", "revoked": "ERR_OK",
                 "kept": "RAM", "owner": "ERR_OK", "gone": "ERR_OK"}, h   # gone: core 0's revoke took it
    k = one(r, "capxfer_ownerrev_keep")
    assert (k["core"], k["type"], k["carved"], k["gone"], k["frame_gone"]) == (3, "RAM", "ERR_OK", "ERR_OK",
                                                                               "ERR_OK"), k
    s = stats(r)
    d = {c: {key: s[c][-1]["caps"][key] - s[c][0]["caps"][key] for key in s[c][0]["caps"]} for c in cores}
    assert (d[0]["asks_served"], d[0]["owner_revoked"], d[0]["owner_kept"], d[0]["moved_out"]) == (1, 0, 1, 0), d[0]
    assert (d[2]["asked"], d[2]["moved_in"]) == (1, 0), d[2]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["caps"]["timeouts"] == 0 and a["caps"]["forged"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)


def test_a_holder_gives_its_copy_on_to_a_third_core():
    """RAM of a domain on core 0 given to a domain on core 2, which gives it
    on to a domain on core 3 (issue 10: before, ERR_CAP_FOREIGN). The owner
    records core 3 before the grant goes (the grant comes from the owner,
    cap_give_on), so the copy there is usable at once: its domain carves a
    Frame from it with the owner's agreement, and sees the copy as given by
    the domain on core 2. Giving it back to the owner core is refused. The
    owner's records show both cores; its revoke then takes both copies and
    the Frame; every monitor ends with no record and its slots back."""
    cores = (0, 2, 3)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + ["run 0 capholder giveon 2 3", "wait 120000",
                  "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600, extra_modules=holder())
    g = one(r, "capxfer_giveon")
    assert (g["error"], g["word"], g["revoked"]) == ("ERR_OK",) * 3, g
    owned = g["records"]["owned"]
    assert len(owned) == 1 and owned[0][1] == [2, 3] and owned[0][2] is False, g["records"]
    m = one(r, "capxfer_giveon_mid")
    assert m == {"event": "capxfer_giveon_mid", "core": 2, "took": "ERR_OK", "gave": "ERR_OK",
                 "home": "ERR_NOT_PERMITTED", "word": "ERR_OK", "word_core": 3, "told": "ERR_OK",
                 "gone": "ERR_OK"}, m
    e = one(r, "capxfer_giveon_end")
    assert e == {"event": "capxfer_giveon_end", "core": 3, "took": "ERR_OK", "from_core": 2, "from": g["mid"],
                 "type": "RAM", "carved": "ERR_OK", "told": "ERR_OK", "gone": "ERR_OK",
                 "frame_gone": "ERR_OK"}, e
    s = stats(r)
    assert s[2][-1]["caps"]["given_on"] - s[2][0]["caps"]["given_on"] == 1, s[2][-1]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)


def test_a_dead_holder_core_leaves_the_holder_sets():
    """RAM of a domain on core 0 given to a domain on core 2 and one on core
    3; then core 2's CPU driver panics (selftest=die:2@MS, issue 14's
    fence). When the monitors fence core 2, core 0's monitor takes it out
    of the object's holder set (core_fenced's cap_holders_dropped), so the
    giver's revoke asks core 3 alone and returns at once (no ERR_TIMEOUT
    waiting for a core that will never answer), and core 3's copy is gone."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import atoll_run
    from atoll_run import Machine
    m = Machine(smp=4, numa=2, mem=1 << 30, accel="tcg", cmdline="selftest=die:2@6000",
                modules=atoll_run.user_modules(extra=("capholder",)))
    r = atoll_run.boot(m, timeout=300, shell_commands=["run 0 capholder deadholder 2 3", "wait 120000", "sleep 300",
                                                       "stats 0"])
    assert not r.timed_out and not r.malformed, r.console[-3000:]
    [panic] = r.events_named("panic")
    assert panic["core"] == 2, panic
    given = one(r, "capxfer_deadholder_given")
    assert given["error"] == "ERR_OK" and given["records"]["owned"][0][1] == [2, 3], given
    fenced = {e["core"]: e for e in r.events_named("core_fenced")}
    assert fenced[0]["dead"] == 2 and fenced[0]["cap_holders_dropped"] == 1, fenced
    d = one(r, "capxfer_deadholder")
    assert (d["error"], d["fenced"], d["revoked"]) == ("ERR_OK",) * 3, d
    assert d["records"]["owned"] == [[given["records"]["owned"][0][0], [3], False]], d
    keep = [e for e in r.events_named("capxfer_keep")]
    assert keep == [{"event": "capxfer_keep", "type": "RAM", "error": "ERR_OK", "gone": True, "ms": keep[0]["ms"]}], keep
    s = stats(r)[0][-1]["caps"]
    assert s["owned"] == 0 and s["timeouts"] == 0 and s["dead_holders"] == 1, s


def test_operations_caught_at_the_fence_end_there_and_leave_nothing_behind():
    """Two cross-core operations under way when a core is fenced. Core 2
    panics at 6 s (selftest=die); core 0's monitor suspects it after
    MESH_SUSPECT_MS of silence and declares it dead MESH_CONFIRM_MS later.
    Both operations start when the suspicion shows in core 0's `mesh` text:
    core 2 is dead and not fenced yet (the owner's records still name it),
    so each waits for it.
    - The owner's revoke (core 0) of RAM held on core 2 and core 1: core 1
      answers at once; the fence takes core 2 out of the wait, and the
      revoke returns ERR_OK then, within its 5 s bound (no ERR_TIMEOUT),
      the object gone from core 0's records.
    - A holder's revoke (core 1) of RAM owned by a domain on core 2 asks
      the dead owner: it ends at the fence with ERR_CORE_DOWN, within its
      10 s bound; asked again, ERR_CORE_DOWN at once (not ERR_NO_ROUTE).
      The copy stays usable and, deleted, leaves no record.
    Cores 0 and 1 then hold no record, no lock and no slot more than
    before (core 3 is left out: node 1's memory service moves there)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import atoll_run
    from atoll_run import Machine
    m = Machine(smp=4, numa=2, mem=1 << 30, accel="tcg", cmdline="selftest=die:2@6000",
                modules=atoll_run.user_modules(extra=("capholder",)))
    r = atoll_run.boot(m, timeout=300, shell_commands=["sleep 500", "stats 0", "stats 1", "run 0 capholder caught 2 1",
                                                       "wait 6000", "sleep 300", "stats 0", "stats 1"])
    assert not r.timed_out and not r.malformed, r.console[-3000:]
    [panic] = r.events_named("panic")
    assert panic["core"] == 2, panic
    given = one(r, "capxfer_caught_given")
    assert given["error"] == "ERR_OK" and given["records"]["owned"][0][1] == [1, 2], given
    assert one(r, "capxfer_caught_owner")["error"] == "ERR_OK"
    assert one(r, "capxfer_caught_taken", owner=2)["error"] == "ERR_OK"
    fenced = {e["core"]: e for e in r.events_named("core_fenced")}
    assert sorted(fenced) == [0, 1, 3] and fenced[0]["cap_holders_dropped"] == 1, fenced
    # The owner's revoke: caught (core 2 still in the set when it began),
    # ended at the fence, not at its bound.
    c = one(r, "capxfer_caught")
    # Waited (a live holder answers in milliseconds) until the fence, not the bound.
    assert c["caught"] and c["revoked"] == "ERR_OK" and 50 <= c["revoke_ms"] < 5000, c
    assert c["after"]["owned"] == [] and c["after"]["held"] == [], c
    # The holder's revoke through the dead owner.
    h = one(r, "capxfer_caught_holder")
    assert h["owner"] == 2 and [o for o, _ in h["before"]["held"]].count(2) == 1, h
    assert h["revoked"] == "ERR_CORE_DOWN" and 50 <= h["revoke_ms"] < 10000, h
    assert h["again"] == "ERR_CORE_DOWN" and h["again_ms"] < 1000, h
    assert (h["deleted"], h["clean"]) == ("ERR_OK", "ERR_OK") and h["after"]["held"] == [], h
    s = stats(r)
    for core in (0, 1):
        b, a = s[core][0], s[core][-1]
        assert (a["caps"]["owned"], a["caps"]["held"], a["caps"]["waiting"], a["caps"]["timeouts"]) == (0, 0, 0, 0), a
        # Not fewer free: the fence also gave back the copies core 0 held of
        # the channels core 2's domains had opened to its services (the name
        # server's replica on core 2 followed core 0's: one or two).
        assert a["slots_free"] >= b["slots_free"], (core, b, a)
    assert s[0][-1]["caps"]["dead_holders"] == 1 and s[0][-1]["caps"]["revokes"] == 1, s[0][-1]
    assert s[1][-1]["caps"]["asked"] >= 1, s[1][-1]


def test_ownership_moves_to_a_holder_core_when_nothing_is_left_on_the_owners():
    """8 KiB of RAM carved from a domain's RAM on core 0, given to a domain
    on core 2 and one on core 3 (which carves a Frame from its first page
    with the owner's agreement). The giver deletes its original through its
    monitor: nothing of the object is left on core 0, so ownership moves to
    a holder core (issue 10, item 5), core 2, agreed with the holder cores
    only: core 3's record names core 2 from then on, core 2 records core 3,
    core 0 keeps only its anchor (held by core 2), which keeps the range
    taken in the giver's RAM (a carve there overlaps). Core 2's domain then
    retypes its copy *alone* (before the move: ERR_CAP_REMOTE), and its
    kernel refuses the page core 3 carved (ERR_OVERLAP: the reservation
    moved too); its revoke through its monitor takes core 3's copy and
    Frame; once it deletes its copy, the range is free in the giver's RAM
    again, and every monitor ends with no record and its slots back."""
    cores = (0, 2, 3)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] + ["run 0 capholder move 2 3", "wait 120000",
                  "sleep 500"] + [f"stats {c}" for c in cores], smp=4, numa=4, timeout=600, extra_modules=holder())
    g = one(r, "capxfer_move")
    assert all(g[k] == "ERR_OK" for k in ("error", "deleted", "moved", "word", "freed", "clean")), g
    assert g["held"] == "ERR_OVERLAP", g   # the old owner's anchor keeps the range
    [obj, holders, lost] = g["before"]["owned"][0]
    assert len(g["before"]["owned"]) == 1 and holders == [2, 3] and not lost, g["before"]
    old, new, other = g["after"]
    assert old["owned"] == [[obj, [2], False]] and old["held"] == [], old   # a tombstone: core 2 holds it
    [[new_obj, new_holders, _]] = new["owned"]
    assert new_holders == [3] and new["held"] == [[0, obj]], new
    assert other["held"] == [[2, new_obj]] and other["owned"] == [], other
    o = one(r, "capxfer_move_owner")
    assert {k: v for k, v in o.items() if k != "records"} == {
        "event": "capxfer_move_owner", "core": 2, "took": "ERR_OK", "before": "ERR_CAP_REMOTE", "told": "ERR_OK",
        "went": "ERR_OK", "reserved": "ERR_OVERLAP", "retyped": "ERR_OK", "revoked": "ERR_OK", "kept": "RAM",
        "frame": "Null", "deleted": "ERR_OK"}, o
    assert o["records"]["owned"] == [] and o["records"]["held"] == [[0, obj]], o   # its anchor went with core 3
    k = one(r, "capxfer_move_keep")
    assert (k["core"], k["from_core"], k["carved"], k["gone"], k["frame_gone"]) == (3, 0, "ERR_OK", "ERR_OK",
                                                                                    "ERR_OK"), k
    s = stats(r)
    assert s[0][-1]["caps"]["moved_out"] - s[0][0]["caps"]["moved_out"] == 1, s[0][-1]
    assert s[2][-1]["caps"]["moved_in"] - s[2][0]["caps"]["moved_in"] == 1, s[2][-1]
    assert s[3][-1]["caps"]["rehomed"] - s[3][0]["caps"]["rehomed"] == 1, s[3][-1]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["caps"]["timeouts"] == 0 and a["caps"]["forged"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)


def test_the_holder_paths_on_eight_cores_and_two_nodes():
    """The paths of holder cores beyond 4 cores (issue 10): on 8 cores in 2
    NUMA nodes, ownership of RAM given by core 0 (node 0) to cores 5 and 7
    (node 1) moves to core 5 when the giver deletes its original (core 7's
    record then names core 5; core 5 retypes alone, its revoke takes core
    7's copy; the range comes back to the giver), and a copy given to core
    3 is given on to core 6 through the owner, which records both and
    revokes both. Every monitor involved ends with no record and its slots
    back."""
    cores = (0, 3, 5, 6, 7)
    r = run_shell(["sleep 500"] + [f"stats {c}" for c in cores] +
                  ["run 0 capholder move 5 7", "wait 120000", "run 0 capholder giveon 3 6", "wait 120000",
                   "sleep 500"] + [f"stats {c}" for c in cores], smp=8, numa=2, timeout=600, extra_modules=holder())
    g = one(r, "capxfer_move")
    assert all(g[k] == "ERR_OK" for k in ("error", "deleted", "moved", "word", "freed", "clean")), g
    old, new, other = g["after"]
    [obj, holders, _] = g["before"]["owned"][0]
    assert holders == [5, 7] and old["owned"] == [[obj, [5], False]], g
    [[new_obj, new_holders, _]] = new["owned"]
    assert new["core"] == 5 and new_holders == [7] and other["held"] == [[5, new_obj]], g
    o = one(r, "capxfer_move_owner")
    assert (o["core"], o["before"], o["reserved"], o["retyped"], o["revoked"], o["frame"]) == (
        5, "ERR_CAP_REMOTE", "ERR_OVERLAP", "ERR_OK", "ERR_OK", "Null"), o
    k = one(r, "capxfer_move_keep")
    assert (k["core"], k["carved"], k["gone"], k["frame_gone"]) == (7, "ERR_OK", "ERR_OK", "ERR_OK"), k
    gv = one(r, "capxfer_giveon")
    assert (gv["error"], gv["word"], gv["revoked"]) == ("ERR_OK",) * 3, gv
    assert [o[1] for o in gv["records"]["owned"]] == [[3, 6]], gv
    e = one(r, "capxfer_giveon_end")
    assert (e["core"], e["from_core"], e["carved"], e["gone"], e["frame_gone"]) == (6, 3, "ERR_OK", "ERR_OK",
                                                                                   "ERR_OK"), e
    s = stats(r)
    assert s[0][-1]["caps"]["moved_out"] - s[0][0]["caps"]["moved_out"] == 1, s[0][-1]
    assert s[5][-1]["caps"]["moved_in"] - s[5][0]["caps"]["moved_in"] == 1, s[5][-1]
    assert s[7][-1]["caps"]["rehomed"] - s[7][0]["caps"]["rehomed"] == 1, s[7][-1]
    for core in cores:
        b, a = s[core][0], s[core][-1]
        assert a["caps"]["owned"] == 0 and a["caps"]["held"] == 0 and a["caps"]["waiting"] == 0, a
        assert a["caps"]["timeouts"] == 0 and a["caps"]["forged"] == 0, a
        assert a["slots_free"] == b["slots_free"], (core, b, a)
