"""What thinc model files (spaCy pipelines) and spacy-transformers' HFShim maps hold, judged as a loader uses it.

A thinc ``Model.to_bytes`` file (spaCy's ``ner/model``, ``transformer/model``) is one msgpack map
``{nodes, attrs, params, shims}``; ``Model.from_dict`` hands each ``shims[i][j]`` bytes to the shim's
``from_bytes``: PyTorchShim/HFShim/MXNetShim ``srsly.msgpack_loads`` it and load ``state`` (``torch.load``, a
safetensors load, an MXNet parameter file), TorchScriptShim ``torch.jit.load``s ``model``, TensorFlowShim opens
the bytes as HDF5 and calls keras ``load_model``. So every shim is an embedded file, judged as one.

spacy-transformers' ``HFShim.from_bytes`` also writes every ``tokenizer`` entry to ``temp_dir / name`` (a name
that is not a plain file name writes elsewhere) and calls ``AutoTokenizer.from_pretrained(temp_dir, **kwargs)``:
``kwargs`` is allowed only as ``to_bytes`` writes it (``use_fast``), Python files and ``auto_map`` entries are
code ``from_pretrained`` would import, and every other entry is judged as the file it is. The values are
located with a lazy walk: nothing is unpacked beyond map keys and small scalars.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..findings import Severity
from ..io.reader import Reader, SliceReader
from .interface import FormatHandler, InspectContext, run_inspector
from .msgpack_walk import MsgpackError, Walker, _Buf, _OutOfTime

MAX_ENTRIES = 4096  # entries read from a map the loader iterates (shims, tokenizer files)
SMALL = 4096  # str/bin read as a value (names, kwargs); longer ones stay blobs
JSON_CAP = 4 << 20  # tokenizer JSON entries parsed for auto_map
THINC_KEYS = frozenset({"nodes", "attrs", "params", "shims"})
KWARGS_ALLOWED = {"use_fast"}  # what HFShim.to_bytes writes (spacy-transformers >= 1.1)
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw", ".so", ".pyd", ".dll", ".dylib")


@dataclass
class Blob:
    pos: int  # payload offset
    size: int
    kind: str  # "str", "bin", "map", "array", "ext"


class _Nav:
    def __init__(
        self, reader: Reader, end: int, out_of_time: Callable[[], bool], msgpack: FormatHandler
    ) -> None:
        self.msgpack = msgpack  # the msgpack handler, to judge nested shim bytes (passed in: no import cycle)
        self.buf = _Buf(reader, chunk=1 << 16)
        self.end = end
        self.out_of_time = out_of_time
        self._w = Walker(self.buf, out_of_time=out_of_time)

    def skip(self, pos: int) -> int:
        return Walker(self.buf, out_of_time=self.out_of_time).walk(pos, self.end, top=False)

    def value(self, pos: int) -> Any:
        """A scalar as Python, a short str/bin as str/bytes, anything else as a Blob."""
        kind, hlen, n, _ = self._w._header(pos, self.end)
        t = self.buf.get(pos, 1)[0]
        body = pos + hlen
        if kind == "nil":
            return None if t == 0xC0 else t == 0xC3
        if kind == "int":
            if t <= 0x7F:
                return t
            if t >= 0xE0:
                return t - 256
            raw = self.buf.get(pos + 1, hlen - 1)
            return int.from_bytes(raw, "big", signed=t >= 0xD0)
        if kind == "float":
            raw = self.buf.get(pos + 1, hlen - 1)
            return struct.unpack(">f" if t == 0xCA else ">d", raw)[0]
        if kind in ("str", "bin") and n <= SMALL:
            raw = self.buf.get(body, n)
            if kind == "bin":
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return Blob(body, n, kind)
        return Blob(body, n, kind)

    def entries(self, pos: int) -> list[tuple[Any, int]] | None:
        """(key, value offset) of the map at ``pos``; None if it is not a map or too long to judge here."""
        kind, hlen, n, _ = self._w._header(pos, self.end)
        if kind != "map" or n > MAX_ENTRIES:
            return None
        out: list[tuple[Any, int]] = []
        p = pos + hlen
        for _ in range(n):
            key = self.value(p)
            vpos = self.skip(p)
            out.append((key, vpos))
            p = self.skip(vpos)
        return out

    def items(self, pos: int) -> list[int] | None:
        kind, hlen, n, _ = self._w._header(pos, self.end)
        if kind != "array" or n > MAX_ENTRIES:
            return None
        out, p = [], pos + hlen
        for _ in range(n):
            out.append(p)
            p = self.skip(p)
        return out


def _truthy(v: Any) -> bool:
    if isinstance(v, Blob):
        return v.size > 0 or v.kind == "ext"
    return bool(v)


def _plain_name(name: Any) -> bool:
    """A file name ``temp_dir / name`` keeps inside ``temp_dir`` on every OS (no separator, drive, dot dirs)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\:\x00")
        and name.isprintable()
        and len(name) <= 255
    )


def judge_shims(
    reader: Reader,
    ctx: InspectContext,
    end: int,
    *,
    out_of_time: Callable[[], bool],
    msgpack: FormatHandler,
) -> None:
    nav = _Nav(reader, end, out_of_time, msgpack)
    try:
        top = nav.entries(0)
        if top is None:
            return
        keys = {k: v for k, v in top if isinstance(k, str)}
        if THINC_KEYS <= keys.keys():
            _thinc_shims(nav, reader, ctx, keys["shims"])
        if "config" in keys and ("state" in keys or "model" in keys):
            _shim(nav, reader, ctx, keys)
    except MsgpackError as exc:
        ctx.add(
            "MSGPACK-INVALID", f"msgpack is malformed at byte {exc.offset}: {exc}"[:300], offset=exc.offset
        )
        ctx.partial("msgpack malformed")
    except OverflowError:
        ctx.limit_hit("max_items", "msgpack item limit hit while reading thinc shims")
    except _OutOfTime:
        ctx.limit_hit("file_seconds", "time budget ran out while reading thinc shims")


def _thinc_shims(nav: _Nav, reader: Reader, ctx: InspectContext, pos: int) -> None:
    nodes = nav.items(pos)
    if nodes is None:
        ctx.partial("thinc model shims are not a short list")
        return
    for i, npos in enumerate(nodes):
        shims = nav.items(npos)
        if shims is None:
            ctx.partial(f"thinc model shims[{i}] is not a short list")
            continue
        for j, spos in enumerate(shims):
            b = _bin(nav, spos)
            if b is not None and b.size:
                _shim_bytes(
                    nav, SliceReader(reader, b.pos, b.size, f"shims[{i}][{j}]"), ctx, f"shims[{i}][{j}]"
                )


def _shim_bytes(nav: _Nav, sub: Reader, ctx: InspectContext, label: str) -> None:
    """PyTorch/HF/TorchScript/MXNet shims ``srsly.msgpack_loads`` their bytes from byte 0: when the bytes are one
    msgpack map, end to end, they are judged as msgpack whatever else a sniffer might see in them (a torch.save
    zip's end record near their end); anything else (TensorFlowShim's HDF5) is detected as the file it is."""
    whole = False
    first = sub.read(0, 1)
    if first and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF)):
        try:
            whole = Walker(_Buf(sub), out_of_time=nav.out_of_time).walk(0, sub.size) == sub.size
        except (MsgpackError, OverflowError):
            whole = False
    if not whole:
        ctx.inspect_member(sub, label)
        return
    child = ctx.child(label)
    if child is not None:
        run_inspector(nav.msgpack, sub, child)


def _bin(nav: _Nav, pos: int) -> Blob | None:
    kind, hlen, n, _ = nav._w._header(pos, nav.end)
    return Blob(pos + hlen, n, kind) if kind == "bin" else None


def _shim(nav: _Nav, reader: Reader, ctx: InspectContext, keys: dict[str, int]) -> None:
    """A thinc shim's map: ``state``/``model`` bytes are a file its loader opens; HFShim's tokenizer."""
    for name in ("state", "model"):
        if name in keys:
            b = _bin(nav, keys[name])
            if b is not None and b.size:
                ctx.inspect_member(SliceReader(reader, b.pos, b.size, name), name)
    config = nav.entries(keys["config"])
    if config and any(k == "auto_map" for k, _ in config):
        ctx.add(
            "MSGPACK-SHIM-CODE",
            "the transformer config of this spacy-transformers shim has auto_map: remote code a loader imports",
        )
    if "tokenizer" in keys:
        _tokenizer(nav, reader, ctx, keys["tokenizer"])


def _tokenizer(nav: _Nav, reader: Reader, ctx: InspectContext, pos: int) -> None:
    kind = nav._w._header(pos, nav.end)[0]
    if kind != "map":
        return  # HFShim.from_bytes fails on it (tok_dict.pop) before writing anything
    entries = nav.entries(pos)
    if entries is None:
        ctx.add("MSGPACK-SHIM-CODE", f"tokenizer map has more than {MAX_ENTRIES} entries; not judged")
        ctx.partial("tokenizer map too long")
        return
    for name, vpos in entries:
        if name == "kwargs":
            _kwargs(nav, ctx, vpos)
            continue
        shown = repr(name)[:120]
        if not _plain_name(name):
            ctx.add(
                "MSGPACK-SHIM-PATH",
                f"tokenizer entry {shown} is not a plain file name: HFShim.from_bytes writes it to "
                "temp_dir / name, outside its temporary folder",
                severity=Severity.CRITICAL,
            )
            continue
        assert isinstance(name, str)
        b = _bin(nav, vpos)
        if b is None:
            continue  # Path.write_bytes refuses anything but bytes: the load stops here
        if name.lower().endswith(CODE_SUFFIXES):
            ctx.add(
                "MSGPACK-SHIM-CODE",
                f"tokenizer entry {shown} is code: AutoTokenizer.from_pretrained imports Python files "
                "it is given through auto_map",
            )
        elif name.lower().endswith(".json") and b.size <= JSON_CAP:
            try:
                doc = json.loads(reader.read(b.pos, b.size))
            except (ValueError, UnicodeDecodeError):
                doc = None
            if isinstance(doc, dict) and "auto_map" in doc:
                ctx.add(
                    "MSGPACK-SHIM-CODE",
                    f"tokenizer entry {shown} has auto_map: AutoTokenizer.from_pretrained imports that code",
                )
        ctx.inspect_member(SliceReader(reader, b.pos, b.size, name), f"tokenizer/{name}")


def _kwargs(nav: _Nav, ctx: InspectContext, pos: int) -> None:
    entries = nav.entries(pos)
    if entries is None:
        ctx.add("MSGPACK-SHIM-CODE", "tokenizer kwargs is not a short map: not the use_fast HFShim writes")
        return
    for key, vpos in entries:
        value = nav.value(vpos)
        if key == "use_fast" and (value is None or isinstance(value, bool)):
            continue
        if key == "trust_remote_code" and not _truthy(value):
            continue
        bad = key == "trust_remote_code"
        ctx.add(
            "MSGPACK-SHIM-CODE",
            f"tokenizer kwargs {repr(key)[:80]}={repr(value)[:80]} reach AutoTokenizer.from_pretrained"
            + (": remote code runs" if bad else ": HFShim writes only use_fast"),
            severity=Severity.CRITICAL if bad else Severity.HIGH,
        )
