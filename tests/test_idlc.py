"""The interface compiler tools/idlc (docs/interfaces.md): every rejection
rule gives 'file:line: reason' and status 1; the header it makes from every
if/*.if compiles with the guest's flags; its message limit agrees with URPC.
What the generated code does is tested on the host by tests/host/test_idl.c
and tests/host/fuzz_idl.c (tests/test_host_units.py runs them).

    /usr/bin/python3 -m pytest -q tests/test_idlc.py
"""
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
IDLC = ROOT / "tools" / "idlc"
sys.path.insert(0, str(ROOT / "tools"))
import atoll_idl  # noqa: E402


def idlc(tmp_path, text, name="t", extra=("--check",)):
    src = tmp_path / f"{name}.if"
    src.write_text(text)
    proc = subprocess.run([sys.executable, str(IDLC), str(src), *extra], capture_output=True,
                          text=True, timeout=60)
    return proc, str(src)


def iface(body, name="t"):
    return f"interface {name} {{\n{body}\n}}\n"


# (name, .if text, line of the error, words the reason must contain)
BAD = [
    ("duplicate-message", iface("message a(uint32 x);\nmessage a(uint8 y);"), 3,
     "duplicate name 'a' (first declared on line 2)"),
    ("duplicate-rpc-message", iface("message a();\nrpc a(in uint32 x);"), 3, "duplicate name 'a'"),
    ("duplicate-arg", iface("message a(uint32 x,\n uint8 x);"), 3,
     "duplicate argument name 'x' in 'a' (first on line 2)"),
    ("duplicate-in-out", iface("rpc a(in uint32 x, out uint32 x);"), 2,
     "duplicate argument name 'x' in 'a'"),
    ("bytes-len-clash", iface("message a(bytes d, uint32 d_len);"), 2,
     "clashes with the length of bytes argument 'd'"),
    ("generated-clash", iface("message f_call();\nrpc f();"), 3,
     "generates 't_f_call', which message 'f_call' generates too"),
    ("generated-clash-api", iface("message decode();"), 2, "generates 't_decode'"),
    ("unknown-type", iface("message a(uint32 x, float y);"), 2, "unknown type 'float'"),
    ("unknown-type-int", iface("\n\nmessage a(int x);"), 4, "unknown type 'int'"),
    ("bound-zero", iface("message a(string<0> s);"), 2, "bad bound 0 for string: must be 1..65535"),
    ("bound-huge", iface("message a(bytes<65536> b);"), 2, "bad bound 65536 for bytes"),
    ("bound-not-number", iface("message a(string<n> s);"), 2, "bad bound for string: expected a number"),
    ("bound-on-int", iface("message a(uint32<4> x);"), 2, "type 'uint32' takes no bound"),
    ("bound-unclosed", iface("message a(string<4 s);"), 2, "expected '>' after the bound"),
    ("too-big", iface("message a(bytes<3579> b);"), 2,
     "message 'a' can be 3585 bytes encoded, more than URPC_MSG_MAX (3584)"),
    ("too-big-defaults", iface("message a(string s, bytes b, string c, bytes d);"), 2,
     "more than URPC_MSG_MAX"),
    ("too-big-reply", iface("rpc r(in uint8 x,\n out string<2000> a, out string<2000> b);"), 2,
     "message 'r_reply' can be"),
    ("too-many-types", iface("\n".join(f"rpc r{i}();" for i in range(128))), 129,
     "too many message types: 256, at most 255"),
    ("keyword-message", iface("message int();"), 2, "message name 'int' is a reserved word in C"),
    ("keyword-arg", iface("message a(uint32 switch);"), 2,
     "argument name 'switch' is a reserved word in C"),
    ("keyword-arg-bool", iface("rpc a(out bool bool);"), 2, "argument name 'bool' is a reserved word"),
    ("keyword-interface", "interface while { message a(); }\n", 1, "reserved word in C"),
    ("idl-prefix", iface("message a(uint32 idl_buf);"), 2, "the prefix idl_ is reserved"),
    ("underscore", iface("message _a();"), 2, "bad message name '_a'"),
    ("name-mismatch", "interface other { message a(); }\n", 1,
     "interface 'other' must be declared in other.if, not t.if"),
    ("empty-interface", iface(""), 1, "declares no message or rpc"),
    ("empty-file", "// nothing\n", 2, "no interface declared"),
    ("missing-semicolon", iface("message a()\nmessage b();"), 3, "expected ';' after the declaration"),
    ("direction-in-message", iface("message a(in uint32 x);"), 2, "'in' only in an rpc"),
    ("no-direction-in-rpc", iface("rpc a(uint32 x);"), 2, "starts with 'in' or 'out'"),
    ("bad-keyword", iface("struct a();"), 2, "expected 'message' or 'rpc'"),
    ("idempotent-message", iface("idempotent message a();"), 2, "'idempotent' marks an rpc, found 'message'"),
    ("bad-character", iface("message a(uint32 x); # no"), 2, "unexpected character '#'"),
    ("unterminated", "interface t {\n message a();\n", 3, "missing '}'"),
    ("two-interfaces", iface("message a();") + "interface u { }\n", 4, "only one interface per file"),
    ("missing-arg-name", iface("message a(uint32);"), 2, "expected an argument name, found ')'"),
]


@pytest.mark.parametrize("text,line,reason", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_rejects(tmp_path, text, line, reason):
    proc, src = idlc(tmp_path, text)
    assert proc.returncode == 1, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"{src}:{line}: "), first
    assert reason in first, first


def test_rejected_file_writes_nothing(tmp_path):
    out = tmp_path / "out" / "t_if.h"
    proc, _ = idlc(tmp_path, iface("message a(float x);"), extra=("-o", str(out)))
    assert proc.returncode == 1
    assert not out.exists()


GOOD = iface("""
    message big(bytes<3578> b);              // exactly 3584 bytes encoded
    message s(string<3577> s);               // 4 + 2 + 3577 + 1
    rpc register(in string name, out errval err);   // an rpc's name is always suffixed
    message bytes(uint64 bytes, cap cap);    // type names are fine as names
""")


def test_accepts_limits(tmp_path):
    proc, _ = idlc(tmp_path, GOOD)
    assert proc.returncode == 0, proc.stderr
    proc, _ = idlc(tmp_path, iface("\n".join(f"rpc r{i}();" for i in range(127)) + "\nmessage m();"))
    assert proc.returncode == 0, proc.stderr   # 255 types


def test_numbering_and_sizes():
    i = atoll_idl.parse(iface("message a(uint8 x);\nrpc b(in string<3> s, out bool f);\n"
                              "message c(cap k, bytes<5> d, errval e, int64 g);"), "t.if", "t")
    assert [(m.name, m.number, m.size_max()) for m in i.messages] == [
        ("a", 1, 5), ("b_call", 2, 4 + 2 + 3 + 1), ("b_reply", 3, 5),
        ("c", 4, 4 + 32 + 2 + 5 + 4 + 8)]


def test_idempotent_rpcs_are_marked_in_the_header():
    """`idempotent rpc` (docs/restart.md): a constant per rpc that the
    reconnecting client library takes; the wire does not change."""
    text = iface("idempotent rpc get(in uint32 k, out uint64 v);\nrpc put(in uint32 k, in uint64 v);")
    i = atoll_idl.parse(text, "t.if", "t")
    assert [(r.name, r.idempotent) for r in i.rpcs()] == [("get", True), ("put", False)]
    h = atoll_idl.generate(i)
    assert "    t_get_idempotent = 1," in h and "    t_put_idempotent = 0," in h
    plain = atoll_idl.parse(iface("rpc get(in uint32 k, out uint64 v);\nrpc put(in uint32 k, in uint64 v);"),
                            "t.if", "t")
    assert [m.size_max() for m in i.messages] == [m.size_max() for m in plain.messages]


def guest_compile(header, tmp_path):
    inc = subprocess.run(["gcc", "-print-file-name=include"], capture_output=True, text=True,
                         check=True).stdout.strip()
    c = tmp_path / "use.c"
    c.write_text(f'#include "{header}"\n')
    return subprocess.run(
        ["gcc", "-std=c11", "-ffreestanding", "-nostdinc", "-isystem", inc, "-Iinclude",
         "-Ilib/include", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
         "-mgeneral-regs-only", "-mno-red-zone", str(c)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("src", sorted(p.name for p in (ROOT / "if").glob("*.if")))
def test_header_compiles_for_the_guest(tmp_path, src):
    out = tmp_path / (src[:-3] + "_if.h")
    proc = subprocess.run([sys.executable, str(IDLC), f"if/{src}", "-o", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    cc = guest_compile(out, tmp_path)
    assert cc.returncode == 0, cc.stderr


def test_header_compiles_for_limits(tmp_path):
    out = tmp_path / "t_if.h"
    proc, _ = idlc(tmp_path, GOOD, extra=("-o", str(out)))
    assert proc.returncode == 0, proc.stderr
    cc = guest_compile(out, tmp_path)
    assert cc.returncode == 0, cc.stderr


def test_test_if_api():
    """The generated API has the documented shape (docs/interfaces.md)."""
    text = atoll_idl.generate(atoll_idl.parse_file(str(ROOT / "if" / "test.if")), "if/test.if")
    flat = re.sub(r"\s+", " ", text)
    for proto in [
        "static inline errval_t test_lookup_rpc(struct idl_chan *idl_ch, const char *name, "
        "errval_t *err, uint32_t *core, uint64_t *service_id)",
        "static inline errval_t test_echo_rpc(struct idl_chan *idl_ch, const uint8_t *data, "
        "size_t data_len, const char *tag, const uint8_t **data_back, size_t *data_back_len, "
        "const char **tag_back, uint8_t *idl_replybuf, size_t idl_replybuf_size)",
        "static inline errval_t test_give_send(struct idl_chan *idl_ch, uint64_t frame, "
        "uint64_t bytes)",
        "static inline errval_t test_give_encode(uint8_t *idl_buf, size_t idl_size, "
        "size_t *idl_len, const struct cap_wire *frame, uint64_t bytes)",
        "static inline errval_t test_decode(const uint8_t *msg, size_t len, struct test_msg *out)",
        "static inline errval_t test_dispatch(struct idl_chan *ch, const struct test_handlers *h, "
        "const uint8_t *msg, size_t len)",
        "static inline errval_t test_serve_one(struct idl_chan *ch, "
        "const struct test_handlers *h, unsigned flags)",
        "errval_t (*lookup_call)(struct idl_chan *ch, const struct test_lookup_call_args *a);",
        "enum test_msg_type { test_ints = 1,",
    ]:
        assert proto in flat, proto


def test_limit_agrees_with_urpc():
    urpc = (ROOT / "lib/include/atoll/urpc.h").read_text()
    payload = int(re.search(r"#define URPC_PAYLOAD (\d+)", urpc).group(1))
    frags = int(re.search(r"#define URPC_MAX_FRAGS (\d+)", urpc).group(1))
    idl = (ROOT / "lib/include/atoll/idl.h").read_text()
    idl_max = int(re.search(r"#define IDL_MSG_MAX (\d+)u", idl).group(1))
    assert payload * frags == atoll_idl.MSG_MAX == idl_max
