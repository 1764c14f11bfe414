"""The Promela models of Atoll's cross-core protocols (models/*.pml), tied
to the C and checked by spin (docs/models.md): the URPC channel
(models/urpc.pml), the building of the monitors' mesh (models/mesh.pml),
the replicated store's protocol (models/store.pml) and capabilities across
cores (models/capops.pml).

A model's sizes are not typed in by hand: they are derived from the C
(lib/include/atoll/urpc.h, lib/urpc/urpc.c) by the same rules the C uses
(the mesh's plan by running monitor/mesh_plan.c itself),
scaled down so that spin can explore every interleaving, and written into a
generated header (urpc_params.pml) next to a copy of the model. Where the
model relies on a rule of the C that is code rather than a constant (the
batching threshold, what the idle flush compares with), the rule's text is
looked for in the source, so a change there fails the check and points at
the model to update.

    import atoll_models
    r = atoll_models.check("urpc", "duplex")            # a Result
    r = atoll_models.check("urpc", "stream", bugs=["BUG_NO_STREAM_WAKE"])

Standard library only; needs Debian's spin and gcc (tools/install-deps).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
URPC_H = os.path.join(ROOT, "lib", "include", "atoll", "urpc.h")
URPC_C = os.path.join(ROOT, "lib", "urpc", "urpc.c")

# Rules of lib/urpc/urpc.c that models/urpc.pml copies: (what, C text). If
# one is gone, the C changed under the model.
URPC_RULES = [
    ("the batched ack every half ring (models/urpc.pml: BATCH, the take step)",
     "c->received - c->ack_told >= c->nslots / 2"),
    ("the idle flush answers an ask (ASKED): the peer's waiting flag, and a count the control line "
     "does not show (UNFLUSHED)",
     "return c->received != c->ctrl_told && __atomic_load_n(&c->peer_ctrl->waiting, __ATOMIC_RELAXED);"),
    ("a receive that finds its ring empty publishes only when asked (the idle-flush step)",
     "            if (peer_asks(c))\n                publish_consumed(c);\n            return ERR_WOULD_BLOCK;"),
    ("a sender that finds no room raises its waiting flag if it must, then looks at the sleeping flag, "
     "blocking or not (ASK_EARLY, WAKE_BEFORE_WAIT, NB_ASK)",
     "    if (!c->asking && must_ask(c, need))\n        set_asking(c, true);\n    wake_if_sleeping(c);\n"
     "    if (nonblock)\n        return ERR_WOULD_BLOCK;"),
    ("a sender must ask when it needs more than the batches promise, or a reply is unread (ASK_NEEDED)",
     "return need > c->nslots - c->nslots / 2 + 1 ||\n"
     "           (uint32_t)(h >> URPC_HDR_SEQ_SHIFT) == (uint32_t)(c->received + 1);"),
    ("a waiting sender asks once a reply comes (the wait loop's ask)",
     "        if (!c->asking && must_ask(c, need)) {"),
    ("a send that finds room lowers the flag (STOP_ASKING)",
     "    if (free_slots(c) >= need)\n        return room(c);"),
    ("urpc_send's short path is closed while the flag is up (room() lowers it)",
     "if (c->broken || c->asking || len > URPC_PAYLOAD || c->sent - c->acked >= c->nslots)"),
    ("a header's ack at most ACK_SPAN past the previous header's (HDR_ACK_VALUE)",
     "c->received - c->hdr_told > ACK_SPAN ? c->hdr_told + ACK_SPAN : c->received"),
    ("the ack widened from the previous header's (check_slot)",
     "c->hdr_acked + (uint16_t)(ack16 - (uint16_t)c->hdr_acked)"),
    ("a batch wakes the peer once, after its last message (the send step's last wake)",
     "    if (i)\n        wake_if_sleeping(c);"),
    ("small messages share a slot only within one batch call, two or more to a slot (PACK)",
     "if (i + 1 < n && packable(&msgs[i], &msgs[i + 1])) {"),
    ("a packed slot is taken whole, between messages, and consumed once copied out (check_slot)",
     "if (frag != 0 || !last || n == 0 || !take_packed(c, s, n))\n                return corrupt(c);\n"
     "            consume_slot(c);"),
    ("a hang-up is reported only on a dry ring, its header read again (the hang-up step)",
     "if (urpc_peer_closed(c) && load_acquire(&s->header) == h)"),
    ("urpc_close wakes a sleeping peer",
     "store_release(&c->my_ctrl->closed, reason ? (uint64_t)reason : (uint64_t)ERR_CHAN_CLOSED);\n"
     "    wake_if_sleeping(c);"),
    ("a sender waiting for room from a closed peer gives up",
     "if (urpc_peer_closed(c))\n        return peer_gone(c);   /* it will never make room */"),
    ("a urpc_pending that counts a hang-up and an ask (the sleeper's last check)",
     "!= empty_seq(c) || urpc_peer_closed(c) ||\n           peer_asks(c);"),
]


class ModelMismatch(Exception):
    """The C no longer matches what a model assumes."""


def _c_defines(path):
    """Integer #defines of a C file, evaluated (they may use earlier ones)."""
    vals = {}
    for m in re.finditer(r"^#define\s+(\w+)\s+(.+?)\s*(?:/\*.*)?$", open(path).read(), re.M):
        name, expr = m.group(1), m.group(2)
        expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)(?:ull|ul|u|ll|l)\b", r"\1", expr, flags=re.I)
        if not re.fullmatch(r"[\w\s()+\-*/<>|&~]+", expr):
            continue
        try:
            vals[name] = int(eval(expr, {"__builtins__": {}}, dict(vals)))  # noqa: S307 (digits and names only)
        except Exception:
            continue
    return vals


def urpc_constants():
    """What the URPC model takes from the C, checked; raises ModelMismatch."""
    h = _c_defines(URPC_H)
    c = _c_defines(URPC_C)
    src = open(URPC_C).read()
    ack_bits = h["URPC_HDR_SEQ_SHIFT"] - h["URPC_HDR_ACK_SHIFT"]
    facts = {
        "ack_bits": ack_bits,
        "min_slots": h["URPC_MIN_FRAME"] // 2 // h["URPC_LINE"] - h["URPC_CTRL_LINES"],
        "max_slots": c["MAX_SLOTS"],
        "ack_span": c["ACK_SPAN"],
    }
    problems = []
    if facts["max_slots"] != 2 ** (ack_bits - 1) - 1:
        problems.append(f"MAX_SLOTS is {facts['max_slots']}, not 2^(ack bits - 1) - 1 = "
                        f"{2 ** (ack_bits - 1) - 1}: the model scales the ring and the ack field by that rule")
    if facts["ack_span"] != 2 ** ack_bits - 1:
        problems.append(f"ACK_SPAN is {facts['ack_span']:#x}, not 2^(ack bits) - 1")
    if facts["min_slots"] < 2:
        problems.append(f"URPC_MIN_FRAME gives {facts['min_slots']} slots; the model needs 2 or more")
    for what, text in URPC_RULES:
        if text not in src:
            problems.append(f"{what}: urpc.c no longer has `{text}`")
    if problems:
        raise ModelMismatch("models/urpc.pml no longer matches lib/urpc: " + "; ".join(problems))
    return facts


# Small messages to a packed slot in the model. The C packs as many as fit
# in a slot's 56 bytes (six of 8 bytes), and never fewer than two (the
# rule above): two is the least that exercises a slot of several messages
# and keeps the search small.
URPC_PACK = 2


def urpc_sizes(nslots):
    """The model's ring of `nslots` with the C's rules: the ack field the
    smallest power of two whose half exceeds the ring (as 2^16 > 2 x
    MAX_SLOTS), ACK_SPAN one less than its range, BATCH half the ring."""
    urpc_constants()
    bits = 1
    while nslots > 2 ** (bits - 1) - 1:
        bits += 1
    return {"NSLOTS": nslots, "ACK_MOD": 2 ** bits, "ACK_SPAN": 2 ** bits - 1, "BATCH": nslots // 2}


@dataclass
class Side:
    msgs: List[int]                        # lengths in slots; 0: a small message (packs with its neighbours)
    batch: int = 1                         # messages per send call (1: urpc_send; more: urpc_send_batch)
    after: List[int] = field(default_factory=list)   # message i waits for this many received
    blocking: bool = False                 # blocking sends (needed for messages longer than the ring)
    sleeper: bool = True                   # blocking receive with spin_ns = 0 when it has nothing to send
    closes: bool = False                   # urpc_close once it has sent everything


@dataclass
class Scenario:
    name: str
    what: str
    nslots: object                         # an int, or "min": the C's smallest ring
    sides: List[Side]
    catches: Dict[str, str]                # bug flag -> the error spin must report
    large: bool = False                    # only with tools/check-models --large (not make test)


# The scenarios make test checks. Each is small enough for an exhaustive
# search in well under a second, and each bug variant is caught by at
# least one of them (tests/test_models.py).
URPC_SCENARIOS = [
    Scenario("duplex", "both sides send 1- and 2-slot messages at once through the smallest ring, "
             "non-blocking, so both rings fill; each sleeps once it has sent everything",
             "min", [Side([1, 2, 1]), Side([2, 1, 1])],
             {"BUG_EARLY_ACK": "assertion violated", "BUG_LOST_WAKEUP": "invalid end state"}),
    Scenario("stream", "a blocking message longer than the ring (3 slots in 2) while the peer "
             "sleeps, and replies the other way", "min",
             [Side([3, 1], blocking=True), Side([1, 1])],
             {"BUG_NO_STREAM_WAKE": "invalid end state", "BUG_LOST_WAKEUP": "invalid end state",
              "BUG_EARLY_ACK": "assertion violated"}),
    Scenario("batch", "a ring of 4 (acks batched every 2): one slot, then blocking messages of 4 "
             "and 5 slots that need acks the receiver has not batched yet, while it replies once",
             4, [Side([1, 4, 5], blocking=True), Side([1])],
             {"BUG_NO_IDLE_FLUSH": "invalid end state", "BUG_IDLE_FLUSH_TOLD": "invalid end state",
              "BUG_ASK_AFTER_WAKE": "invalid end state"}),
    Scenario("asknb", "a ring of 4: one slot, then a non-blocking 4-slot message that needs the ack "
             "of the first, which the receiver (asleep, sending nothing) holds until asked", 4,
             [Side([1, 4]), Side([])],
             {"BUG_NONBLOCK_NO_ASK": "invalid end state", "BUG_NO_IDLE_FLUSH": "invalid end state",
              "BUG_ASK_AFTER_WAKE": "invalid end state"}),
    Scenario("askreply", "a ring of 4: two one-slot requests, each answered (the answers' headers "
             "carry the acks), then a blocking 3-slot message (no more than the batches promise) "
             "while the answers wait unread and the receiver sleeps", 4,
             [Side([1, 1, 3], blocking=True), Side([1, 1], after=[1, 2])],
             {"BUG_ASK_IGNORES_REPLIES": "invalid end state", "BUG_IDLE_FLUSH_TOLD": "invalid end state"}),
    Scenario("wrap", "a one-way stream of 9 slots, more than the model's 3-bit ack field counts, "
             "then request and response", "min",
             [Side([1] * 11, after=[0] * 9 + [1, 2]), Side([1, 1, 1], after=[9, 10, 11])],
             {"BUG_ACK_WRAP": "assertion violated"}),
    Scenario("packed", "both sides send non-blocking batches of small messages, two to a slot, and "
             "a 2-slot message, through the smallest ring, so a batch often goes in part",
             "min", [Side([0, 0, 0, 0, 0, 2], batch=4), Side([0, 0, 1, 0, 0], batch=5)],
             {"BUG_EARLY_ACK": "assertion violated", "BUG_LOST_WAKEUP": "invalid end state"}),
    Scenario("sendbatch", "a blocking batch of small messages and a 3-slot one, longer than the ring "
             "(2 slots), to a receiver asleep that answers once it has them all", "min",
             [Side([0, 0, 0, 0, 3, 0, 0], batch=7, blocking=True), Side([1], after=[7])],
             {"BUG_NO_BATCH_WAKE": "invalid end state", "BUG_NO_STREAM_WAKE": "invalid end state",
              "BUG_LOST_WAKEUP": "invalid end state", "BUG_EARLY_ACK": "assertion violated"}),
    Scenario("close", "one side replies and hangs up (urpc_close) while the other still sends more "
             "than the ring holds and then sleeps", "min",
             [Side([1, 2], after=[0, 1], closes=True), Side([1, 1, 1, 1])],
             {"BUG_CLOSE_EARLY": "assertion violated", "BUG_CLOSE_NO_WAKE": "invalid end state"}),
    Scenario("close-stream", "a blocking message longer than the ring to a side that hangs up without "
             "reading it", "min",
             [Side([1], closes=True), Side([3, 1], blocking=True)],
             {"BUG_CLOSE_EARLY": "assertion violated", "BUG_CLOSE_NO_WAKE": "invalid end state",
              "BUG_CLOSE_SENDER_WAITS": "invalid end state"}),
    # Larger runs for tools/check-models --large: tens of seconds and a few GB each.
    Scenario("duplex4", "a ring of 4 both ways, messages of 1 to 3 slots, non-blocking", 4,
             [Side([1, 3, 2, 1]), Side([2, 1, 3])], {}, large=True),
    Scenario("mixed4", "a ring of 4: a blocking 5-slot message and more one way, non-blocking "
             "1- and 3-slot messages the other", 4,
             [Side([5, 1, 2], blocking=True), Side([1, 3, 1])], {}, large=True),
]


def urpc_params(s: Scenario):
    """The text of urpc_params.pml for a scenario."""
    facts = urpc_constants()
    n = facts["min_slots"] if s.nslots == "min" else s.nslots
    sizes = urpc_sizes(n)
    maxmsg = max(len(side.msgs) for side in s.sides)
    lines = [f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */",
             f"/* From the C: {facts['ack_bits']}-bit acks, MAX_SLOTS {facts['max_slots']}, "
             f"ACK_SPAN {facts['ack_span']:#x}, smallest ring {facts['min_slots']} slots. */"]
    lines += [f"#define {k} {v}" for k, v in sizes.items()]
    lines.append(f"#define MAXMSG {maxmsg}")
    lines.append(f"#define PACK {URPC_PACK}")
    init = []
    for i, side in enumerate(s.sides):
        if side.batch < 1:
            raise ValueError(f"scenario {s.name}: side {i} sends batches of {side.batch}")
        if side.blocking is False and max(side.msgs, default=1) > n:
            raise ValueError(f"scenario {s.name}: side {i} sends {max(side.msgs)} slots non-blocking "
                             f"through a ring of {n} (urpc_send refuses that)")
        init.append(f"nmsg[{i}] = {len(side.msgs)}")
        init += [f"msg_len[MIDX({i},{j})] = {v}" for j, v in enumerate(side.msgs)]
        init += [f"after[MIDX({i},{j})] = {v}" for j, v in enumerate(side.after) if v]
        init.append(f"bsize[{i}] = {side.batch}")
        init.append(f"blocking[{i}] = {int(side.blocking)}")
        init.append(f"sleeper[{i}] = {int(side.sleeper)}")
        init.append(f"closes[{i}] = {int(side.closes)}")
    lines.append("#define SCENARIO " + "; \\\n    ".join(init))
    return "\n".join(lines) + "\n"


@dataclass
class Result:
    model: str
    scenario: str
    bugs: List[str]
    errors: int
    reason: str                 # spin's first error line ("" when none)
    states: int                 # states stored
    transitions: int
    depth: int
    memory_mb: float
    seconds: float              # the search (pan's elapsed time)
    wall: float                 # spin + gcc + pan
    output: str


def _num(pattern, text, cast=int, default=0):
    m = re.search(pattern, text)
    return cast(m.group(1)) if m else default


def run_spin(pml, params_text, bugs=(), workdir=None, depth=100000, extra_params=None, opt="-O0",
             large=False):
    """spin -a, gcc, pan on `pml` with the generated header; a Result. The
    small scenarios compile pan with -O0: the compile then takes a quarter
    of -O2's time, and their searches take well under a second either way.
    large: -O2, states stored compressed (-DCOLLAPSE) and up to 16 GB."""
    for tool in ("spin", "gcc"):
        if not shutil.which(tool):
            raise FileNotFoundError(f"{tool} is not installed: run tools/install-deps")
    own = workdir is None
    d = workdir or tempfile.mkdtemp(prefix="atoll-model-")
    t0 = time.monotonic()
    try:
        name = os.path.basename(pml)
        shutil.copy(pml, os.path.join(d, name))
        for fn, text in (extra_params or {}).items():
            with open(os.path.join(d, fn), "w") as f:
                f.write(text)
        if params_text is not None:
            with open(os.path.join(d, os.path.splitext(name)[0] + "_params.pml"), "w") as f:
                f.write(params_text)
        flags = [f"-D{b}" for b in bugs]
        subprocess.run(["spin", *flags, "-a", name], cwd=d, check=True, capture_output=True, text=True)
        # -DSAFETY: assertions and invalid end states (deadlocks), no cycles.
        cflags = ["-O2", "-DCOLLAPSE", "-DMEMLIM=16384"] if large else [opt, "-DMEMLIM=4096"]
        subprocess.run(["gcc", "-w", *cflags, "-DSAFETY", "-o", "pan", "pan.c"],
                       cwd=d, check=True, capture_output=True, text=True)
        p = subprocess.run(["./pan", f"-m{depth}"], cwd=d, capture_output=True, text=True, timeout=600)
        out = p.stdout + p.stderr
        if "error: max search depth too small" in out:
            raise RuntimeError(f"{name}: search depth {depth} too small")
        if "Search not completed" in out and not re.search(r"^pan:1: ", out, re.M):
            # Out of memory (or depth) before the end: no verdict at all.
            raise RuntimeError(f"{name}: the search did not complete:\n{out[-1500:]}")
        first = re.search(r"^pan:1: (.*)$", out, re.M)
        return Result(model=os.path.splitext(name)[0], scenario="", bugs=list(bugs),
                      errors=_num(r"errors: (\d+)", out, default=-1),
                      reason=first.group(1) if first else "",
                      states=_num(r"(\d+) states, stored", out),
                      transitions=_num(r"(\d+) transitions", out),
                      depth=_num(r"depth reached (\d+)", out),
                      memory_mb=_num(r"([\d.]+)\s+total actual memory usage", out, float, 0.0),
                      seconds=_num(r"elapsed time ([\d.e+-]+)", out, float, 0.0),
                      wall=time.monotonic() - t0, output=out)
    finally:
        if own:
            shutil.rmtree(d, ignore_errors=True)


# -- the monitors' mesh (models/mesh.pml) -------------------------------------------------
MESH_C = os.path.join(ROOT, "monitor", "mesh.c")
LINKS_C = os.path.join(ROOT, "monitor", "links.c")
MESH_PLAN_C = os.path.join(ROOT, "monitor", "mesh_plan.c")
# Rules of monitor/ that models/mesh.pml copies (by the name of the file's path above).
MESH_RULES = [
    ("MESH_C", "a core counts its links from the plan and reports when they are all up",
     "l->purpose == LINK_MESH && ++links_up == links_expected"),
    ("MESH_C", "a core with no links to wait for reports at once", "if (links_expected == 0)\n        report_ready();"),
    ("MESH_C", "the lower core of a pair offers", "if (peer < my_core)\n            continue;   /* the lower core offers */"),
    ("MESH_C", "core 0 reports when every core that came up has", "if (cores_ready == ncores_up) {"),
    ("MESH_C", "no link to a core that never came up",
     "!core_alive(peer) || !mesh_linked(&plan, my_core, peer)"),
    ("MESH_C", "the answer goes on the new channel",
     "monitor_link_ready_send(&l->idl, a->src, (uint16_t)my_core, a->tag, ERR_OK);"),
    ("LINKS_C", "route(): direct, the plan's next hop, else through core 0",
     "l = link_direct(mesh_next_hop(&plan, my_core, dst));\n    if (!l)   /* the mesh is still being built: "
     "core 0 reaches everyone */\n        l = link_direct(my_core == 0 ? dst : 0);"),
    ("LINKS_C", "a link keeps its order behind what waits in its outbox",
     "if (l->out_head)   /* keep the order: behind what waits */"),
]


@dataclass
class MeshScenario:
    name: str
    what: str
    kind: int                   # enum mesh_kind: 0 cluster, 1 all, 2 star
    cluster: int
    nodes: List[object]         # node of each core; "dN": on node N, never came up
    catches: Dict[str, str]
    large: bool = False


MESH_SCENARIOS = [
    MeshScenario("all4", "4 cores, mesh=all: offers among cores 1-3 routed through core 0",
                 1, 8, [0, 0, 0, 0], {"BUG_FORWARD_OVERTAKES": "assertion violated"}),
    MeshScenario("cluster4", "4 cores on 2 nodes, clusters of 2: leaders 0 and 2", 0, 2, [0, 0, 1, 1],
                 {"BUG_FORWARD_OVERTAKES": "assertion violated"}),
    MeshScenario("cluster5", "5 cores on one node, clusters of 2: leaders 0, 2, 4; routes through leaders",
                 0, 2, [0] * 5, {"BUG_FORWARD_OVERTAKES": "assertion violated"}),
    MeshScenario("down5", "5 cores on one node, clusters of 2, core 2 (a leader) never came up: "
                 "3 leads its cluster", 0, 2, [0, 0, "d0", 0, 0],
                 {"BUG_FORWARD_OVERTAKES": "assertion violated"}),
    MeshScenario("all5", "5 cores, mesh=all", 1, 8, [0] * 5, {}, large=True),
]


def mesh_params(s: MeshScenario):
    """mesh_params.pml: the plan as monitor/mesh_plan.c computes it."""
    src = {name: open(globals()[name]).read() for name in ("MESH_C", "LINKS_C")}
    missing = [what for name, what, text in MESH_RULES if text not in src[name]]
    if missing:
        raise ModelMismatch("models/mesh.pml no longer matches monitor/: " + "; ".join(missing))
    with tempfile.TemporaryDirectory(prefix="atoll-mesh-plan-") as d:
        exe = os.path.join(d, "dump")
        subprocess.run(["gcc", "-std=c11", "-O1", "-I", os.path.dirname(MESH_PLAN_C), "-o", exe,
                        os.path.join(MODELS, "mesh_plan_dump.c"), MESH_PLAN_C], check=True,
                       capture_output=True, text=True)
        r = subprocess.run([exe, str(len(s.nodes)), str(s.kind), str(s.cluster), *map(str, s.nodes)],
                           check=True, capture_output=True, text=True)
    return f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */\n" + r.stdout


# -- the restart service (models/restart.pml) ------------------------------------------------
STARTER_C = os.path.join(ROOT, "servers", "starter", "starter.c")
MANIFEST_H = os.path.join(ROOT, "servers", "starter", "manifest.h")
# Rules of servers/starter/starter.c that models/restart.pml copies.
RESTART_RULES = [
    ("a hang-up is an end only once the monitor no longer lists the domain",
     "if (still_listed(x->core, x->domain, &dead)) {"),
    ("a failed start is an end before joining", "bool failed_start = x->state == S_STARTING;"),
    ("failed starts count in a row", "x->failed_in_row = failed_start ? x->failed_in_row + 1 : 0;"),
    ("given up past the limit", "} else if (x->failed_in_row > s->restart_limit) {"),
    ("the ps watch covers instances not beating", "} else if (!x->hb && now - x->polled_ns > PS_POLL_NS) {"),
    ("a hung instance is ended", "if (x->hb && now - x->last_beat_ns > HEARTBEAT_HANG_MS * 1000000ull && !x->killed_hung) {"),
]


@dataclass
class RestartScenario:
    name: str
    what: str
    limit: Optional[int]        # None: the manifest's default (MANIFEST_RESTART_DEFAULT)
    catches: Dict[str, str]


RESTART_SCENARIOS = [
    RestartScenario("default", "restart= as the manifest's default, 3 incarnations past it", None,
                    {"BUG_TRUST_HANGUP": "assertion violated", "BUG_NO_PS_WATCH": "assertion violated"}),
    RestartScenario("never", "restart=0: one incarnation", 0, {"BUG_TRUST_HANGUP": "assertion violated"}),
]


def restart_params(s: RestartScenario):
    """restart_params.pml: the limit from manifest.h; the rules checked in starter.c."""
    src = open(STARTER_C).read()
    missing = [what for what, text in RESTART_RULES if text not in src]
    if missing:
        raise ModelMismatch("models/restart.pml no longer matches servers/starter/starter.c: " + "; ".join(missing))
    limit = s.limit if s.limit is not None else _c_defines(MANIFEST_H)["MANIFEST_RESTART_DEFAULT"]
    return (f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */\n"
            f"#define RESTART_LIMIT {limit}\n#define INCARNATIONS {limit + 3}\n")


# -- a dead core fenced (models/fence.pml) ------------------------------------------------------
FENCE_C = os.path.join(ROOT, "monitor", "fence.c")
PENDING_C = os.path.join(ROOT, "monitor", "pending.c")
# Rules of monitor/fence.c (and pending.c) that models/fence.pml copies.
FENCE_RULES = [
    ("FENCE_C", "a neighbour's suspicion goes to core 0, which alone decides",
     "monitor_core_suspect_send(to0, 0, (uint16_t)my_core, new_tag(), (uint16_t)core, silent_ms);"),
    ("FENCE_C", "core 0 probes a suspect", "probe(core);"),
    ("FENCE_C", "anything heard from the suspect since the probe clears it",
     "} else if (l && l->heard_ns > s->since_ns) {"),
    ("FENCE_C", "the suspect is told first, over its boot channel",
     "monitor_core_dead_send(&l->idl, (uint16_t)core, 0, new_tag(), (uint16_t)core, s->by, silent);"),
    ("FENCE_C", "fencing answers what waits for the dead core", "uint32_t answered = pending_fail_core(core);"),
    ("FENCE_C", "only core 0's core_dead counts", "if (a->src != 0 || a->core == 0 || a->core >= ncores)"),
    ("FENCE_C", "a core declared dead while it runs stops", "this monitor stops"),
    ("PENDING_C", "a request waiting for a dead core is answered ERR_CORE_DOWN",
     "reply_error(&ch, p->call, ERR_CORE_DOWN);"),
]
FENCE_MESSAGES = ("beat", "core_suspect", "core_dead")


@dataclass
class FenceScenario:
    name: str
    what: str
    catches: Dict[str, str]


FENCE_SCENARIOS = [
    FenceScenario("four", "core 0 decides, cores 1 and 3 wait for core 2, which may die or be late",
                  {"BUG_NO_FAIL_PENDING": "assertion violated", "BUG_LOCAL_DECIDE": "assertion violated",
                   "BUG_NO_TELL_SUSPECT": "assertion violated", "BUG_NO_SELF_STOP": "assertion violated"}),
]


def fence_params(s: FenceScenario):
    """fence_params.pml: nothing to size; the rules and messages checked in the C."""
    missing = [what for path, what, text in FENCE_RULES if text not in open(globals()[path]).read()]
    iface = open(MONITOR_IF).read()
    missing += [f"message {m} in if/monitor.if" for m in FENCE_MESSAGES
                if not re.search(r"\bmessage\s+" + m + r"\(", iface)]
    if missing:
        raise ModelMismatch("models/fence.pml no longer matches monitor/fence.c: " + "; ".join(missing))
    return f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */\n"


# -- the replicated store (models/store.pml) ---------------------------------------------
STORE_C = os.path.join(ROOT, "servers", "store", "replica.c")
STORE_IF = os.path.join(ROOT, "if", "store.if")
MONITOR_CLIENT_C = os.path.join(ROOT, "lib", "monitor_client.c")
# Rules of servers/store/replica.c that models/store.pml copies.
STORE_RULES = [
    ("a majority of the members, the leader included (MAJ)", "majority = nmembers / 2 + 1;"),
    ("the leader counts itself and every follower's cumulative ack (advance)",
     "held[n++] = last;"),
    ("a joining follower's acks start again (HELLO: acked = 0)", "c->peer = true;\n    c->peer_core = a->core;\n"
     "    c->acked = 0;"),
    ("the snapshot is the state at `applied`, then the tail after it (HELLO)",
     "err = store_snap_end_send(ch, applied, applied_term, last);\n    c->next = applied + 1;"),
    ("a follower gets the entries in order from `next` (the leader's sends to it: FIFO)",
     "const struct entry *e = at(p->next);"),
    ("a follower refuses a gap (APPEND: assert no gap)", "if (a->index != last + 1"),
    ("a fresh read waits until the replica applied the leader's commit index",
     "c->pending == P_READ_APPLY && c->wait_index <= applied"),
    ("a read-index reply covers the reads that came before its request",
     "c->pending == P_READ_INDEX && c->ri_after < a->tag"),
    ("a follower's acks never block (flush: nfull)",
     "!up.ch.idl.send(&up.ch.idl, buf, len, URPC_NONBLOCK)) {\n        up.ack_sent = last;"),
    ("commit is sent to followers when it advances", "p->commit_sent < commit"),
    # Elections (scenario "elect").
    ("a follower votes again only once it holds the leader's log up to its last entry at the snapshot (follow)",
     "caught_up = last >= up.upto;"),
    ("... and its entries after the snapshot bring it there (append)",
     "if (last >= up.upto)\n        caught_up = true;"),
    ("a vote only from a replica that may vote, for a log at least as up to date (vote)",
     "granted = may_vote() && up_to_date(a->last_term, a->last_index);"),
    ("may vote: caught up in this life, or in its first life (MAYVOTE)",
     "static bool may_vote(void) { return caught_up || first_life; }"),
    ("may stand: caught up, or in its first life once a leader's snapshot began (MAYSTAND, stand)",
     "static bool may_stand(void) { return caught_up || (first_life && reached); }"),
    ("a snapshot replacing a log that held entries ends the first life; a leader reached it (follow)",
     "if (last > 0)\n        first_life = false;   /* what it held is replaced, perhaps by less: may_vote */\n"
     "    reached = true;"),
    ("only a replica never started before is in its first life (init: fresh; restart: not)",
     "first_life = life == 0;"),
    ("up to date: a later last term, or the same and at least as long (UPTODATE)",
     "return t > mine || (t == mine && index >= last);"),
    ("a later term ends what it had, before it answers (vote: step_down, hang-up)",
     "if (leading)\n            step_down();\n        if (up.up)\n            lost_leader();"),
    ("a leader commits only from its own first entry on (advance)", "if (c <= commit || c < term_start)"),
    ("fresh reads at a leader: first entry committed and a majority with it (MAY_READ)",
     "return leading && commit >= term_start && with >= majority;"),
    ("a term's candidate is fixed: members[term % n] (stand)", "if (members[try_term % nmembers] == me)"),
    ("a new leader's first entry is of its own term (win)",
     ".term = term, .op = KV_NOP };\n    last++;\n    term_start = last;"),
    ("a win needs a majority, itself included (win)", "++ballot.granted >= majority"),
    ("at boot the first member leads term 1; a replica started again leads nothing (init, restart)",
     "leading = members[0] == me && k.seen == 0;"),
]


def store_constants():
    """What the store model takes from the C, checked; raises ModelMismatch.
    ring_appends: how many of the largest append a connection's ring holds
    (a 4 KiB frame, half each way); the model's channels hold fewer (one),
    so the leader's sends wait for room as often as they can."""
    src = open(STORE_C).read()
    problems = [f"{what}: replica.c no longer has `{text}`" for what, text in STORE_RULES if text not in src]
    h = _c_defines(URPC_H)
    frame = re.search(r"return attach\(sc, frame, (\d+), 0, SERVICE_CORE\(service\)\);", open(MONITOR_CLIENT_C).read())
    if not frame:
        problems.append("lib/monitor_client.c: the connection frame's size is no longer found")
    import atoll_idl   # tools/: the interface compiler's own sizes
    iface = atoll_idl.parse_file(STORE_IF)
    append = {m.name: m for m in iface.messages}.get("append")
    if append is None:
        problems.append("if/store.if has no `append` message")
    if problems:
        raise ModelMismatch("models/store.pml no longer matches servers/store: " + "; ".join(problems))
    slots = int(frame.group(1)) // 2 // h["URPC_LINE"] - h["URPC_CTRL_LINES"]
    per_append = -(-append.size_max() // h["URPC_PAYLOAD"])
    return {"ring_slots": slots, "append_slots": per_append, "ring_appends": slots // per_append}


@dataclass
class StoreScenario:
    name: str
    what: str
    writes: int
    reads: int
    crash: bool
    catches: Dict[str, str]
    qcap: int = 1
    large: bool = False
    elect: bool = False     # the election model (3 replicas as states; crashes of any, the leader's too)
    maxterm: int = 0
    crashes: int = 0
    suspects: int = 0       # times a follower may hang up on a live leader (a false suspicion)


STORE_SCENARIOS = [
    StoreScenario("crash", "3 replicas; 2 writes, a fresh read at follower 1; follower 2 crashes at any "
                  "point, losing everything, and is started again", 2, 1, True,
                  {"BUG_MAJORITY_HALF": "assertion violated", "BUG_STALE_READ": "assertion violated",
                   "BUG_NO_TAIL": "assertion violated", "BUG_BLOCKING_ACK": "assertion violated"}),
    StoreScenario("steady", "3 replicas, no crash; 2 writes, a fresh read at follower 1; channels of 2",
                  2, 1, False, {"BUG_STALE_READ": "assertion violated"}, qcap=2),
    StoreScenario("crash3", "3 writes, 2 reads, channels of 2, a crash and a restart", 3, 2, True, {},
                  qcap=2, large=True),
    StoreScenario("elect", "3 replicas, 1 write, a fresh read; a leader crashes once and "
                  "is started again, followers may hang up on a live leader twice; elections up to term 3",
                  1, 1, True,
                  {"BUG_VOTE_FORGETFUL": "assertion violated", "BUG_VOTE_ANY_LOG": "assertion violated",
                   "BUG_READ_NO_MAJORITY": "assertion violated", "BUG_READ_BEFORE_FIRST": "assertion violated",
                   "BUG_CAUGHT_AT_SNAPSHOT": "assertion violated", "BUG_FRESH_AFTER_REPLACE": "assertion violated",
                   "REACH_UNCAUGHT_WIN": "assertion violated"},
                  elect=True, maxterm=3, crashes=1, suspects=2),
]


def store_params(s: StoreScenario):
    facts = store_constants()
    if s.qcap > facts["ring_appends"]:
        raise ModelMismatch(f"scenario {s.name}: channels of {s.qcap} messages, but a ring holds only "
                            f"{facts['ring_appends']} appends")
    return (f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */\n"
            f"/* From the C: a connection's ring has {facts['ring_slots']} slots, an append takes up to "
            f"{facts['append_slots']}: {facts['ring_appends']} appends fit. */\n"
            f"#define WRITES {s.writes}\n#define READS {s.reads}\n#define CRASH {int(s.crash)}\n"
            f"#define QCAP {s.qcap}\n#define ELECT {int(s.elect)}\n#define MAXTERM {s.maxterm}\n"
            f"#define CRASHES {s.crashes}\n#define SUSPECTS {s.suspects}\n")

# -- capabilities across cores (models/capops.pml) ----------------------------------------
CAPOPS_C = os.path.join(ROOT, "monitor", "capops.c")
MONITOR_IF = os.path.join(ROOT, "if", "monitor.if")
# The messages of if/monitor.if the model's mtypes stand for (GRANT = cap_grant, ...).
CAPOPS_MESSAGES = ("cap_grant", "cap_grant_reply", "cap_released", "cap_revoke_call", "cap_revoke_reply",
                   "cap_retype_call", "cap_retype_reply", "cap_revoke_ask", "cap_revoke_ask_reply", "cap_give_on",
                   "cap_give_on_reply", "cap_move_call", "cap_move_reply")
# Rules of monitor/capops.c that models/capops.pml copies.
CAPOPS_RULES = [
    ("the core joins the holder set before its grant is sent (give_owned)",
     "err = coreset_add(&pool, &o->holders, core);"),
    ("no grant while the object is being revoked",
     "if (o->state == O_REVOKING)\n        return ERR_CAP_LOCKED;"),
    ("a core leaves the set (and a revoke's wait) only with no grant to it unanswered, and a core whose "
     "grant was lost only on a revoke's answer (holder_gone)",
     "if (!g || (g->count == 0 && (!g->lost || revoked))) {\n        if (g)\n"
     "            *g = (struct grant_count){ 0 };\n        coreset_del(&pool, &o->holders, core);\n"
     "        coreset_del(&pool, &o->waiting, core);"),
    ("a grant unanswered in time no longer counts, and its core is marked lost (grant_expire)",
     "grants[i].count = 0;\n            grants[i].lost = true;"),
    ("an answer later than grant_expire waited is taken as such (capops_on_grant_reply)",
     "if (!a->obj || (g && g->lost))\n            return ERR_OK;"),
    ("a release is never a revoke's answer (capops_on_released)",
     "holder_gone(o, a->src, false);"),
    ("revoke asks the holders only (start_revoke)",
     "for (int c = coreset_next(&pool, &o->holders, -1); c >= 0; c = coreset_next(&pool, &o->holders, c)) {"),
    ("the anchor goes only with no holder left and every grant answered (revoke_done)",
     "if (!err && !others_hold(o, keep)) {\n        if (coreset_count(&o->holders) == 0 && grants_unanswered(number) == 0)"),
    ("an agreed carve is reserved by retyping the anchor (capops_on_retype_call)",
     "sys_cap_retype(o->anchor, CAP_RAM, a->bytes, a->base - o->base, 1, s)"),
    ("a holder releases only with no copy and no mail left (maybe_release)",
     "if (!h->used || h->revoking || h->mail || has_children(h->root))"),
    ("a refused grant with nothing kept is followed by a release (capops_on_grant)",
     "if (err && a->obj && !held_find(a->src, a->obj) && back)"),
    ("a late answer to a revoke counts as a release, an answer to the revoke under way clears a lost grant "
     "(capops_on_revoke_reply)",
     "holder_gone(o, a->src, asked);   /* late too"),
    ("an answer to the revoke under way clears a lost grant, told by its tag (capops_on_revoke_reply)",
     "bool asked = o && o->state == O_REVOKING && a->tag == o->revoke_tag && coreset_has(&pool, &o->waiting, a->src);"),
    ("a give whose grant cannot be sent removes the core only if it added it (give_owned)",
     "if (!was_holder)\n        coreset_del(&pool, &o->holders, core);"),
    ("the agreed retype names the original and pages the owner was asked about (capops_on_retype_reply)",
     ".first = w.a.first, .dst = env, .root = w.root, .base = w.base,"),
    ("a holder's revoke of a copy from another core asks its owner after the local revoke (client_retry)",
     "if (!err && w->req == CAPREQ_REVOKE && ask_owner(w))"),
    ("an ask is refused while the object is being revoked, or from a core that is no holder "
     "(capops_on_revoke_ask)",
     "if (!o || !coreset_has(&pool, &o->holders, a->src))\n        err = ERR_NOT_PERMITTED;"
     "   /* not a holder (it released meanwhile, or a forgery) */\n    else if (o->state == O_REVOKING)\n"
     "        err = ERR_CAP_LOCKED;"),
    ("an ask's revoke asks every holder but the asker (start_revoke)",
     "if ((uint32_t)c == keep)\n                continue;   /* the asker: its copies stay */"),
    ("the asker is answered only when no other core holds a copy or has a grant unanswered, and the "
     "anchor goes only if the asker holds nothing either (revoke_done)",
     "if (!err && !others_hold(o, keep)) {\n        if (coreset_count(&o->holders) == 0 && "
     "grants_unanswered(number) == 0)\n            obj_drop_anchor(o);"),
    ("a give-on is refused while revoking or from a core that is no holder, and the owner itself records the "
     "new core and sends the grant (capops_on_give_on)",
     "if (!o || !coreset_has(&pool, &o->holders, a->src))\n        err = ERR_NOT_PERMITTED;\n"
     "    else if (o->state == O_REVOKING)\n        err = ERR_CAP_LOCKED;\n"
     "    else if (o->state == O_MOVING)\n        err = ERR_CAP_LOCKED;   /* asked again of the new owner once told */\n"
     "    else if (a->core >= ncores || a->core == my_core || a->core == a->src)"),
    ("a fenced core's grants go, then it leaves every holder set and revoke's wait (capops_core_dead)",
     "if (grants[i].obj && grants[i].core == core)\n            grants[i] = (struct grant_count){ 0 };"),
    ("... through holder_gone as a revoke's answer: a revoke may end, the anchor go (capops_core_dead)",
     "holder_gone(o, core, true);   /* no grant is left: it leaves; a revoke may end, the anchor go */"),
    ("a fenced core's reservations go (capops_core_dead)",
     "if (reserved[i].obj && reserved[i].core == core) {\n            cap_free(reserved[i].slot);"),
    ("a give-on goes through give_owned, as the owner's own give (capops_on_give_on)",
     "err = give_owned(0, &w, &lin, a->core, a->domain, a->giver, a->src, o->domain);"),
    ("a holder's domain's give of a copy from another core goes to its owner (capops_give)",
     "!capops(CAPOPS_LINEAGE, 0, cap, &lin) && (lin.root_flags & CAP_ID_FOREIGN)) {\n"
     "        give_on(handle, domain, cap, &id, &lin, core, to);"),
    ("an ask answered OK removes the revoked copy's siblings and mail on the asking core (ask_answered)",
     "if (!err && req == CAPREQ_REVOKE)\n                siblings_go(q.domain, q.slot, held_find(src, obj));"),
    ("the asker's answer is sent by revoke_done, after every asked holder answered or the wait ended",
     "monitor_cap_revoke_ask_reply_send(back, (uint16_t)w.core, (uint16_t)my_core, w.tag, err, number);"),
    ("an ask answered OK takes the owner core's copies first, while the asker holds copies (revoke_done)",
     "bool kept = obj_find(number) == o;   /* the anchor stays: the asker holds copies */\n"
     "        if (!err && kept)\n            owner_copies_go(o, w.core, w.take);"),
    ("the original is handed over only for an asker whose copy may pass it on, a type that moves and an asker still recorded, else kept "
     "(owner_copies_go)",
     "} else if (!take || !movable(o->type) || lin.root != CAPOPS_NO_SLOT || !asker_holds ||\n"
     "               capops(CAPOPS_HAND_OVER_ANCHOR, 0, o->anchor, &c)) {\n        st.owner_kept++;"),
    ("... then ownership is wanted at the asker (owner_copies_go)",
     "if (movable(o->type) && o->move == M_NONE && asker_holds)\n        o->move = M_WANTED;"),
    ("the move starts after the ask's answer, on the same route (revoke_done)",
     "if (!err && kept && o->move == M_WANTED)\n            move_try(o);"),
    ("a move starts only with every grant answered (move_try)",
     "for (uint32_t i = 0; i < MAX_GRANTS; i++)\n        if (grants[i].obj == num)\n            return;"),
    ("no anchor is dropped while moving (holder_gone)",
     "else if (o->state != O_MOVING && coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)"),
    ("a refused take-over unlocks, the anchor dropped if nobody holds (capops_on_move_reply)",
     "o->state = O_IDLE;\n        o->move = M_WANTED;\n        o->move_at = now_ns() + CAPOPS_WAIT_NS;\n"
     "        if (coreset_count(&o->holders) == 0 && grants_unanswered(a->obj) == 0)\n            obj_drop_anchor(o);"),
    ("the take-over needs the held root still there (take_over)",
     "if (!err && (!h->used || h->owner != o->peer || h->obj != o->peer_obj))\n        err = ERR_NOT_FOUND;"),
    ("asks are refused while moving and by a tombstone (capops_on_revoke_ask)",
     "else if (o->state == O_MOVING)\n        err = ERR_CAP_LOCKED;\n    else if (o->move == M_DONE)\n"
     "        err = ERR_NOT_PERMITTED;"),
]
CAPOPS_KERNEL_C = os.path.join(ROOT, "cpudriver", "cap.c")
# Rules of the kernel (cpudriver/cap.c) that models/capops.pml copies.
CAPOPS_KERNEL_RULES = [
    ("an agreed retype carves only the agreed original's agreed pages (cap_retype_agreed)",
     "if (original_of(src) != agreed->original || pb != agreed->base || pn != agreed->bytes)\n"
     "        return ERR_CAP_REMOTE;"),
    ("the owner's hand-over for a holder's revoke hands over the original its anchor hangs from "
     "(cap_hand_over_anchor)",
     "if (!is_anchor(a) || a->cap.original || !a->parent || cap_anchor_of(a->parent) != a)\n"
     "        return ERR_INVALID_ARG;\n    return cap_hand_over(a->parent, blocking);"),
]


@dataclass
class CapopsScenario:
    name: str
    what: str
    gives: int              # the owner's domain gives this many copies (to core 1 or 2)
    revoke: bool            # ... and revokes once
    own_carves: int         # ... and carves its own original this many times
    timeouts: bool          # the revoke may time out (capops_expire)
    takes: int              # each holder's domain takes, deletes and carves this many times
    deletes: int
    carves: int
    refuses: bool           # core 1 refuses one grant (its domain ended, or its quota)
    catches: Dict[str, str]
    swaps: int = 0          # each holder's domain moves another capability into a slot it asked to retype
    send_fails: int = 0     # this many of the owner's gives cannot send their grant (outbox full, no route)
    drops: int = 0          # each holder's monitor cannot send this many grant answers
    expires: int = 0        # grant_expire may forget this many unanswered grants (at any moment)
    asks: int = 0           # holder 1's domain revokes its copy through its monitor this many times
    giveons: int = 0        # holder 1's domain gives its copy on to core 2 this many times
    dies: int = 0           # core 2 may halt for good (then fenced) at any moment
    handover_refuses: int = 0   # the owner's hand-over for a holder's ask may be refused this many times


CAPOPS_SCENARIOS = [
    CapopsScenario("revoke3", "3 cores: two gives, a revoke, the owner's own carve, and on each holder a take, "
                   "a delete and a carve, one grant refused", 2, True, 1, False, 1, 1, 1, True,
                   {"BUG_RELEASE_IGNORES_GRANTS": "assertion violated", "BUG_NO_RESERVE": "assertion violated",
                    "BUG_REFUSE_SILENT": "assertion violated"}),
    CapopsScenario("release3", "3 cores: two gives, no revoke: copies taken, carved, deleted and released "
                   "while grants cross the releases, one grant refused", 2, False, 0, False, 1, 1, 1, True,
                   {"BUG_RELEASE_IGNORES_GRANTS": "assertion violated", "BUG_NO_RESERVE": "assertion violated",
                    "BUG_REFUSE_SILENT": "assertion violated"}),
    CapopsScenario("timeout3", "3 cores: two gives and a revoke that may give up waiting; late answers",
                   2, True, 1, True, 1, 1, 1, False,
                   {"BUG_RELEASE_IGNORES_GRANTS": "assertion violated", "BUG_NO_RESERVE": "assertion violated"}),
    CapopsScenario("swap3", "3 cores: one give to each holder, whose domain asks to carve a range and, while "
                   "the owner is asked, moves another capability (other pages) into the slot",
                   2, False, 1, False, 1, 0, 1, False,
                   {"BUG_RETYPE_SWAP": "assertion violated"}, swaps=1),
    CapopsScenario("sendfail3", "3 cores: three gives, one of which cannot send its grant (its core may hold "
                   "copies already), and a revoke", 3, True, 0, False, 1, 1, 0, False,
                   {"BUG_UNDO_DROPS_HOLDER": "assertion violated"}, send_fails=1),
    CapopsScenario("lost3", "3 cores: two gives (maybe to one core), a holder's answer to a grant lost and "
                   "grants expired at any moment, takes and deletes (releases), a revoke (which may time out: "
                   "a revoke's answer that came while a grant was unanswered is not counted, so a lost grant "
                   "makes the revoke wait for its bound)",
                   2, True, 0, True, 1, 1, 0, False,
                   {"BUG_EXPIRE_FORGETS": "assertion violated", "BUG_LATE_ANSWER_CLEARS_LOST": "assertion violated"},
                   drops=1, expires=2),
    CapopsScenario("ask3", "3 cores: two gives (maybe to one core), holder 1's domain revokes its copy (its "
                   "siblings on core 2 and the owner core's copies must go first, its own stays, and ownership "
                   "then moves to it; the owner's hand-over may be refused once), the owner revokes too (the two "
                   "may cross), a take and a delete on each holder (a delete may cross the move), and the revoke "
                   "may time out",
                   2, True, 0, True, 1, 1, 0, False,
                   {"BUG_ASK_EARLY": "assertion violated", "BUG_ASK_REVOKES_ASKER": "assertion violated",
                    "BUG_RELEASE_IGNORES_GRANTS": "assertion violated", "BUG_OWNER_KEEPS": "assertion violated",
                    "BUG_NO_MOVE": "assertion violated"},
                   asks=1, handover_refuses=1),
    CapopsScenario("giveon3", "3 cores: two gives (to core 1 or 2); core 1's domain gives its copy on to core 2 "
                   "through the owner, while the owner may revoke (the two cross) and may time out; a take and "
                   "a delete on each holder",
                   2, True, 0, True, 1, 1, 0, False,
                   {"BUG_GIVE_ON_DIRECT": "assertion violated", "BUG_RELEASE_IGNORES_GRANTS": "assertion violated"},
                   giveons=1),
    CapopsScenario("dead3", "3 cores: two gives, a revoke with no timeout, on each holder "
                   "a take and a delete; core 2 halts at any moment and is fenced: the revoke still ends",
                   2, True, 0, False, 1, 1, 0, False,
                   {"BUG_FENCE_KEEPS_WAITING": "assertion violated", "BUG_RELEASE_IGNORES_GRANTS": "assertion violated"},
                   dies=1),
]


def capops_params(s: CapopsScenario):
    """capops_params.pml: the scenario, after checking the rules the model copies."""
    src = open(CAPOPS_C).read()
    missing = [what for what, text in CAPOPS_RULES if text not in src]
    kernel = open(CAPOPS_KERNEL_C).read()
    missing += [what for what, text in CAPOPS_KERNEL_RULES if text not in kernel]
    iface = open(MONITOR_IF).read()
    missing += [f"message {m} in if/monitor.if" for m in CAPOPS_MESSAGES
                if not re.search(r"\bmessage\s+" + m + r"\(", iface)]
    if missing:
        raise ModelMismatch("models/capops.pml no longer matches monitor/capops.c: " + "; ".join(missing))
    lines = [f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */",
             "#define NCORES 3"]
    for name, v in (("OWNER_GIVES", s.gives), ("DO_REVOKE", s.revoke), ("OWN_CARVES", s.own_carves),
                    ("TIMEOUTS", s.timeouts), ("HOLDER_TAKES", s.takes), ("HOLDER_DELETES", s.deletes),
                    ("HOLDER_CARVES", s.carves), ("HOLDER_REFUSES", s.refuses), ("HOLDER_SWAPS", s.swaps), ("SEND_FAILS", s.send_fails),
                    ("HOLDER_DROPS", s.drops), ("EXPIRES", s.expires), ("HOLDER_ASKS", s.asks),
                    ("HOLDER_GIVEONS", s.giveons), ("DIES", s.dies), ("HANDOVER_REFUSES", s.handover_refuses)):
        lines.append(f"#define {name} {int(v)}")
    return "\n".join(lines) + "\n"


# -- moving ownership (models/capmove.pml) --------------------------------------------------
# The messages of if/monitor.if the model's mtypes stand for (MOVE = cap_move_call and its parts, ...).
CAPMOVE_MESSAGES = ("cap_move_call", "cap_move_part", "cap_move_reply", "cap_moved", "cap_moved_reply",
                    "cap_released", "cap_retype_call", "cap_retype_reply", "cap_revoke_call", "cap_revoke_reply")
# Rules of monitor/capops.c that models/capmove.pml copies.
CAPMOVE_RULES = [
    ("a move starts only from an unlocked object whose grants are all answered, and locks it (move_try)",
     "if (o->state != O_IDLE || o->move != M_WANTED || now_ns() < o->move_at)\n        return;\n"
     "    for (uint32_t i = 0; i < MAX_GRANTS; i++)\n        if (grants[i].obj == num)\n            return;"),
    ("... and locks it (move_try)", "o->state = O_MOVING;\n    o->move = M_ASKED;"),
    ("the holders and reservations go to the new owner before the sync, on one route (move_send)",
     "MOVE_HOLDER,\n                                             (uint16_t)c, 0, 0);"),
    ("... the reservations of the other holders (move_send)",
     "if (reserved[i].obj == num && reserved[i].core != n && coreset_has(&pool, &o->holders, reserved[i].core))"),
    ("a refused take-over unlocks and leaves the object as it was (capops_on_move_reply)",
     "o->state = O_IDLE;\n        o->move = M_WANTED;"),
    ("the other holders are told only after the take-over is answered (capops_on_move_reply)",
     "o->peer_obj = a->new_obj;\n    o->move = M_TELLING;"),
    ("a holder told re-homes its record (capops_on_moved)",
     "h->owner = a->owner;\n        h->obj = a->new_obj;"),
    ("a release from a holder not told yet is forwarded to the new owner (capops_on_released, move_gone)",
     "if ((o->move == M_ASKED || o->move == M_TELLING) && a->src != o->peer) {\n        move_gone(o, a->src);"),
    ("... as MOVE_GONE (move_gone)",
     "monitor_cap_move_part_send(to, o->peer, (uint16_t)my_core, o->move_tag, obj_number(o), MOVE_GONE,"),
    ("the new owner is unlocked only when every holder answered (capops_on_moved_reply)",
     "coreset_del(&pool, &o->waiting, a->src);\n    coreset_del(&pool, &o->holders, a->src);\n"
     "    if (coreset_count(&o->waiting) == 0)\n        move_finish(o);"),
    ("MOVE_DONE is sent by move_finish, which keeps the tombstone",
     "MOVE_DONE, 0, 0, 0);\n    o->move = M_DONE;\n    o->state = O_IDLE;"),
    ("the take-over re-reserves the moved reservations under the new anchor (take_over)",
     "sys_cap_retype(anchor, CAP_RAM, r->bytes, r->base - o->base, 1, s)"),
    ("the take-over is refused if the root was released meanwhile (take_over)",
     "if (!err && (!h->used || h->owner != o->peer || h->obj != o->peer_obj))\n        err = ERR_NOT_FOUND;"),
    ("no anchor is dropped while moving: the move's end decides (holder_gone)",
     "else if (o->state != O_MOVING && coreset_count(&o->holders) == 0 && grants_unanswered(obj_number(o)) == 0)"),
    ("the new owner unlocks at MOVE_DONE and drops its anchor if nobody holds (capops_on_move_part)",
     "o->state = O_IDLE;\n        o->move = M_NONE;\n        st.moved_in++;"),
    ("retype agreements are refused while moving (capops_on_retype_call)",
     "else if (o->state == O_REVOKING || o->state == O_MOVING)\n        err = ERR_CAP_LOCKED;"),
    ("a moved-in copy's revoke is refused while locked, else revokes the holders (revoke_moved)",
     "if (o->state != O_IDLE) {\n        client_cap_reply(w->handle, w->req, ERR_CAP_LOCKED);"),
    ("a revoke call for a record this core does not have is answered as released (capops_on_revoke_call)",
     "/* Released already (the release is on its way), or never held. */"),
]
CAPMOVE_KERNEL_RULES = [
    ("the take-over makes a FOREIGN root of memory an original (cap_take_over)",
     "c->cap.relations &= (uint8_t)~CAP_REL_FOREIGN;"),
    ("a kernel retypes an original's range only where nothing original lies (lineage_overlaps)",
     "if (cur->cap.original && is_memory_type(cur->cap.type) &&"),
]


@dataclass
class CapmoveScenario:
    name: str
    what: str
    tries: int              # core 0 starts a move this many times (a refused one is tried again)
    deletes: int            # each holder's domain deletes its copy this many times
    own_carves: int         # core 1's domain carves alone, once ownership is there
    holder_carves: int      # core 2's domain asks its owner to carve range 1
    revokes: int            # core 1's domain revokes its copy through its monitor
    catches: Dict[str, str]


CAPMOVE_SCENARIOS = [
    CapmoveScenario("move3", "3 cores: core 0's original handed over, copies on cores 1 and 2 (core 2 carved range 0); "
                    "ownership moves to core 1 (tried twice) while both domains may delete their copies, core 2 "
                    "asks to carve range 1, core 1 carves alone and revokes",
                    2, 1, 1, 1, 1,
                    {"BUG_DONE_EARLY": "assertion violated", "BUG_NO_FORWARD": "assertion violated",
                     "BUG_NO_RESERVE": "assertion violated"}),
]


def capmove_params(s: CapmoveScenario):
    """capmove_params.pml: the scenario, after checking the rules the model copies."""
    src = open(CAPOPS_C).read()
    missing = [what for what, text in CAPMOVE_RULES if text not in src]
    kernel = open(CAPOPS_KERNEL_C).read()
    missing += [what for what, text in CAPMOVE_KERNEL_RULES if text not in kernel]
    iface = open(MONITOR_IF).read()
    missing += [f"message {m} in if/monitor.if" for m in CAPMOVE_MESSAGES
                if not re.search(r"\bmessage\s+" + m + r"\(", iface)]
    if missing:
        raise ModelMismatch("models/capmove.pml no longer matches monitor/capops.c: " + "; ".join(missing))
    lines = [f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */"]
    for name, v in (("MOVE_TRIES", s.tries), ("DELETES", s.deletes), ("OWN_CARVES", s.own_carves),
                    ("HOLDER_CARVES", s.holder_carves), ("REVOKES", s.revokes)):
        lines.append(f"#define {name} {int(v)}")
    return "\n".join(lines) + "\n"


# -- TLB shootdown by messages (models/shootdown.pml) ----------------------------------------
SPAN_C = os.path.join(ROOT, "monitor", "span.c")
MONITOR_PROTO_H = os.path.join(ROOT, "lib", "include", "atoll", "monitor_proto.h")
VSPACE_C = os.path.join(ROOT, "cpudriver", "vspace.c")
MCAST_PLAN_C = os.path.join(ROOT, "monitor", "mcast_plan.c")
# The messages of if/monitor.if the model's CALL and REPLY stand for.
SHOOTDOWN_MESSAGES = ("tlb_call", "tlb_reply")
# Rules of monitor/span.c (and the kernel's unmap) that models/shootdown.pml copies.
SHOOTDOWN_RULES = [
    ("the home asks only the cores that ran the domain, not itself (tlb_request)",
     "span_cores(domain, cores);\n    BITS_CLR(cores, my_core);"),
    ("a core forgets before it answers or forwards (tlb_on_call)",
     "errval_t err = sys_tlb_invalidate(SLOT_KERNEL, a->home, a->domain, a->vaddr, a->pages, &found);"),
    ("unicast asks the next core only after an answer (tlb_on_reply)",
     "if (!s->err && s->protocol == TLB_UNICAST && !bits_empty(s->to_send))"),
    ("a shootdown is answered only when no core it asked is waiting (tlb_on_reply)",
     "if (bits_empty(s->waiting))\n            shoot_done(s, s->err);"),
    ("a multicast leader is the lowest core of its node, the others its fwd (shoot_multicast)",
     "if (leader < 0)\n                leader = c;\n            else\n                BITS_SET(fwd, c);"),
    ("the home's unmap clears the entry and flushes this core first (vspace_unmap)",
     "    cap->mapped = 0;\n    flush_tlb();"),
    ("numa-multicast sends its plan in order, a leader with its fwd (shoot_multicast)",
     "err = shoot_send(s, plan[i].core, bits_empty(plan[i].fwd) ? 0 : plan[i].fwd, plan[i].fanout);"),
    ("numa-multicast: another node's leader forwards to the rest of its node (mcast_plan)",
     "if (HAS(in->targets, c) && c != in->home && c != (uint32_t)leader && in->core_node[c] == n)"),
    ("numa-multicast: the home's own node last (mcast_plan)",
     "if (HAS(in->targets, c) && c != in->home && (nnodes == 1 || in->core_node[c] == home_node))\n"
     "            SET(own, c);"),
    # The model's nodes hold at most 2 cores, never more than MCAST_FANOUT:
    # there each core is asked directly, and a subtree leader (more cores)
    # is a leader like a node's, answering only when its part has.
    ("numa-multicast: at most MCAST_FANOUT cores are asked each directly (mcast_split)",
     "uint32_t groups = n < fanout ? n : fanout, sends = 0, at = 0;"),
    ("a subtree leader asks its part as a node leader does, and answers the same way (tlb_on_call)",
     "s->err = shoot_send(s, sub[i].core, bits_empty(sub[i].fwd) ? 0 : sub[i].fwd, sub[i].fanout);"),
]


@dataclass
class ShootdownScenario:
    name: str
    what: str
    protocol: str           # the enum tlb_protocol name in monitor_proto.h
    catches: Dict[str, str]


SHOOTDOWN_SCENARIOS = [
    ShootdownScenario("unicast3", "3 cores, two domains homed on cores 0 and 1 unmapping at once, unicast",
                      "TLB_UNICAST", {"BUG_REPLY_BEFORE_INVALIDATE": "assertion violated",
                                      "BUG_BLOCKING_WAIT": "invalid end state"}),
    ShootdownScenario("broadcast3", "the same, broadcast", "TLB_BROADCAST",
                      {"BUG_REPLY_BEFORE_INVALIDATE": "assertion violated",
                       "BUG_BLOCKING_WAIT": "invalid end state"}),
    ShootdownScenario("multicast3", "the same, multicast (one node: a leader forwards to the third core)",
                      "TLB_MULTICAST", {"BUG_REPLY_BEFORE_INVALIDATE": "assertion violated",
                                        "BUG_LEADER_EARLY": "assertion violated",
                                        "BUG_BLOCKING_WAIT": "invalid end state"}),
    ShootdownScenario("numa3", "the same, numa-multicast over two nodes {0} and {1, 2}: home 0 asks core 1, "
                      "which forwards to 2; home 1 asks core 0, then core 2 directly", "TLB_NUMA_MULTICAST",
                      {"BUG_REPLY_BEFORE_INVALIDATE": "assertion violated",
                       "BUG_LEADER_EARLY": "assertion violated",
                       "BUG_BLOCKING_WAIT": "invalid end state"}),
]


def tlb_protocols():
    """enum tlb_protocol of monitor_proto.h: {name: value}."""
    src = open(MONITOR_PROTO_H).read()
    m = re.search(r"enum tlb_protocol \{(.*?)\};", src, re.S)
    if not m:
        raise ModelMismatch("enum tlb_protocol is not in lib/include/atoll/monitor_proto.h")
    out, value = {}, -1
    for line in m.group(1).splitlines():
        line = re.sub(r"/\*.*?\*/", "", line).strip().rstrip(",")
        if not line:
            continue
        name, _, v = line.partition("=")
        value = int(v.strip(), 0) if v.strip() else value + 1
        out[name.strip()] = value
    return out


def shootdown_params(s: ShootdownScenario):
    """shootdown_params.pml: the scenario, after checking the rules the model copies."""
    src = open(SPAN_C).read() + open(VSPACE_C).read() + open(MCAST_PLAN_C).read()
    missing = [what for what, text in SHOOTDOWN_RULES if text not in src]
    iface = open(MONITOR_IF).read()
    missing += [f"message {m} in if/monitor.if" for m in SHOOTDOWN_MESSAGES
                if not re.search(r"\bmessage\s+" + m + r"\(", iface)]
    protos = tlb_protocols()
    missing += [f"{p} in enum tlb_protocol" for p in ("TLB_UNICAST", "TLB_BROADCAST", "TLB_MULTICAST",
                                                       "TLB_NUMA_MULTICAST") if p not in protos]
    if missing:
        raise ModelMismatch("models/shootdown.pml no longer matches monitor/span.c: " + "; ".join(missing))
    lines = [f"/* Generated by tools/atoll_models.py for scenario {s.name!r}: {s.what}. */",
             "#define NCORES 3", "#define QCAP 6"]
    lines += [f"#define {p} {protos[p]}" for p in ("TLB_UNICAST", "TLB_BROADCAST", "TLB_MULTICAST",
                                                   "TLB_NUMA_MULTICAST")]
    lines.append(f"#define PROTO {protos[s.protocol]}")
    return "\n".join(lines) + "\n"


def check(model, scenario, bugs=()):
    """Check one scenario of a model (with bug variants put back)."""
    if model == "urpc":
        s = {x.name: x for x in URPC_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "urpc.pml"), urpc_params(s), bugs, large=s.large)
    elif model == "mesh":
        s = {x.name: x for x in MESH_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "mesh.pml"), mesh_params(s), bugs, large=s.large)
    elif model == "restart":
        s = {x.name: x for x in RESTART_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "restart.pml"), restart_params(s), bugs)
    elif model == "fence":
        s = {x.name: x for x in FENCE_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "fence.pml"), fence_params(s), bugs)
    elif model == "store":
        s = {x.name: x for x in STORE_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "store.pml"), store_params(s), bugs, large=s.large)

    elif model == "capops":
        s = {x.name: x for x in CAPOPS_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "capops.pml"), capops_params(s), bugs)
    elif model == "capmove":
        s = {x.name: x for x in CAPMOVE_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "capmove.pml"), capmove_params(s), bugs)
    elif model == "shootdown":
        s = {x.name: x for x in SHOOTDOWN_SCENARIOS}[scenario]
        r = run_spin(os.path.join(MODELS, "shootdown.pml"), shootdown_params(s), bugs)
    else:
        raise ValueError(f"unknown model {model!r}")
    r.scenario = scenario
    return r


# The protocol as lib/urpc had it before issue 16: both bugs the model found.
URPC_AS_IT_WAS = ("BUG_ACK_WRAP", "BUG_IDLE_FLUSH_TOLD")


def all_checks(large=False):
    """(model, scenario, bugs, expected error or None) for every check."""
    out = []
    for s in URPC_SCENARIOS:
        if s.large != large:
            continue
        out.append(("urpc", s.name, (), None))
        out += [("urpc", s.name, (b,), why) for b, why in s.catches.items()]
    if not large:
        out.append(("urpc", "batch", URPC_AS_IT_WAS, "invalid end state"))
    for s in MESH_SCENARIOS:
        if s.large != large:
            continue
        out.append(("mesh", s.name, (), None))
        out += [("mesh", s.name, (b,), why) for b, why in s.catches.items()]
    if not large:
        for s in RESTART_SCENARIOS:
            out.append(("restart", s.name, (), None))
            out += [("restart", s.name, (b,), why) for b, why in s.catches.items()]
        for s in FENCE_SCENARIOS:
            out.append(("fence", s.name, (), None))
            out += [("fence", s.name, (b,), why) for b, why in s.catches.items()]
    for s in STORE_SCENARIOS:
        if s.large != large:
            continue
        out.append(("store", s.name, (), None))
        out += [("store", s.name, (b,), why) for b, why in s.catches.items()]

    if not large:
        for s in CAPOPS_SCENARIOS:
            out.append(("capops", s.name, (), None))
            out += [("capops", s.name, (b,), why) for b, why in s.catches.items()]
        for s in CAPMOVE_SCENARIOS:
            out.append(("capmove", s.name, (), None))
            out += [("capmove", s.name, (b,), why) for b, why in s.catches.items()]
        for s in SHOOTDOWN_SCENARIOS:
            out.append(("shootdown", s.name, (), None))
            out += [("shootdown", s.name, (b,), why) for b, why in s.catches.items()]
    return out
