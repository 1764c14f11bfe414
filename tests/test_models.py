"""The protocol models (models/*.pml) checked exhaustively by spin, each
scenario clean and each bug variant put back caught (docs/models.md); and
the model's sizes and rules tied to the C (tools/atoll_models.py).

    /usr/bin/python3 -m pytest -q tests/test_models.py
"""
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_models  # noqa: E402

pytestmark = pytest.mark.skipif(not shutil.which("spin"), reason="spin not installed: tools/install-deps")


def _id(check):
    model, scen, bugs, _ = check
    return f"{model}:{scen}" + ("+" + "+".join(bugs) if bugs else "")


@pytest.mark.parametrize("check", atoll_models.all_checks(), ids=_id)
def test_model(check):
    model, scen, bugs, expect = check
    r = atoll_models.check(model, scen, bugs)
    if expect is None:
        assert r.errors == 0, f"{_id(check)}: spin found an error:\n{r.output[-3000:]}"
        # An exhaustive search of something, not of a model that stops at once.
        assert r.states > 1000 and r.depth > 50, r.output[-2000:]
        assert "Full statespace search" in r.output and "Search not completed" not in r.output
    else:
        assert r.errors >= 1, f"{_id(check)}: the bug put back was not caught:\n{r.output[-2000:]}"
        assert r.reason.startswith(expect), r.reason


def test_urpc_constants_come_from_the_c():
    facts = atoll_models.urpc_constants()
    assert facts == {"ack_bits": 16, "min_slots": 2, "max_slots": 32767, "ack_span": 0xffff}
    # The same rules, scaled: a ring of 2 gets a 3-bit ack field, 4 gets 4 bits.
    assert atoll_models.urpc_sizes(2) == {"NSLOTS": 2, "ACK_MOD": 8, "ACK_SPAN": 7, "BATCH": 1}
    assert atoll_models.urpc_sizes(4) == {"NSLOTS": 4, "ACK_MOD": 16, "ACK_SPAN": 15, "BATCH": 2}
    assert atoll_models.urpc_sizes(31)["ACK_MOD"] == 64
    text = atoll_models.urpc_params(atoll_models.URPC_SCENARIOS[0])
    assert "#define NSLOTS 2\n" in text and "#define ACK_MOD 8\n" in text


@pytest.mark.parametrize("old,new,message", [
    ("c->received - c->ack_told >= c->nslots / 2", "c->received - c->ack_told >= c->nslots / 4",
     "batched ack"),
    ("c->received != c->ctrl_told", "c->received != c->ack_told", "idle flush"),
    ("#define MAX_SLOTS 32767u", "#define MAX_SLOTS 65535u", "MAX_SLOTS"),
    ("#define ACK_SPAN 0xffffu", "#define ACK_SPAN 0x7fffu", "ACK_SPAN"),
    ("    wake_if_sleeping(c);\n    if (nonblock)\n        return ERR_WOULD_BLOCK;\n",
     "    if (nonblock)\n        return ERR_WOULD_BLOCK;\n    wake_if_sleeping(c);\n",
     "raises its waiting flag if it must, then looks at the sleeping flag"),
    ("return need > c->nslots - c->nslots / 2 + 1 ||", "return need > c->nslots ||",
     "needs more than the batches promise"),
    ("            if (peer_asks(c))\n                publish_consumed(c);",
     "            urpc_flush_acks(c);", "publishes only when asked"),
    ("if (c->broken || c->asking || len > URPC_PAYLOAD", "if (c->broken || len > URPC_PAYLOAD",
     "short path is closed while the flag is up"),
    ("    if (i)\n        wake_if_sleeping(c);", "    if (i && !nonblock)\n        wake_if_sleeping(c);",
     "a batch wakes the peer once"),
])
def test_a_change_in_the_c_fails_the_model(tmp_path, monkeypatch, old, new, message):
    """Change a rule the model copies, in a copy of urpc.c: the check
    refuses to run rather than check a model of something else."""
    src = open(atoll_models.URPC_C).read()
    assert old in src
    copy = tmp_path / "urpc.c"
    copy.write_text(src.replace(old, new))
    monkeypatch.setattr(atoll_models, "URPC_C", str(copy))
    with pytest.raises(atoll_models.ModelMismatch, match=message):
        atoll_models.urpc_constants()


def test_header_layout_change_fails_the_model(tmp_path, monkeypatch):
    src = open(atoll_models.URPC_H).read()
    copy = tmp_path / "urpc.h"
    copy.write_text(src.replace("#define URPC_HDR_ACK_SHIFT 16", "#define URPC_HDR_ACK_SHIFT 20"))
    monkeypatch.setattr(atoll_models, "URPC_H", str(copy))
    with pytest.raises(atoll_models.ModelMismatch, match="MAX_SLOTS"):
        atoll_models.urpc_constants()


def _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, match, check):
    """Put a copy of atoll_models.<path> with `old` replaced by `new` in its
    place: check() must refuse it with ModelMismatch matching `match`."""
    src = open(getattr(atoll_models, path)).read()
    assert old in src
    copy = tmp_path / "copy.c"
    copy.write_text(src.replace(old, new))
    monkeypatch.setattr(atoll_models, path, str(copy))
    with pytest.raises(atoll_models.ModelMismatch, match=match):
        check()


@pytest.mark.parametrize("path,old,new", [
    ("MESH_C", "l->purpose == LINK_MESH && ++links_up == links_expected",
     "l->purpose == LINK_MESH && ++links_up >= links_expected"),
    ("LINKS_C", "if (l->out_head)   /* keep the order: behind what waits */", "if (0)"),
])
def test_a_change_in_the_monitor_fails_the_mesh_model(tmp_path, monkeypatch, path, old, new):
    _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, "mesh.pml no longer matches",
                               lambda: atoll_models.mesh_params(atoll_models.MESH_SCENARIOS[0]))


def test_mesh_plan_comes_from_the_monitor():
    """The plan in the model is monitor/mesh_plan.c's own: clusters of 2 on
    5 cores of one node: the boot channels 0-1..0-4, 2-3 (a cluster) and
    2-4 (leaders); 2-1 and 3-4 are not linked, so 3 reaches 4 through 2."""
    text = atoll_models.mesh_params(atoll_models.MESH_SCENARIOS[2])
    assert "#define NCORES 5" in text and "#define PLAN_LINKS 6" in text
    assert "linked[3] = 1;" in text and "linked[13] = 1;" in text and "linked[14] = 1;" in text
    assert "linked[11] = 0;" in text and "linked[19] = 0;" in text
    assert "hop[19] = 2;" in text                                    # 3 -> 4: via its leader 2


def test_the_restart_model_follows_the_starter(tmp_path, monkeypatch):
    """models/restart.pml: its limit is the manifest's default, and a
    change of a rule it copies from servers/starter/starter.c (here: a
    hang-up taken as an end without asking the monitor) fails the check."""
    text = atoll_models.restart_params(atoll_models.RESTART_SCENARIOS[0])
    limit = atoll_models._c_defines(atoll_models.MANIFEST_H)["MANIFEST_RESTART_DEFAULT"]
    assert f"#define RESTART_LIMIT {limit}\n" in text and f"#define INCARNATIONS {limit + 3}\n" in text
    src = open(atoll_models.STARTER_C).read()
    old = "if (still_listed(x->core, x->domain, &dead)) {"
    assert old in src
    copy = tmp_path / "starter.c"
    copy.write_text(src.replace(old, "if (0) {"))
    monkeypatch.setattr(atoll_models, "STARTER_C", str(copy))
    with pytest.raises(atoll_models.ModelMismatch, match="restart.pml no longer matches"):
        atoll_models.restart_params(atoll_models.RESTART_SCENARIOS[0])


def test_store_constants_come_from_the_c():
    """The store model's channel is no bigger than what a connection's ring
    holds of the largest append (if/store.if's own size, by idlc's rules)."""
    facts = atoll_models.store_constants()
    assert facts["ring_slots"] == 30 and facts["ring_appends"] >= 1   # a 4 KiB frame, two control lines a half
    assert facts["ring_appends"] == facts["ring_slots"] // facts["append_slots"]
    for s in atoll_models.STORE_SCENARIOS:
        text = atoll_models.store_params(s)
        assert f"#define QCAP {s.qcap}\n" in text and f"#define WRITES {s.writes}\n" in text


@pytest.mark.parametrize("old,new", [
    ("majority = nmembers / 2 + 1;", "majority = nmembers / 2;"),
    ("if (a->index != last + 1", "if (a->index > last + 1"),
    ("c->pending == P_READ_APPLY && c->wait_index <= applied", "c->pending == P_READ_APPLY"),
    # Elections: a vote without the log comparison, a commit of an earlier
    # term's entries, a follower voting as soon as a snapshot came.
    ("granted = may_vote() && up_to_date(a->last_term, a->last_index);", "granted = may_vote();"),
    # A replica in its first life still counted as such after a snapshot
    # replaced a log it held.
    ("if (last > 0)\n        first_life = false;", "if (last > 0)\n        first_life = true;"),
    ("if (c <= commit || c < term_start)", "if (c <= commit)"),
    ("caught_up = last >= up.upto;", "caught_up = true;"),
])
def test_a_change_in_the_store_fails_its_model(tmp_path, monkeypatch, old, new):
    src = open(atoll_models.STORE_C).read()
    assert old in src
    copy = tmp_path / "replica.c"
    copy.write_text(src.replace(old, new))
    monkeypatch.setattr(atoll_models, "STORE_C", str(copy))
    with pytest.raises(atoll_models.ModelMismatch, match="store.pml no longer matches"):
        atoll_models.store_constants()


@pytest.mark.parametrize("path,old,new,message", [
    ("CAPOPS_C", "if (!g || (g->count == 0 && (!g->lost || revoked))) {", "if (!g || g->count == 0) {",
     "no grant to it unanswered"),
    ("CAPOPS_C", "grants[i].lost = true;", "grants[i].lost = false;", "marked lost"),
    ("CAPOPS_C", "a->tag == o->revoke_tag &&", "", "clears a lost grant"),
    ("CAPOPS_C", "sys_cap_retype(o->anchor, CAP_RAM, a->bytes, a->base - o->base, 1, s)",
     "sys_cap_identify(o->anchor, 0)", "reserved by retyping the anchor"),
    ("MONITOR_IF", "message cap_released(", "message cap_gone(", "message cap_released"),
])
def test_a_change_in_the_monitor_fails_the_capops_model(tmp_path, monkeypatch, path, old, new, message):
    """Change a rule models/capops.pml copies, or rename a message it stands
    for: the check refuses to run."""
    _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, message,
                               lambda: atoll_models.capops_params(atoll_models.CAPOPS_SCENARIOS[0]))


@pytest.mark.parametrize("path,old,new,message", [
    ("CAPOPS_C", "if ((o->move == M_ASKED || o->move == M_TELLING) && a->src != o->peer) {",
     "if (o->move == M_TELLING && a->src != o->peer) {", "forwarded to the new owner"),
    ("CAPOPS_C", "sys_cap_retype(anchor, CAP_RAM, r->bytes, r->base - o->base, 1, s)",
     "sys_cap_identify(anchor, 0)", "re-reserves the moved reservations"),
    ("CAPOPS_KERNEL_C", "c->cap.relations &= (uint8_t)~CAP_REL_FOREIGN;", "(void)c;", "FOREIGN root of memory"),
    ("MONITOR_IF", "message cap_moved(", "message cap_rehomed(", "message cap_moved"),
])
def test_a_change_in_the_monitor_fails_the_capmove_model(tmp_path, monkeypatch, path, old, new, message):
    """Change a rule models/capmove.pml copies, or rename a message it stands
    for: the check refuses to run."""
    _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, message,
                               lambda: atoll_models.capmove_params(atoll_models.CAPMOVE_SCENARIOS[0]))


@pytest.mark.parametrize("path,old,new,message", [
    ("FENCE_C", "uint32_t answered = pending_fail_core(core);", "uint32_t answered = 0;",
     "fencing answers what waits"),
    ("FENCE_C", "probe(core);", "(void)core;", "core 0 probes a suspect"),
    ("PENDING_C", "reply_error(&ch, p->call, ERR_CORE_DOWN);", "reply_error(&ch, p->call, ERR_TIMEOUT);",
     "answered ERR_CORE_DOWN"),
    ("MONITOR_IF", "message core_dead(", "message core_gone(", "message core_dead"),
])
def test_a_change_in_the_monitor_fails_the_fence_model(tmp_path, monkeypatch, path, old, new, message):
    """Change a rule models/fence.pml copies, or rename a message it stands
    for: the check refuses to run."""
    _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, message,
                               lambda: atoll_models.fence_params(atoll_models.FENCE_SCENARIOS[0]))


@pytest.mark.parametrize("path,old,new,message", [
    ("SPAN_C", "if (!s->err && s->protocol == TLB_UNICAST && !bits_empty(s->to_send))",
     "if (!s->err && !bits_empty(s->to_send))", "unicast asks the next core only after an answer"),
    ("SPAN_C", "errval_t err = sys_tlb_invalidate(SLOT_KERNEL, a->home, a->domain, a->vaddr, a->pages, &found);",
     "errval_t err = ERR_OK; uint64_t unused;", "a core forgets before it answers"),
    ("MONITOR_IF", "message tlb_reply(", "message tlb_done(", "message tlb_reply"),
    ("MONITOR_PROTO_H", "TLB_BROADCAST,", "TLB_ALL,", "TLB_BROADCAST in enum tlb_protocol"),
])
def test_a_change_in_the_monitor_fails_the_shootdown_model(tmp_path, monkeypatch, path, old, new, message):
    """Change a rule models/shootdown.pml copies, rename a message it stands
    for or a protocol it numbers: the check refuses to run."""
    _mutated_source_is_refused(tmp_path, monkeypatch, path, old, new, message,
                               lambda: atoll_models.shootdown_params(atoll_models.SHOOTDOWN_SCENARIOS[0]))


def test_shootdown_protocol_numbers_come_from_the_c():
    protos = atoll_models.tlb_protocols()
    assert [protos[p] for p in ("TLB_UNICAST", "TLB_BROADCAST", "TLB_MULTICAST", "TLB_NUMA_MULTICAST",
                                "TLB_IPI")] == [1, 2, 3, 4, 5]
    text = atoll_models.shootdown_params(atoll_models.SHOOTDOWN_SCENARIOS[1])
    assert "#define PROTO 2" in text and "#define TLB_MULTICAST 3" in text
