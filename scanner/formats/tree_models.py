"""Gradient-boosted tree model files: XGBoost UBJSON and legacy binary, CatBoost ``.cbm``, LightGBM text.

Their loaders (``Booster.load_model``, ``CatBoost.load_model``,
``lightgbm.Booster(model_file=)``) parse tree tables in C++; nothing in these
files is imported, unpickled or executed. They are recognized by structure, so
that real tree models are judged as data instead of failing as unknown
formats, and walked far enough to know the file is what it claims: a file that
starts like one of them but breaks its structure is a blocking finding.
XGBoost JSON models are plain JSON and need nothing here.
"""

from __future__ import annotations

import re
import struct

from ..io.reader import Reader
from .data_files import is_text
from .interface import FormatHandler, InspectContext
from .msgpack_walk import _Buf

MAX_UBJ_DEPTH = 128
MAX_KEY = 1 << 16
TIME_CHECK_EVERY = 1 << 14

# ------------------------------------------------------------------------------------------ XGBoost UBJSON
# Universal Binary JSON (draft 12, big-endian) as XGBoost's UBJWriter writes it (src/common/json.cc).

_UBJ_FIXED = {
    b"i": 1,
    b"U": 1,
    b"I": 2,
    b"l": 4,
    b"L": 8,
    b"d": 4,
    b"D": 8,
    b"C": 1,
    b"T": 0,
    b"F": 0,
    b"Z": 0,
    b"N": 0,
}
_UBJ_INT = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}
XGB_KEYS = {"learner", "version"}


class UbjError(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Ubj:
    """An iterative UBJSON walk: headers are read, typed-array payloads are skipped, never loaded."""

    def __init__(self, reader: Reader, max_nodes: int, out_of_time=lambda: False) -> None:  # type: ignore[no-untyped-def]
        self.buf = _Buf(reader)
        self.size = reader.size
        self.max_nodes = max_nodes
        self.out_of_time = out_of_time
        self.nodes = 0
        self.root_keys: list[str] = []

    def _skip(self, pos: int, n: int, what: str) -> int:
        """Bounds-check ``n`` payload bytes at ``pos`` without reading them."""
        if n < 0 or pos + n > self.size:
            raise UbjError(f"{what} runs past the end of the file", pos)
        return pos + n

    def _take(self, pos: int, n: int, what: str) -> bytes:
        if n > MAX_KEY:
            raise UbjError(f"{what} of {n} bytes is longer than {MAX_KEY}", pos)
        self._skip(pos, n, what)
        return self.buf.get(pos, n)

    def _int(self, pos: int, what: str) -> tuple[int, int]:
        m = self._take(pos, 1, what)
        if m not in _UBJ_INT:
            raise UbjError(f"{what}: {m!r} is not an integer type", pos)
        n = _UBJ_FIXED[m]
        (v,) = struct.unpack(_UBJ_INT[m], self._take(pos + 1, n, what))
        if v < 0:
            raise UbjError(f"{what} is negative", pos)
        return v, pos + 1 + n

    def _scalar(self, m: bytes, pos: int) -> int:
        """Skip the payload of a non-container value whose marker ``m`` was read; returns the end."""
        if m in _UBJ_FIXED:
            return self._skip(pos, _UBJ_FIXED[m], f"{m.decode('latin-1')} value")
        if m in (b"S", b"H"):
            n, pos = self._int(pos, "string length")
            return self._skip(pos, n, "string")
        raise UbjError(f"unknown UBJSON type marker {m!r}", pos - 1)

    def _container_head(self, pos: int) -> tuple[bytes | None, int | None, int]:
        """Optional ``$type`` and ``#count`` after ``[`` or ``{``."""
        typ: bytes | None = None
        count: int | None = None
        if self._take(pos, 1, "container") == b"$":
            typ = self._take(pos + 1, 1, "container type")
            if typ not in _UBJ_FIXED and typ not in (b"S", b"H", b"[", b"{"):
                raise UbjError(f"unknown container type {typ!r}", pos + 1)
            pos += 2
            if self._take(pos, 1, "container count") != b"#":
                raise UbjError("typed container without a count", pos)
        if self._take(pos, 1, "container") == b"#":
            count, pos = self._int(pos + 1, "container count")
        return typ, count, pos

    def walk(self) -> int:
        """Walk the single root value; returns where it ends."""
        # a frame: [kind "{" or "[", element type or None, remaining count or None]
        stack: list[list] = []  # type: ignore[type-arg]
        pos = 0
        while True:
            self.nodes += 1
            if self.nodes > self.max_nodes:
                raise UbjError(f"more than {self.max_nodes} values", pos)
            if self.nodes % TIME_CHECK_EVERY == 0 and self.out_of_time():
                raise UbjError("time budget ran out", pos)
            if stack:
                frame = stack[-1]
                if frame[2] is not None:
                    if frame[2] == 0:
                        stack.pop()
                        if not stack:
                            return pos
                        continue
                    frame[2] -= 1
                else:
                    end = b"}" if frame[0] == b"{" else b"]"
                    nxt = self._take(pos, 1, "container")
                    if nxt == end:
                        stack.pop()
                        pos += 1
                        if not stack:
                            return pos
                        continue
                if frame[0] == b"{":  # a key: length-prefixed, no marker
                    n, kpos = self._int(pos, "object key length")
                    key = self._take(kpos, n, "object key")
                    if len(stack) == 1 and len(self.root_keys) < 64:
                        self.root_keys.append(key.decode("utf-8", "replace"))
                    pos = kpos + n
                m = frame[1] if frame[1] is not None else None
                if m is None:
                    m = self._take(pos, 1, "type marker")
                    pos += 1
                elif m in _UBJ_FIXED and frame[0] == b"[" and frame[2] is not None:
                    # a typed numeric array: skip the whole payload at once
                    pos = self._skip(pos, _UBJ_FIXED[m] * (frame[2] + 1), "typed array")
                    frame[2] = 0
                    continue
            else:
                m = self._take(pos, 1, "type marker")
                pos += 1
            if m in (b"[", b"{"):
                if len(stack) >= MAX_UBJ_DEPTH:
                    raise UbjError(f"nested deeper than {MAX_UBJ_DEPTH}", pos)
                typ, count, pos = self._container_head(pos)
                if not stack and m != b"{":
                    raise UbjError("the root is not an object", 0)
                stack.append([m, typ, count])
                continue
            if not stack:
                raise UbjError("the root is not an object", 0)
            pos = self._scalar(m, pos)


def _sniff_ubj(head: bytes, reader: Reader) -> bool:
    # XGBoost writes its model as an object whose first key is "learner" (or "version")
    if len(head) < 3 or head[:1] != b"{" or head[1:2] not in _UBJ_INT:
        return False
    width = _UBJ_FIXED[head[1:2]]
    n = int.from_bytes(head[2 : 2 + width], "big", signed=head[1:2] != b"U")
    key = head[2 + width : 2 + width + n]
    return key in (b"learner", b"version")


def _inspect_ubj(reader: Reader, ctx: InspectContext) -> None:
    walk = _Ubj(reader, ctx.limits.max_nodes, ctx.state.out_of_time)
    try:
        end = walk.walk()
    except UbjError as exc:
        ctx.add(
            "TREE-MODEL-INVALID",
            f"XGBoost UBJSON model does not parse: {exc} (offset {exc.offset})",
            offset=exc.offset,
            evidence={"library": "xgboost", "format": "ubjson"},
        )
        ctx.partial("XGBoost UBJSON not parseable")
        return
    missing = XGB_KEYS - set(walk.root_keys)
    if missing:
        ctx.add(
            "TREE-MODEL-INVALID",
            f"UBJSON document lacks XGBoost's {sorted(missing)} keys",
            evidence={"library": "xgboost", "format": "ubjson", "keys": walk.root_keys[:20]},
        )
        ctx.partial("not an XGBoost model")
        return
    if end != reader.size:
        ctx.add(
            "TREE-MODEL-INVALID",
            f"{reader.size - end} bytes follow the XGBoost UBJSON document",
            offset=end,
            evidence={"library": "xgboost", "format": "ubjson"},
        )
        ctx.partial("bytes after the XGBoost model")
        return
    ctx.add(
        "TREE-MODEL-DATA",
        f"XGBoost UBJSON model ({walk.nodes} values): tree tables, no code",
        evidence={"library": "xgboost", "format": "ubjson"},
    )


# ------------------------------------------------------------------------------------------ XGBoost legacy binary
# learner.cc (XGBoost < 2.1): optional "binf" magic, LearnerModelParamLegacy (136 bytes), then the objective
# and booster names as (uint64 length, bytes); the booster's tree tables follow.

_XGB_PARAM = 136
_XGB_OBJECTIVE = re.compile(rb"^[a-z_]+(?::[a-z_]+)?$")
_XGB_BOOSTERS = (b"gbtree", b"gblinear", b"dart")


def _xgb_legacy_names(head: bytes) -> tuple[bytes, bytes] | None:
    base = 4 if head[:4] == b"binf" else 0
    pos = base + _XGB_PARAM
    names = []
    for _ in range(2):
        if len(head) < pos + 8:
            return None
        (n,) = struct.unpack("<Q", head[pos : pos + 8])
        if not 0 < n <= 64 or len(head) < pos + 8 + n:
            return None
        names.append(head[pos + 8 : pos + 8 + n])
        pos += 8 + n
    objective, booster = names
    if not _XGB_OBJECTIVE.match(objective) or booster not in _XGB_BOOSTERS:
        return None
    return objective, booster


def _sniff_xgb_legacy(head: bytes, reader: Reader) -> bool:
    return _xgb_legacy_names(head) is not None


def _inspect_xgb_legacy(reader: Reader, ctx: InspectContext) -> None:
    names = _xgb_legacy_names(reader.head(4096))
    objective, booster = (n.decode("ascii") for n in names) if names else ("?", "?")
    ctx.add(
        "TREE-MODEL-DATA",
        f"XGBoost legacy binary model ({booster}, objective {objective}): tree tables, no code; "
        "the tree tables themselves are not walked",
        evidence={
            "library": "xgboost",
            "format": "legacy-binary",
            "booster": booster,
            "objective": objective,
        },
    )


# ------------------------------------------------------------------------------------------ CatBoost
# model.cpp: "CBM1", uint32 size of the flatbuffers TModelCore, the flatbuffer, then CTR tables
# (categorical-feature statistics) in CatBoost's own binary serialization.

_CBM_MAGIC = b"CBM1"


def _sniff_cbm(head: bytes, reader: Reader) -> bool:
    return head[:4] == _CBM_MAGIC and len(head) >= 12


def _inspect_cbm(reader: Reader, ctx: InspectContext) -> None:
    head = reader.read(0, 16)
    (core,) = struct.unpack("<I", head[4:8])
    problem = None
    if core < 8 or 8 + core > reader.size:
        problem = f"model core of {core} bytes does not fit a {reader.size}-byte file"
    else:
        (root,) = struct.unpack("<I", head[8:12])
        if root < 4 or root + 4 > core:
            problem = f"flatbuffers root offset {root} lies outside the {core}-byte model core"
    if problem:
        ctx.add(
            "TREE-MODEL-INVALID",
            f"CatBoost model is malformed: {problem}",
            evidence={"library": "catboost", "format": "cbm"},
        )
        ctx.partial("CatBoost model malformed")
        return
    rest = reader.size - 8 - core
    ctx.add(
        "TREE-MODEL-DATA",
        "CatBoost model: tree tables" + (f" and {rest} bytes of CTR tables" if rest else "") + ", no code",
        evidence={"library": "catboost", "format": "cbm", "core_bytes": core},
    )


# ------------------------------------------------------------------------------------------ LightGBM text
# gbdt_model_text.cpp: "tree", "version=v<N>", key=value header lines, "Tree=<i>" blocks, "end of trees".

_LGB_HEAD = re.compile(rb"^tree\r?\nversion=v\d+\r?\n")


def _sniff_lgb(head: bytes, reader: Reader) -> bool:
    return bool(_LGB_HEAD.match(head)) and is_text(head)


def _inspect_lgb(reader: Reader, ctx: InspectContext) -> None:
    for chunk in reader.stream(0, chunk=1 << 20):
        if b"\x00" in chunk:
            ctx.add(
                "TREE-MODEL-INVALID",
                "LightGBM text model contains binary data",
                evidence={"library": "lightgbm", "format": "text"},
            )
            ctx.partial("LightGBM model malformed")
            return
    ctx.add(
        "TREE-MODEL-DATA",
        "LightGBM text model: tree tables, no code",
        evidence={"library": "lightgbm", "format": "text"},
    )


# Sniffed after the pickle handler (60): a pickle can start with "CBM1" ('C' is SHORT_BINBYTES) or carry the
# legacy XGBoost header inside a string operand, and pickle.load would run it; content a pickle loader accepts
# is judged as a pickle first.
XGBOOST_UBJSON = FormatHandler(
    "xgboost-ubjson",
    _sniff_ubj,
    _inspect_ubj,
    family="xgboost",
    claims=(".ubj", ".bin"),
)
XGBOOST_BINARY = FormatHandler(
    "xgboost-binary",
    _sniff_xgb_legacy,
    _inspect_xgb_legacy,
    family="xgboost",
    claims=(".bin",),
)
CATBOOST = FormatHandler("catboost", _sniff_cbm, _inspect_cbm, family="catboost", claims=(".cbm",))
LIGHTGBM_TEXT = FormatHandler("lightgbm-text", _sniff_lgb, _inspect_lgb, family="text")
