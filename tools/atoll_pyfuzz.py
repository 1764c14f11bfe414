"""A small coverage-guided fuzzer for the Python readers of tools/ (the
topology specification and hwloc XML readers of tools/topology.py), the
Python half of make fuzz (docs/fuzzing.md). Standard library only: AFL++
instruments C, and the Python tools run on Debian's python3 without PyPI.

Coverage is the set of (file, previous line, line) arcs executed in the
modules under test, collected with sys.settrace; an input that reaches a new
arc joins the queue. Inputs are mutated AFL-style (bit flips, random bytes,
deletions, duplications, insertions, dictionary tokens, splices) and decoded
as Latin-1, so every byte string is some text. A target's documented
exceptions (TopologyError) are answers; any other exception is a crash,
saved with its traceback.

    import atoll_pyfuzz
    stats = atoll_pyfuzz.run("topology_spec", seconds=60, out_dir="build/fuzz/out/topology_spec")
"""
import dataclasses
import os
import random
import sys
import time
import traceback
from typing import Callable, Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import atoll_run  # noqa: E402
import topology  # noqa: E402

CORPUS = os.path.join(ROOT, "fuzz", "corpus")
WATCHED = {os.path.abspath(topology.__file__), os.path.abspath(atoll_run.__file__)}


def _spec(text):
    """A synthetic string into a Topology and on into a QEMU machine."""
    t = topology.parse_synthetic(text)
    t.summary()
    t.distances()
    m = t.to_machine(accel="tcg")
    assert m.smp == t.smp, (m.smp, t.smp)
    if m.numa:
        assert sum(n.mem for n in m.numa) == m.mem
        assert sorted(c for n in m.numa for c in n.cpus) == list(range(m.smp))
    atoll_run.qemu_command(m, "x.iso")


def _xml(text):
    """An hwloc XML document into a Topology and on into a QEMU machine."""
    t = topology.parse_xml(text)
    t.summary()
    t.distances()
    m = t.to_machine(accel="tcg")
    assert m.smp == t.smp, (m.smp, t.smp)
    atoll_run.qemu_command(m, "x.iso")


@dataclasses.dataclass
class Target:
    name: str
    fn: Callable[[str], None]
    expected: Tuple[type, ...]          # documented refusals
    dictionary: List[str]


TARGETS: Dict[str, Target] = {
    "topology_spec": Target("topology_spec", _spec, (topology.TopologyError, atoll_run.ConfigError),
                            ["pack:", "numa:", "core:", "pu:", "l3:", "l2:", "l1d:", "l1i:", "[numa]",
                             "(memory=", "MiB)", "GiB", "(size=", " ", "2", "64", "(", ")", "[", "]"]),
    "topology_xml": Target("topology_xml", _xml, (topology.TopologyError, atoll_run.ConfigError),
                           ['<object type="', 'Package', 'NUMANode', 'Core', 'PU', 'L3Cache', '"/>',
                            '</object>', 'cpuset="0x', 'nodeset="0x', 'os_index="', 'local_memory="',
                            '<distances2 ', 'nbobjs="', '<indexes', '<u64values', '0x0000000f',
                            '</topology>', 'complete_cpuset="0x']),
}


def _code_lines():
    """Executable lines of the watched modules (the coverage denominator)."""
    lines = set()
    for path in WATCHED:
        code = compile(open(path).read(), path, "exec")
        todo = [code]
        while todo:
            c = todo.pop()
            lines |= {(path, ln) for _, _, ln in c.co_lines() if ln}
            todo += [k for k in c.co_consts if hasattr(k, "co_lines")]
    return lines


class _Tracer:
    def __init__(self):
        self.arcs = set()
        self.prev = {}

    def global_trace(self, frame, event, arg):
        if frame.f_code.co_filename in WATCHED:
            self.prev[id(frame)] = 0
            return self.local_trace
        return None

    def local_trace(self, frame, event, arg):
        if event == "line":
            key = id(frame)
            self.arcs.add((frame.f_code.co_filename, self.prev.get(key, 0), frame.f_lineno))
            self.prev[key] = frame.f_lineno
        return self.local_trace


def execute(target, data):
    """Run one input; (arcs, None) or (arcs, traceback text) for a crash."""
    tr = _Tracer()
    sys.settrace(tr.global_trace)
    crash = None
    try:
        target.fn(data.decode("latin-1"))
    except target.expected:
        pass
    except RecursionError:
        crash = traceback.format_exc()
    except Exception:   # anything undocumented is a finding
        crash = traceback.format_exc()
    finally:
        sys.settrace(None)
    return tr.arcs, crash


def mutate(rng, data, queue, dictionary, max_len):
    b = bytearray(data)
    for _ in range(1 << rng.randrange(4)):
        op = rng.randrange(9)
        if op == 0 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.choice(b" \t\n0123456789:()[]<>=\"'/xabcdefgkmKMG#&;-,.")
        elif op == 2 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randrange(1, 16)]
        elif op == 3 and b:
            i = rng.randrange(len(b))
            chunk = b[i:i + rng.randrange(1, 32)]
            j = rng.randrange(len(b) + 1)
            b[j:j] = chunk
        elif op == 4:
            j = rng.randrange(len(b) + 1)
            b[j:j] = rng.choice(dictionary).encode()
        elif op == 5:
            j = rng.randrange(len(b) + 1)
            b[j:j] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        elif op == 6 and len(queue) > 1:
            other = rng.choice(queue)
            i = rng.randrange(len(b) + 1)
            j = rng.randrange(len(other) + 1)
            b = b[:i] + other[j:]
        elif op == 7 and b:
            # a number made bigger, smaller or odd
            i = rng.randrange(len(b))
            if chr(b[i]).isdigit():
                b[i:i + 1] = rng.choice([b"0", b"1", b"3", b"255", b"256", b"4096", b"99999999999", b"-1"])
        elif op == 8 and b:
            i = rng.randrange(len(b))
            b[i] = rng.randrange(256)
    return bytes(b[:max_len])


@dataclasses.dataclass
class Stats:
    target: str
    execs: int = 0
    seconds: float = 0.0
    seeds: int = 0
    corpus: int = 0             # queue entries (seeds that ran + finds)
    found: int = 0              # inputs that reached new arcs
    arcs: int = 0
    lines: int = 0              # lines of the watched modules executed
    total_lines: int = 0
    crashes: int = 0
    crash_files: List[str] = dataclasses.field(default_factory=list)
    # per watched file (relative to the repository): lines run by the seeds,
    # by the seeds and the finds, and its executable lines
    by_file: Dict[str, Tuple[int, int, int]] = dataclasses.field(default_factory=dict)


def seeds_of(name):
    d = os.path.join(CORPUS, name)
    return [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]


def run(name, seconds, out_dir=None, rng_seed=1, max_len=1 << 16, replay_only=False, execs=None):
    """Fuzz one target for `seconds`, or until `execs` executions if that
    comes first (replay_only: the seeds only)."""
    target = TARGETS[name]
    rng = random.Random(rng_seed)
    st = Stats(name)
    total = _code_lines()
    st.total_lines = len(total)
    seen, queue, crash_kinds = set(), [], set()
    t0 = time.monotonic()

    def one(data, is_seed=False):
        arcs, crash = execute(target, data)
        st.execs += 1
        new = arcs - seen
        if crash:
            kind = crash.strip().splitlines()[-1][:200] + "|" + crash.strip().splitlines()[-3][:200]
            if kind not in crash_kinds:
                crash_kinds.add(kind)
                st.crashes += 1
                if out_dir:
                    d = os.path.join(out_dir, "crashes")
                    os.makedirs(d, exist_ok=True)
                    path = os.path.join(d, f"crash-{st.crashes:03}")
                    with open(path, "wb") as f:
                        f.write(data)
                    with open(path + ".txt", "w") as f:
                        f.write(crash)
                    st.crash_files.append(path)
        if new or is_seed:
            seen.update(new)
            queue.append(data)
            if new and not is_seed:
                st.found += 1
                if out_dir:
                    d = os.path.join(out_dir, "queue")
                    os.makedirs(d, exist_ok=True)
                    with open(os.path.join(d, f"id-{st.found:06}"), "wb") as f:
                        f.write(data)
        return crash

    for s in seeds_of(name):
        st.seeds += 1
        one(s, is_seed=True)
    seed_lines = {(f, ln) for f, _, ln in seen}
    if not replay_only:
        deadline = t0 + seconds
        while time.monotonic() < deadline and (execs is None or st.execs < execs):
            parent = rng.choice(queue)
            one(mutate(rng, parent, queue, target.dictionary, max_len))
    st.seconds = time.monotonic() - t0
    st.corpus = len(queue)
    st.arcs = len(seen)
    lines = {(f, ln) for f, _, ln in seen}
    st.lines = len(lines)
    for path in sorted(WATCHED):
        rel = os.path.relpath(path, ROOT)
        st.by_file[rel] = (len({x for x in seed_lines if x[0] == path}), len({x for x in lines if x[0] == path}),
                           len({x for x in total if x[0] == path}))
    return st
