"""TensorFlow SavedModel in protobuf text format (``saved_model.pbtxt``).

``tf.saved_model.load`` and the TF1 loader fall back to ``saved_model.pbtxt``
when a SavedModel folder has no ``saved_model.pb``: the same graph, the same
PyFunc / ReadFile / WriteFile ops, in text. The text is tokenized here (no
TensorFlow import, nothing is run), turned into the same node records the
binary parser yields, and judged by the same graph checks. Text that does not
tokenize, or passes the caps, is a blocking finding, never a silent pass.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator
from typing import Union

from ...findings import Severity
from ...io.reader import Reader
from ..interface import FormatHandler, InspectContext
from .tf_savedmodel import _STRING_ATTRS, MAX_FINDINGS_PER_OP, Graph, Node, _judge_graph, _load

MAX_DEPTH = 256
MAX_TEXT = 32 << 20  # real text SavedModels are small; a bigger one is a limit finding, not a pass
MAX_STRING = 4096  # kept per string value: names, ops, file names
TOP_FIELDS = ("saved_model_schema_version", "meta_graphs")

Value = Union[str, "Message"]
Message = list[tuple[str, Value]]


class TextFormatError(Exception):
    pass


_TOKEN = re.compile(
    rb"""
    (?P<ws>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[A-Za-z0-9_+\-.]+)
  | (?P<punct>[{}<>:\[\],;/])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESC = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_ESC_RE = re.compile(
    rb"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{1,2})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL
)


def _unescape(body: bytes) -> str:
    def sub(m: re.Match[bytes]) -> bytes:
        octal, hx, u4, u8, other = m.groups()
        if octal is not None:
            return bytes([int(octal, 8) & 0xFF])
        if hx is not None:
            return bytes([int(hx, 16)])
        if u4 is not None or u8 is not None:
            try:
                return chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
            except (ValueError, OverflowError) as exc:
                raise TextFormatError(f"bad unicode escape: {exc}") from exc
        ch = other.decode("latin-1")
        if ch not in _ESC:
            raise TextFormatError(f"unknown string escape \\{ch!r}")
        return _ESC[ch].encode()

    return _ESC_RE.sub(sub, body).decode("utf-8", "replace")


def tokenize(data: bytes) -> Iterator[tuple[str, str]]:
    """(kind, text) tokens; adjacent string literals are joined, as the text-format parser does."""
    pos = 0
    n = len(data)
    pending: str | None = None  # a string literal the next one may continue
    while pos < n:
        m = _TOKEN.match(data, pos)
        if m is None:
            raise TextFormatError(f"unexpected byte {data[pos : pos + 1]!r} at offset {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        tok = m.group()
        if kind == "str":
            s = _unescape(tok[1:-1])
            pending = s if pending is None else pending + s
            if len(pending) > MAX_STRING:
                pending = pending[:MAX_STRING]
            continue
        if pending is not None:
            yield ("str", pending)
            pending = None
        yield (kind, tok.decode("ascii"))
    if pending is not None:
        yield ("str", pending)


class _Cursor:
    def __init__(self, tokens: Iterator[tuple[str, str]]) -> None:
        self.it = tokens
        self.buf: deque[tuple[str, str]] = deque()

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        while len(self.buf) <= k:
            nxt = next(self.it, None)
            if nxt is None:
                return None
            self.buf.append(nxt)
        return self.buf[k]

    def need(self, k: int = 0) -> tuple[str, str]:
        t = self.peek(k)
        if t is None:
            raise TextFormatError("text ends inside a message")
        return t

    def take(self) -> tuple[str, str]:
        t = self.need()
        self.buf.popleft()
        return t

    def opt_sep(self) -> None:
        if self.peek() in (("punct", ","), ("punct", ";")):
            self.buf.popleft()


class _Frame:
    __slots__ = ("closing", "keep", "list_name", "msg")

    def __init__(self, msg: Message, closing: str, keep: bool) -> None:
        self.msg = msg
        self.closing = closing
        self.keep = keep  # False: parsed for syntax only, nothing stored
        self.list_name: str | None = None  # inside "name: [ ... ]"


def parse(
    tokens: Iterator[tuple[str, str]],
    max_fields: int,
    keep: frozenset[str] | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> Message:
    """A message tree [(field name, scalar text or nested message)] of the fields named in ``keep``
    (all when None), without recursion; every other field is checked for syntax and dropped."""
    root: Message = []
    stack = [_Frame(root, "", True)]
    c = _Cursor(tokens)
    fields = 0

    def value(frame: _Frame, name: str, scalar_ok: bool) -> bool:
        """One value; whether a child message was opened."""
        vk, vt = c.take()
        stored = frame.keep and (keep is None or name in keep)
        if vk == "punct" and vt in ("{", "<"):
            child: Message = []
            if stored:
                frame.msg.append((name, child))
            if len(stack) > MAX_DEPTH:
                raise TextFormatError(f"messages nested deeper than {MAX_DEPTH}")
            stack.append(_Frame(child, "}" if vt == "{" else ">", stored))
            return True
        if vk in ("str", "word") and scalar_ok:
            if stored:
                frame.msg.append((name, vt[:MAX_STRING]))
            return False
        raise TextFormatError(f"bad value for field {name[:60]!r}: {vt[:40]!r}")

    def list_values(frame: _Frame) -> None:
        """Values of ``frame.list_name`` until ']' or a child message to parse first."""
        while frame.list_name is not None:
            if value(frame, frame.list_name, True):
                return
            list_sep(frame)

    def list_sep(frame: _Frame) -> None:
        sep = c.take()
        if sep == ("punct", "]"):
            frame.list_name = None
            c.opt_sep()
        elif sep != ("punct", ","):
            raise TextFormatError(f"expected ',' or ']' in the list of {(frame.list_name or '')[:60]!r}")

    while c.peek() is not None:
        frame = stack[-1]
        kind, text = c.take()
        if kind == "punct" and text == frame.closing:
            stack.pop()
            parent = stack[-1]
            if parent.list_name is not None:
                list_sep(parent)
                list_values(parent)
            else:
                c.opt_sep()
            continue
        if kind == "punct" and text == "[":  # [extension] or [type.url/Message] field name
            parts = []
            while c.need() != ("punct", "]"):
                parts.append(c.take()[1])
                if len(parts) > 64:
                    raise TextFormatError("extension field name too long")
            c.take()
            name = "[" + "".join(parts) + "]"
        elif kind == "word":
            name = text
        else:
            raise TextFormatError(f"expected a field name, found {text[:40]!r}")
        fields += 1
        if fields > max_fields:
            raise OverflowError("field limit")
        if fields & 0x3FFF == 0 and out_of_time is not None and out_of_time():
            raise TimeoutError("time budget exhausted")
        colon = c.need() == ("punct", ":")
        if colon:
            c.take()
        if c.need() == ("punct", "["):
            c.take()
            if c.need() == ("punct", "]"):
                c.take()
                c.opt_sep()
                continue
            frame.list_name = name
            list_values(frame)
            continue
        if not value(frame, name, colon):
            c.opt_sep()
    if len(stack) != 1:
        raise TextFormatError("text ends inside a message")
    return root


# the SavedModel fields the graph checks read; everything else (tensor values, shapes) is dropped
KEPT = frozenset(
    {
        "saved_model_schema_version",
        "meta_graphs",
        "graph_def",
        "node",
        "library",
        "function",
        "signature",
        "name",
        "node_def",
        "op",
        "device",
        "attr",
        "key",
        "value",
        "func",
        "list",
        "s",
        "saver_def",
        "save_tensor_name",
        "restore_op_name",
        "meta_info_def",
        "tensorflow_version",
        "stripped_op_list",
    }
)


def _fields(msg: Message, name: str) -> list[Value]:
    return [v for k, v in msg if k == name]


def _msgs(msg: Message, name: str) -> list[Message]:
    return [v for v in _fields(msg, name) if isinstance(v, list)]


def _last_str(msg: Message, name: str) -> str:
    vals = [v for v in _fields(msg, name) if isinstance(v, str)]
    return vals[-1] if vals else ""


def _node(msg: Message, where: str) -> Node:
    node = Node(
        _last_str(msg, "name")[:1024], _last_str(msg, "op")[:1024], _last_str(msg, "device")[:1024], where
    )
    for entry in _msgs(msg, "attr"):
        key = _last_str(entry, "key")[:256]
        for value in _msgs(entry, "value"):
            for fn in _msgs(value, "func"):
                node.funcs.append(_last_str(fn, "name")[:512])
            if key in _STRING_ATTRS:
                node.strings.setdefault(key, []).extend(
                    s[:512] for s in _fields(value, "s") if isinstance(s, str)
                )
            for lst in _msgs(value, "list"):
                for fn in _msgs(lst, "func"):
                    node.funcs.append(_last_str(fn, "name")[:512])
                if key in _STRING_ATTRS:
                    node.strings.setdefault(key, []).extend(
                        s[:512] for s in _fields(lst, "s") if isinstance(s, str)
                    )
    return node


def _graph(meta: Message) -> Graph:
    g = Graph()
    for gd in _msgs(meta, "graph_def"):
        g.nodes.extend(_node(n, "graph") for n in _msgs(gd, "node"))
        for lib in _msgs(gd, "library"):
            for fn in _msgs(lib, "function"):
                name = "?"
                for sig in _msgs(fn, "signature"):
                    name = _last_str(sig, "name")[:1024] or name
                g.functions.add(name)
                g.nodes.extend(_node(n, name) for n in _msgs(fn, "node_def"))
    for sd in _msgs(meta, "saver_def"):
        for key in ("save_tensor_name", "restore_op_name"):
            for v in _fields(sd, key):
                if isinstance(v, str):
                    g.saver_nodes.add(v.split(":")[0])
    for mi in _msgs(meta, "meta_info_def"):
        g.tf_version = _last_str(mi, "tensorflow_version")[:64] or None
        for ol in _msgs(mi, "stripped_op_list"):
            for op in _msgs(ol, "op"):
                g.stripped_ops.add(_last_str(op, "name")[:1024])
    return g


def _first_word(head: bytes) -> str | None:
    pos = 0
    while True:
        m = _TOKEN.match(head, pos)
        if m is None:
            return None
        if m.lastgroup != "ws":
            return m.group().decode("ascii", "replace") if m.lastgroup == "word" else None
        pos = m.end()


def _sniff(head: bytes, reader: Reader) -> bool:
    return _first_word(head[:4096]) in TOP_FIELDS


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    if reader.size > MAX_TEXT:
        ctx.limit_hit("max_protobuf_bytes", f"text SavedModel of {reader.size} bytes exceeds {MAX_TEXT}")
        return
    data = _load(reader, ctx)
    if data is None:
        return
    try:
        root = parse(tokenize(data), ctx.limits.max_nodes * 8, KEPT, ctx.state.out_of_time)
    except TextFormatError as exc:
        ctx.add("TF-PROTOBUF-INVALID", f"SavedModel text protobuf does not parse: {exc}"[:400])
        ctx.partial("SavedModel text protobuf malformed")
        return
    except TimeoutError:
        ctx.limit_hit("file_seconds", "time budget ran out parsing the text SavedModel")
        return
    except OverflowError:
        ctx.limit_hit("max_nodes", "SavedModel text protobuf has too many fields; not checked")
        return
    schema = _last_str(root, "saved_model_schema_version")
    if schema != "1":
        ctx.add(
            "TF-PROTOBUF-INVALID",
            f"unexpected SavedModel schema version {schema[:20]!r}",
            severity=Severity.MEDIUM,
        )
    seen: dict[tuple[str, str], int] = {}
    for i, meta in enumerate(_msgs(root, "meta_graphs")):
        _judge_graph(ctx, _graph(meta), i, seen)
    for (rule, key), n in seen.items():
        if n > MAX_FINDINGS_PER_OP and not key.startswith("saver:"):
            ctx.add(
                rule,
                f"... {rule} {key.split(':')[0]}: {n - MAX_FINDINGS_PER_OP} more node(s) not listed",
                severity=Severity.INFO,
                evidence={"suppressed": n - MAX_FINDINGS_PER_OP},
            )


TF_SAVEDMODEL_TEXT = FormatHandler(
    "tf-savedmodel-text",
    _sniff,
    _inspect,
    family="tensorflow",
    # only the SavedModel's own name: .pbtxt is generic protobuf text (Triton config.pbtxt, label maps, graphs)
    claims=("saved_model.pbtxt",),
    can_carry_code=True,
)
