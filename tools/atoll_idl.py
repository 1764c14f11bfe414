"""The interface description language of Atoll and its C generator.

An interface file (if/<name>.if) declares one interface: one-way messages
and RPCs with typed arguments. generate() turns it into one C header of
static inline functions: encoders, a decoder, send/rpc stubs over a generic
struct idl_chan (lib/include/atoll/idl.h) and a handler-table dispatcher.
docs/interfaces.md describes the language, the wire format and the API;
tools/idlc is the command line. Standard library only.
"""
import os
import re

# URPC_MSG_MAX of lib/include/atoll/urpc.h (= IDL_MSG_MAX of atoll/idl.h);
# tests/test_idlc.py checks they agree.
MSG_MAX = 3584
# An interface declared `transport lmp` travels in local messages
# (lib/lmpchan.c): at most LMP_MSG_MAX bytes (LMPCHAN_MSG_MAX) and one
# capability per message (an LMP message carries one).
LMP_MSG_MAX = 255
TRANSPORTS = ("urpc", "lmp")
HEADER_SIZE = 4          # uint16 type + uint16 reserved
MAX_TYPES = 255
DEFAULT_BOUND = 1024
MAX_BOUND = 65535        # lengths travel as uint16
CAP_WIRE_SIZE = 32

# name -> (C type, bytes on the wire) for the fixed-width types.
FIXED = {
    "uint8": ("uint8_t", 1), "uint16": ("uint16_t", 2), "uint32": ("uint32_t", 4),
    "uint64": ("uint64_t", 8), "int32": ("int32_t", 4), "int64": ("int64_t", 8),
    "bool": ("bool", 1), "errval": ("errval_t", 4),
}
BOUNDED = ("string", "bytes")
TYPES = tuple(FIXED) + BOUNDED + ("cap",)

# Names that may not appear bare in the generated C: C11 keywords and the
# macros/typedefs every generated header sees.
C_RESERVED = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic
_Imaginary _Noreturn _Static_assert _Thread_local
bool true false NULL asm typeof alignas alignof noreturn static_assert offsetof
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t size_t uintptr_t
intptr_t ptrdiff_t errval_t
""".split())
IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class IdlError(Exception):
    """A rejected interface file: str() is 'file:line: what'."""

    def __init__(self, path, line, what):
        super().__init__(f"{path}:{line}: {what}")
        self.path, self.line, self.what = path, line, what


class Type:
    def __init__(self, name, bound=None):
        self.name = name
        self.bound = bound

    def wire_max(self):
        if self.name in FIXED:
            return FIXED[self.name][1]
        if self.name == "string":
            return 2 + self.bound + 1
        if self.name == "bytes":
            return 2 + self.bound
        return CAP_WIRE_SIZE

    def __str__(self):
        if self.name in BOUNDED and self.bound != DEFAULT_BOUND:
            return f"{self.name}<{self.bound}>"
        return self.name


class Arg:
    def __init__(self, name, type_, line, direction=None):
        self.name, self.type, self.line, self.direction = name, type_, line, direction


class Message:
    """One message type on the wire. kind: 'message', 'call' or 'reply'."""

    def __init__(self, name, kind, args, line, rpc=None, doc=""):
        self.name, self.kind, self.args, self.line, self.rpc, self.doc = (
            name, kind, args, line, rpc, doc)
        self.number = 0

    def size_max(self):
        return HEADER_SIZE + sum(a.type.wire_max() for a in self.args)

    def caps(self):
        return [a for a in self.args if a.type.name == "cap"]

    def decl(self):
        """The declaration as written, for comments."""
        args = ", ".join((a.direction + " " if a.direction else "") + f"{a.type} {a.name}"
                         for a in (self.rpc.args if self.rpc else self.args))
        return f"{'rpc ' + self.rpc.name if self.rpc else 'message ' + self.name}({args})"


class Rpc:
    def __init__(self, name, args, line, doc="", idempotent=False):
        self.name, self.args, self.line, self.doc = name, args, line, doc
        # `idempotent rpc`: carrying it out twice does what once does, so a
        # client may repeat it after the server was restarted (lib/recover.c).
        self.idempotent = idempotent
        self.call = Message(name + "_call", "call", [a for a in args if a.direction == "in"],
                            line, self, doc)
        self.reply = Message(name + "_reply", "reply", [a for a in args if a.direction == "out"],
                             line, self, doc)


class Interface:
    def __init__(self, name, line, doc, path, transport="urpc"):
        self.name, self.line, self.doc, self.path = name, line, doc, path
        self.transport = transport
        self.decls = []      # Message (one-way) and Rpc, in order
        self.messages = []   # every message type, numbered 1..N

    def rpcs(self):
        return [d for d in self.decls if isinstance(d, Rpc)]


# -- lexer and parser ---------------------------------------------------------

TOKEN = re.compile(r"\s+|//[^\n]*|[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[{}(),;<>]|.", re.S)


def tokenize(text, path):
    """(kind, value, line) triples; kind is 'id', 'num', 'punct' or 'comment'."""
    toks, line = [], 1
    for m in TOKEN.finditer(text):
        s = m.group(0)
        if s.isspace():
            pass
        elif s.startswith("//"):
            toks.append(("comment", s[2:].strip(), line))
        elif s[0].isalpha() or s[0] == "_":
            toks.append(("id", s, line))
        elif s[0].isdigit():
            toks.append(("num", s, line))
        elif s in "{}(),;<>":
            toks.append(("punct", s, line))
        else:
            raise IdlError(path, line, f"unexpected character {s!r}")
        line += s.count("\n")
    toks.append(("eof", "", line))
    return toks


class Parser:
    def __init__(self, text, path):
        self.path = path
        self.toks = []
        self.comments = {}   # line -> comment text
        for t in tokenize(text, path):
            if t[0] == "comment":
                self.comments.setdefault(t[2], t[1])
            else:
                self.toks.append(t)
        self.i = 0
        self.last_line = 0   # line of the previous declaration's end

    def peek(self):
        return self.toks[self.i]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, line, what):
        raise IdlError(self.path, line, what)

    def expect(self, value, what=None):
        t = self.next()
        if t[1] != value or t[0] == "eof":
            self.error(t[2], f"expected {what or repr(value)}, found {describe(t)}")
        return t

    def ident(self, what):
        t = self.next()
        if t[0] != "id":
            self.error(t[2], f"expected {what}, found {describe(t)}")
        return t

    def doc(self, first, last):
        """Comments on their own lines just before `first` (after the
        previous declaration) and at the end of line `last`."""
        lines, ln = [], first - 1
        while ln > self.last_line and ln in self.comments:
            lines.insert(0, self.comments[ln])
            ln -= 1
        if last in self.comments and last != self.last_line:
            lines.append(self.comments[last])
        return "\n".join(lines)

    def parse(self):
        t = self.peek()
        if t[0] == "eof":
            self.error(t[2], "no interface declared")
        kw = self.ident("'interface'")
        if kw[1] != "interface":
            self.error(kw[2], f"expected 'interface', found {describe(kw)}")
        name = self.ident("the interface name")
        transport = "urpc"
        if self.peek()[1] == "transport":
            self.next()
            t = self.ident("a transport")
            if t[1] not in TRANSPORTS:
                self.error(t[2], f"unknown transport '{t[1]}' (transports: {', '.join(TRANSPORTS)})")
            transport = t[1]
        self.expect("{")
        iface = Interface(name[1], name[2], self.doc(kw[2], kw[2]), self.path, transport)
        self.last_line = self.toks[self.i - 1][2]
        while self.peek()[1] != "}" or self.peek()[0] == "eof":
            t = self.peek()
            if t[0] == "eof":
                self.error(t[2], "missing '}' at the end of the interface")
            iface.decls.append(self.decl())
        self.next()
        t = self.peek()
        if t[0] != "eof":
            self.error(t[2], f"only one interface per file: {describe(t)} after its '}}'")
        return iface

    def decl(self):
        kw = self.ident("'message' or 'rpc'")
        idempotent = kw[1] == "idempotent"
        if idempotent:
            kw = self.ident("'rpc' after 'idempotent'")
            if kw[1] != "rpc":
                self.error(kw[2], f"'idempotent' marks an rpc, found {describe(kw)}")
        if kw[1] not in ("message", "rpc"):
            self.error(kw[2], f"expected 'message' or 'rpc', found {describe(kw)}")
        name = self.ident(f"the {kw[1]} name")
        self.expect("(")
        args = []
        if self.peek()[1] != ")":
            while True:
                args.append(self.arg(kw[1] == "rpc"))
                if self.peek()[1] != ",":
                    break
                self.next()
        self.expect(")", "',' or ')'")
        end = self.expect(";", "';' after the declaration")
        doc = self.doc(kw[2], end[2])
        self.last_line = end[2]
        if kw[1] == "rpc":
            return Rpc(name[1], args, name[2], doc, idempotent)
        return Message(name[1], "message", args, name[2], doc=doc)

    def arg(self, in_rpc):
        direction = None
        t = self.ident("an argument type")
        if in_rpc:
            if t[1] not in ("in", "out"):
                self.error(t[2], f"an rpc argument starts with 'in' or 'out', found {describe(t)}")
            direction = t[1]
            t = self.ident("an argument type")
        elif t[1] in ("in", "out") and self.peek()[0] == "id" and self.toks[self.i + 1][0] == "id":
            self.error(t[2], f"'{t[1]}' only in an rpc: a message's arguments all go one way")
        if t[1] not in TYPES:
            self.error(t[2], f"unknown type '{t[1]}' (types: {', '.join(TYPES)})")
        typ = Type(t[1])
        if self.peek()[1] == "<":
            lt = self.next()
            if t[1] not in BOUNDED:
                self.error(lt[2], f"type '{t[1]}' takes no bound (only string and bytes do)")
            n = self.next()
            if n[0] != "num":
                self.error(n[2], f"bad bound for {t[1]}: expected a number, found {describe(n)}")
            bound = int(n[1])
            if not 1 <= bound <= MAX_BOUND:
                self.error(n[2], f"bad bound {n[1]} for {t[1]}: must be 1..{MAX_BOUND}")
            typ.bound = bound
            self.expect(">", "'>' after the bound")
        elif t[1] in BOUNDED:
            typ.bound = DEFAULT_BOUND
        name = self.ident("an argument name")
        return Arg(name[1], typ, name[2], direction)


def describe(t):
    if t[0] == "eof":
        return "the end of the file"
    return f"'{t[1]}'"


# -- checks -------------------------------------------------------------------

def check(iface, stem=None):
    """Raise IdlError for the first rule the interface breaks."""
    path = iface.path

    def err(line, what):
        raise IdlError(path, line, what)

    def check_name(name, line, what):
        if not IDENT.match(name):
            err(line, f"bad {what} name '{name}': names start with a letter")
        if name in C_RESERVED:
            err(line, f"{what} name '{name}' is a reserved word in C")
        if name.startswith("idl_"):
            err(line, f"{what} name '{name}': the prefix idl_ is reserved for generated code")

    check_name(iface.name, iface.line, "interface")
    if stem is not None and iface.name != stem:
        err(iface.line, f"interface '{iface.name}' must be declared in {iface.name}.if, "
            f"not {stem}.if")
    seen = {}
    for d in iface.decls:
        if isinstance(d, Message):
            # A one-way message's name is a handler and union member as is;
            # an rpc's always gets _call/_reply, so 'rpc register' is fine.
            check_name(d.name, d.line, "message")
        elif not IDENT.match(d.name):
            err(d.line, f"bad rpc name '{d.name}': names start with a letter")
        if d.name in seen:
            err(d.line, f"duplicate name '{d.name}' (first declared on line {seen[d.name]})")
        seen[d.name] = d.line
        names = {}   # C name -> the argument it comes from
        for a in d.args:
            check_name(a.name, a.line, "argument")
            derived = [a.name] + ([a.name + "_len"] if a.type.name == "bytes" else [])
            for n in derived:
                if n in names:
                    first = names[n]
                    if first.name == n and a.name == n:
                        err(a.line, f"duplicate argument name '{n}' in '{d.name}' "
                            f"(first on line {first.line})")
                    b = first.name if first.name != n else a.name
                    err(a.line, f"argument name '{n}' in '{d.name}' clashes with the length "
                        f"of bytes argument '{b}' ({b}_len)")
                names[n] = a
    if not iface.decls:
        err(iface.line, f"interface '{iface.name}' declares no message or rpc")
    iface.messages = []
    for d in iface.decls:
        iface.messages += [d.call, d.reply] if isinstance(d, Rpc) else [d]
    if len(iface.messages) > MAX_TYPES:
        d = iface.messages[MAX_TYPES]
        err(d.line, f"too many message types: {len(iface.messages)}, at most {MAX_TYPES} "
            "(an rpc counts two)")
    for i, m in enumerate(iface.messages, 1):
        m.number = i
        if m.size_max() > MSG_MAX:
            err(m.line, f"message '{m.name}' can be {m.size_max()} bytes encoded, more than "
                f"URPC_MSG_MAX ({MSG_MAX}): lower its bounds")
        if iface.transport == "lmp" and m.size_max() > LMP_MSG_MAX:
            err(m.line, f"message '{m.name}' can be {m.size_max()} bytes encoded, more than a "
                f"local message carries ({LMP_MSG_MAX}, transport lmp): lower its bounds")
        if iface.transport == "lmp" and len(m.caps()) > 1:
            err(m.line, f"message '{m.name}' has {len(m.caps())} capabilities: a local message "
                "carries one (transport lmp)")
    # Every generated file-scope identifier must be unique.
    p = iface.name + "_"
    made = {}
    for n in ("msg_name", "decode", "encode", "dispatch", "serve_one", "msg_count", "size_max"):
        made[p + n] = "the interface"
    for m in iface.messages:
        owner = f"{'rpc' if m.rpc else 'message'} '{m.rpc.name if m.rpc else m.name}'"
        mine = [p + m.name, p + m.name + "_encode", p + m.name + "_send",
                p + m.name + "_size_max"]
        if m.kind == "call":
            mine.append(p + m.rpc.name + "_rpc")
        for n in mine:
            if n in made and made[n] != owner:
                err(m.line, f"{owner} generates '{n}', which {made[n]} generates too: "
                    "rename one")
            made[n] = owner
    return iface


def parse(text, path="<input>", stem=None):
    return check(Parser(text, path).parse(), stem)


def parse_file(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stem = os.path.splitext(os.path.basename(path))[0]
    return parse(text, path, stem)


# -- C generation ---------------------------------------------------------------

def c_field(a):
    """Struct members for an argument (receiving side)."""
    t = a.type.name
    if t in FIXED:
        return [f"{FIXED[t][0]} {a.name};"]
    if t == "string":
        return [f"const char *{a.name};"]
    if t == "bytes":
        return [f"const uint8_t *{a.name};", f"size_t {a.name}_len;"]
    return [f"uint64_t {a.name};   /* a capability slot (0 until cap_import) */"]


def c_params(a, wire_caps):
    """Parameters passing an argument in (encode: caps as wires; send: slots)."""
    t = a.type.name
    if t in FIXED:
        return [f"{FIXED[t][0]} {a.name}"]
    if t == "string":
        return [f"const char *{a.name}"]
    if t == "bytes":
        return [f"const uint8_t *{a.name}", f"size_t {a.name}_len"]
    return [f"const struct cap_wire *{a.name}" if wire_caps else f"uint64_t {a.name}"]


def c_out_params(a):
    t = a.type.name
    if t in FIXED:
        return [f"{FIXED[t][0]} *{a.name}"]
    if t == "string":
        return [f"const char **{a.name}"]
    if t == "bytes":
        return [f"const uint8_t **{a.name}", f"size_t *{a.name}_len"]
    return [f"uint64_t *{a.name}"]


def has_var(m):
    return any(a.type.name in BOUNDED for a in m.args)


def comment(text, indent=""):
    if not text:
        return []
    lines = text.split("\n")
    if len(lines) == 1:
        return [f"{indent}/* {lines[0].replace('*/', '* /')} */"]
    return ([f"{indent}/*"] + [f"{indent} * {ln.replace('*/', '* /')}".rstrip() for ln in lines]
            + [f"{indent} */"])


def fn(ret, name, params, indent_open="{"):
    """A static inline definition header, wrapped at about 100 columns."""
    head = f"static inline {ret}{'' if ret.endswith('*') else ' '}{name}("
    out, cur = [], head
    for i, p in enumerate(params):
        piece = p + ("," if i < len(params) - 1 else ")")
        if len(cur) + len(piece) + 1 > 100 and cur != head:
            out.append(cur.rstrip())
            cur = " " * len(head)
        cur += piece + " "
    if not params:
        cur += "void) "
    out.append(cur.rstrip())
    out.append(indent_open)
    return out


def gen_encode(iface, m):
    p = iface.name
    params = ["uint8_t *idl_buf", "size_t idl_size", "size_t *idl_len"]
    for a in m.args:
        params += c_params(a, True)
    L = fn("errval_t", f"{p}_{m.name}_encode", params)
    L.append("    size_t idl_off;")
    L.append(f"    errval_t idl_err = idl_put_header(idl_buf, idl_size, &idl_off, {p}_{m.name});")
    for a in m.args:
        t = a.type.name
        put = "    if (!idl_err)\n        idl_err = "
        if t in FIXED:
            n = FIXED[t][1]
            v = {"int32": f"(uint32_t){a.name}", "int64": f"(uint64_t){a.name}",
                 "bool": f"{a.name} ? 1u : 0u", "errval": f"(uint32_t){a.name}"}.get(t, a.name)
            L.append(f"{put}idl_put_uint(idl_buf, idl_size, &idl_off, {v}, {n});")
        elif t == "string":
            L.append(f"{put}idl_put_string(idl_buf, idl_size, &idl_off, {a.name}, {a.type.bound});")
        elif t == "bytes":
            L.append(f"{put}idl_put_bytes(idl_buf, idl_size, &idl_off, {a.name}, {a.name}_len, "
                     f"{a.type.bound});")
        else:
            L.append(f"{put}idl_put_cap(idl_buf, idl_size, &idl_off, {a.name});")
    L += ["    if (!idl_err)", "        *idl_len = idl_off;", "    return idl_err;", "}", ""]
    return L


def gen_decode(iface):
    p = iface.name
    L = comment("Decode a whole message: its type and arguments, strings and bytes as "
                "pointers into msg,\ncapabilities as wires in out->caps[] (their slot "
                "fields are 0 until imported).\nERR_MSG_MALFORMED or ERR_MSG_UNKNOWN; "
                "never reads outside msg[0..len).")
    L += fn("errval_t", f"{p}_decode", ["const uint8_t *msg", "size_t len", f"struct {p}_msg *out"])
    L += ["    if (len < IDL_HEADER_SIZE || msg[2] != 0 || msg[3] != 0)",
          "        return ERR_MSG_MALFORMED;",
          "    unsigned type = (unsigned)msg[0] | (unsigned)msg[1] << 8;",
          "    size_t off = IDL_HEADER_SIZE;",
          "    uint64_t v = 0;",
          "    switch (type) {"]
    for m in iface.messages:
        L.append(f"    case {p}_{m.name}: {{")
        if m.args:
            L.append(f"        struct {p}_{m.name}_args *a = &out->u.{m.name};")
        ncap = 0
        for a in m.args:
            t = a.type.name
            if t in FIXED:
                if t == "bool":
                    L.append(f"        if (!idl_get_bool(msg, len, &off, &a->{a.name}))")
                    L.append("            return ERR_MSG_MALFORMED;")
                    continue
                ct, n = FIXED[t]
                L.append(f"        if (!idl_get_uint(msg, len, &off, {n}, &v))")
                L.append("            return ERR_MSG_MALFORMED;")
                conv = {"int32": "(int32_t)(uint32_t)v", "int64": "(int64_t)v",
                        "errval": "(errval_t)v"}.get(t, f"({ct})v")
                L.append(f"        a->{a.name} = {conv};")
            elif t == "string":
                L.append(f"        if (!idl_get_string(msg, len, &off, {a.type.bound}, "
                         f"&a->{a.name}))")
                L.append("            return ERR_MSG_MALFORMED;")
            elif t == "bytes":
                L.append(f"        if (!idl_get_bytes(msg, len, &off, {a.type.bound}, "
                         f"&a->{a.name}, &a->{a.name}_len))")
                L.append("            return ERR_MSG_MALFORMED;")
            else:
                L.append(f"        if (!idl_get_cap(msg, len, &off, &out->caps[{ncap}]))")
                L.append("            return ERR_MSG_MALFORMED;")
                L.append(f"        a->{a.name} = 0;")
                ncap += 1
        L += ["        break;", "    }"]
    L += ["    default:", "        return ERR_MSG_UNKNOWN;", "    }",
          "    (void)v;",
          "    if (off != len)",
          "        return ERR_MSG_MALFORMED;      /* trailing bytes */",
          f"    out->type = (enum {p}_msg_type)type;",
          "    return ERR_OK;", "}", ""]
    return L


def gen_reencode(iface):
    p = iface.name
    L = comment("Encode a message held in a struct (as decoded; capabilities from m->caps[]).")
    L += fn("errval_t", f"{p}_encode", ["uint8_t *buf", "size_t size", "size_t *len",
                                         f"const struct {p}_msg *m"])
    L.append("    switch (m->type) {")
    for m in iface.messages:
        args, ncap = ["buf", "size", "len"], 0
        for a in m.args:
            f = f"m->u.{m.name}.{a.name}"
            if a.type.name == "cap":
                args.append(f"&m->caps[{ncap}]")
                ncap += 1
            elif a.type.name == "bytes":
                args += [f, f + "_len"]
            else:
                args.append(f)
        L.append(f"    case {p}_{m.name}:")
        L += call_lines(f"return {p}_{m.name}_encode", args, 8)
    L += ["    }", "    return ERR_MSG_UNKNOWN;", "}", ""]
    return L


def wrap_call(name, args, indent):
    """'name(a, b, ...);' wrapped at about 100 columns (continuation lines
    indented by 4 more)."""
    out, cur = [], name + "("
    for i, x in enumerate(args):
        piece = x + (", " if i < len(args) - 1 else ");")
        if indent + len(cur) + len(piece) > 100 and not cur.endswith("("):
            out.append(cur.rstrip())
            cur = "    "
        cur += piece
    out.append(cur)
    return out


def call_lines(name, args, indent):
    ls = wrap_call(name, args, indent)
    return [" " * indent + ls[0]] + [" " * indent + ln for ln in ls[1:]]


def gen_send(iface, m):
    p = iface.name
    params = ["struct idl_chan *idl_ch"]
    for a in m.args:
        params += c_params(a, False)
    L = fn("errval_t", f"{p}_{m.name}_send", params)
    caps = m.caps()
    L.append("    errval_t idl_err;")
    if caps:
        L.append(f"    struct cap_wire idl_caps[{len(caps)}];")
        L.append("    if (!idl_ch->cap_export)")
        L.append("        return ERR_CAP_NOT_TRANSFERABLE;")
        for i, a in enumerate(caps):
            L.append(f"    idl_err = idl_ch->cap_export(idl_ch, {a.name}, &idl_caps[{i}]);")
            L.append("    if (idl_err)")
            L.append("        return idl_err;")
    L.append(f"    uint8_t idl_buf[{p}_{m.name}_size_max];")
    L.append("    size_t idl_len;")
    args, ncap = ["idl_buf", "sizeof idl_buf", "&idl_len"], 0
    for a in m.args:
        if a.type.name == "cap":
            args.append(f"&idl_caps[{ncap}]")
            ncap += 1
        elif a.type.name == "bytes":
            args += [a.name, a.name + "_len"]
        else:
            args.append(a.name)
    L += call_lines(f"idl_err = {p}_{m.name}_encode", args, 4)
    L += ["    return idl_err ? idl_err : idl_ch->send(idl_ch, idl_buf, idl_len, 0);", "}", ""]
    return L


def gen_rpc(iface, r):
    p = iface.name
    call, reply = r.call, r.reply
    var = has_var(reply)
    params = ["struct idl_chan *idl_ch"]
    for a in call.args:
        params += c_params(a, False)
    for a in reply.args:
        params += c_out_params(a)
    if var:
        params += ["uint8_t *idl_replybuf", "size_t idl_replybuf_size"]
    doc = (f"Call {r.name}: send {p}_{call.name}, wait for {p}_{reply.name}. "
           "NULL out pointers are skipped.")
    if var:
        doc += (f"\nStrings and bytes that come back point into idl_replybuf "
                f"({p}_{reply.name}_size_max bytes always suffice).")
    L = comment(doc)
    L += fn("errval_t", f"{p}_{r.name}_rpc", params)
    args = ["idl_ch"]
    for a in call.args:
        args += [a.name, a.name + "_len"] if a.type.name == "bytes" else [a.name]
    if var:
        L += ["    if (!idl_replybuf)", "        return ERR_INVALID_ARG;"]
    L += call_lines(f"errval_t idl_err = {p}_{call.name}_send", args, 4)
    L += ["    if (idl_err)", "        return idl_err;"]
    if var:
        L += ["    uint8_t *idl_buf = idl_replybuf;", "    size_t idl_size = idl_replybuf_size;"]
    else:
        # Room for any message of the interface, not just this reply: the
        # generic decoder below has a branch for every type, and a buffer
        # shorter than some of them draws false array-bounds warnings.
        L += [f"    uint8_t idl_buf[{p}_size_max];",
              "    size_t idl_size = sizeof idl_buf;"]
    L += ["    size_t idl_len;",
          "    idl_err = idl_ch->recv(idl_ch, idl_buf, idl_size, &idl_len, 0);",
          "    if (idl_err)", "        return idl_err;",
          f"    struct {p}_msg idl_m;",
          f"    idl_err = {p}_decode(idl_buf, idl_len, &idl_m);",
          "    if (idl_err)", "        return idl_err;",
          f"    if (idl_m.type != {p}_{reply.name})",
          "        return ERR_MSG_UNKNOWN;"]
    caps = reply.caps()
    if caps:
        L += ["    if (!idl_ch->cap_import)", "        return ERR_CAP_NOT_TRANSFERABLE;"]
        for i, a in enumerate(caps):
            L += [f"    if ({a.name}) {{",
                  f"        idl_err = idl_ch->cap_import(idl_ch, &idl_m.caps[{i}], {a.name});",
                  "        if (idl_err)", "            return idl_err;", "    }"]
    for a in reply.args:
        if a.type.name == "cap":
            continue
        f = f"idl_m.u.{reply.name}.{a.name}"
        L += [f"    if ({a.name})", f"        *{a.name} = {f};"]
        if a.type.name == "bytes":
            L += [f"    if ({a.name}_len)", f"        *{a.name}_len = {f}_len;"]
    L += ["    return ERR_OK;", "}", ""]
    return L


def gen_dispatch(iface):
    p = iface.name
    L = comment("Decode msg, import its capabilities and call its handler; the handler's "
                "result is returned.\nA decode error is returned without calling anything; "
                "no handler: ERR_MSG_UNKNOWN.")
    L += fn("errval_t", f"{p}_dispatch", ["struct idl_chan *ch", f"const struct {p}_handlers *h",
                                           "const uint8_t *msg", "size_t len"])
    L += [f"    struct {p}_msg m;",
          f"    errval_t err = {p}_decode(msg, len, &m);",
          "    if (err)", "        return err;",
          "    switch (m.type) {"]
    for m in iface.messages:
        L += [f"    case {p}_{m.name}:",
              f"        if (!h->{m.name})", "            return ERR_MSG_UNKNOWN;"]
        caps = m.caps()
        if caps:
            L += ["        if (!ch->cap_import)", "            return ERR_CAP_NOT_TRANSFERABLE;"]
            for i, a in enumerate(caps):
                L += [f"        err = ch->cap_import(ch, &m.caps[{i}], &m.u.{m.name}.{a.name});",
                      "        if (err)", "            return err;"]
        L.append(f"        return h->{m.name}(ch, &m.u.{m.name});")
    L += ["    }", "    return ERR_MSG_UNKNOWN;", "}", ""]
    L += comment("Receive one message (recv flags as given) and dispatch it.")
    L += fn("errval_t", f"{p}_serve_one", ["struct idl_chan *ch", f"const struct {p}_handlers *h",
                                            "unsigned flags"])
    L += [f"    uint8_t buf[{p}_size_max];",
          "    size_t len;",
          "    errval_t err = ch->recv(ch, buf, sizeof buf, &len, flags);",
          f"    return err ? err : {p}_dispatch(ch, h, buf, len);", "}", ""]
    return L


def generate(iface, source="if/?.if"):
    p = iface.name
    guard = f"IF_{p.upper()}_IF_H"
    msgs = iface.messages
    L = [f"/* Generated by tools/idlc from {source}. Do not edit: see docs/interfaces.md. */"]
    L += comment(iface.doc)
    L += [f"#ifndef {guard}", f"#define {guard}", "",
          "#include <stdbool.h>", "#include <stddef.h>", "#include <stdint.h>",
          "#include <atoll/abi/errors.h>", "#include <atoll/idl.h>", ""]
    # Types and sizes.
    L.append(f"enum {p}_msg_type {{")
    for m in msgs:
        L.append(f"    {p}_{m.name} = {m.number},")
    L += ["};", ""]
    L.append("/* Largest encoded size of each message, and of any. */")
    L.append("enum {")
    L.append(f"    {p}_msg_count = {len(msgs)},")
    for m in msgs:
        L.append(f"    {p}_{m.name}_size_max = {m.size_max()},")
    L.append(f"    {p}_size_max = {max([m.size_max() for m in msgs] or [HEADER_SIZE])},")
    L += ["};", f"_Static_assert({p}_size_max <= IDL_MSG_MAX, "
          f"\"{p}: a message is longer than a channel carries\");", ""]
    if iface.transport == "lmp":
        L += [f"/* Declared `transport lmp`: local messages (lib/lmpchan.c), one capability each. */",
              f"#define {p.upper()}_TRANSPORT_LMP 1",
              f"_Static_assert({p}_size_max <= {LMP_MSG_MAX}, \"{p}: longer than a local message carries\");", ""]
    if iface.rpcs():
        L.append("/* May a client repeat the call after a restart of the server? (`idempotent rpc`) */")
        L.append("enum {")
        for r in iface.rpcs():
            L.append(f"    {p}_{r.name}_idempotent = {1 if r.idempotent else 0},")
        L += ["};", ""]
    L += fn("const char *", f"{p}_msg_name", ["unsigned type"])
    L.append("    switch (type) {")
    for m in msgs:
        L.append(f"    case {p}_{m.name}: return \"{m.name}\";")
    L += ["    }", "    return \"(unknown)\";", "}", ""]
    # Argument structs.
    for m in msgs:
        doc = m.decl() + (" -- " + m.kind if m.rpc else "")
        L += comment(doc + ("\n" + m.doc if m.doc and m.kind != "reply" else ""))
        L.append(f"struct {p}_{m.name}_args {{")
        for a in m.args:
            L += ["    " + f for f in c_field(a)]
        if not m.args:
            L.append("    char idl_empty;")
        L += ["};", ""]
    maxcaps = max([len(m.caps()) for m in msgs] or [0])
    L.append(f"struct {p}_msg {{")
    L.append(f"    enum {p}_msg_type type;")
    L.append("    union {")
    for m in msgs:
        L.append(f"        struct {p}_{m.name}_args {m.name};")
    if not msgs:
        L.append("        char idl_empty;")
    L.append("    } u;")
    L.append(f"    struct cap_wire caps[{max(maxcaps, 1)}];   /* wire form of the capability arguments, in order */")
    L += ["};", ""]
    L += comment("Encoders: pure, no I/O. Capabilities as wires (what cap_export made).\n"
                 "ERR_MSG_TOO_LONG: the buffer, or a string or bytes over its bound; "
                 "ERR_INVALID_ARG: NULL string.")
    for m in msgs:
        L += gen_encode(iface, m)
    L += gen_decode(iface)
    L += gen_reencode(iface)
    # Transport.
    L += comment("Send one message (flags 0); capabilities as slots, exported with cap_export.")
    for m in msgs:
        L += gen_send(iface, m)
    for r in iface.rpcs():
        L += gen_rpc(iface, r)
    L.append(f"struct {p}_handlers {{")
    for m in msgs:
        L.append(f"    errval_t (*{m.name})(struct idl_chan *ch, const struct {p}_{m.name}_args *a);")
    if not msgs:
        L.append("    char idl_empty;")
    L += ["};", ""]
    L += gen_dispatch(iface)
    L += [f"#endif /* {guard} */", ""]
    return "\n".join(L)
