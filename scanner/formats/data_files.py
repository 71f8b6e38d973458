"""Data-only formats (text, JSON, images) that nothing executes on load.

They are recognized so that a model repository's README or PNG is reported as
judged, not as an unknown format. Anything binary that is not recognized here
or elsewhere stays "unknown" and fails closed.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from ..findings import Severity
from ..io.reader import Reader
from .interface import FormatHandler, InspectContext
from .parsers.json_cost import reader_value_bound

_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def is_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes; a multi-byte character cut at the end of ``head`` still counts."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the sniff boundary is still text
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


_WS = re.compile(r"[ \t\r\n]*")
_TOKEN = re.compile(
    r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'  # string
    r"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"  # number
    r"|true|false|null|NaN|Infinity|-Infinity"  # literals (Python's json accepts the last three)
    r"|[{}\[\],:]"
)
_TOKEN_PREFIX = re.compile(
    r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{0,4})?)*'  # a string cut by the end of the head
    r"|-?[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]*)?"
    r"|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?|N(?:aN?)?|-?I(?:n(?:f(?:i(?:n(?:i(?:ty?)?)?)?)?)?)?"
)


def json_prefix_ok(text: str, complete: bool) -> bool:
    """Whether ``text`` is a JSON document (``complete``) or the start of one that begins with ``{`` or ``[``.

    A grammar check over the tokens, not a parse: WordPiece ``vocab.txt``
    (``[PAD]``), TOML and INI files (``[section]``) and JSON Lines start like
    JSON but are not, and must be judged as the text they are.
    """
    stack: list[str] = []  # "{" or "["
    expect = "value"  # value | value_or_end | key | key_or_end | colon | comma_or_end | done
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos : pos + 1] not in ("{", "["):
        return False
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not complete and (m is None or (m.end() == len(text) and m.group()[0] not in '{}[],:"')):
            # the last token may be cut by the end of the head (a string, number or literal that goes on)
            if _TOKEN_PREFIX.fullmatch(text, pos) is None:
                return False
            return expect in ("value", "value_or_end") or (
                text[pos] == '"' and expect in ("key", "key_or_end")
            )
        if m is None:
            return False
        tok = m.group()
        c = tok[0]
        if expect == "done":
            return False
        if c in "{[":
            if expect not in ("value", "value_or_end"):
                return False
            stack.append(c)
            expect = "key_or_end" if c == "{" else "value_or_end"
        elif c in "}]":
            if not stack or stack[-1] != ("{" if c == "}" else "["):
                return False
            if expect not in ("comma_or_end", "key_or_end" if c == "}" else "value_or_end"):
                return False
            stack.pop()
            expect = "comma_or_end" if stack else "done"
        elif c == ",":
            if expect != "comma_or_end":
                return False
            expect = "key" if stack[-1] == "{" else "value"
        elif c == ":":
            if expect != "colon":
                return False
            expect = "value"
        elif expect in ("key", "key_or_end"):
            if c != '"':
                return False
            expect = "colon"
        elif expect in ("value", "value_or_end"):
            expect = "comma_or_end" if stack else "done"
        else:
            return False
        pos = _WS.match(text, m.end()).end()  # type: ignore[union-attr]
    return expect == "done" if complete else True


def _head_text(head: bytes) -> str | None:
    if not is_text(head):
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut at the sniff boundary
        return head[: exc.start].decode("utf-8")


def _sniff_json(head: bytes, reader: Reader) -> bool:
    text = _head_text(head)
    if text is None:
        return False
    text = text.lstrip("\ufeff")
    return json_prefix_ok(text, complete=reader.size <= len(head))


def named_json(ctx: InspectContext) -> bool:
    """The file or member is named like JSON, so whatever reads it by that name parses it as JSON."""
    name = ctx.member_name if ctx.member_name is not None else ctx.path
    return posixpath.basename(name.replace("\\", "/")).lower().endswith(".json")


JSON_PARSE_BYTES = 32 << 20  # json.loads needs several times the text in objects; tokenizer.json files fit


def _inspect_json(reader: Reader, ctx: InspectContext) -> None:
    check_json(reader, ctx, named=True)


def check_json(reader: Reader, ctx: InspectContext, *, named: bool) -> None:
    """Parse the whole document; when something will read it as JSON (``named``), failing to is fail-closed."""
    if reader.size > ctx.limits.max_json_bytes:
        ctx.limit_hit("max_json_bytes", f"JSON larger than {ctx.limits.max_json_bytes} bytes not parsed")
        return
    if reader.size > JSON_PARSE_BYTES or reader_value_bound(reader) > ctx.limits.max_json_values:
        # JSON carries no code; a file this large (or with this many values: json.loads costs up to ~25x the
        # text, see json_cost) is checked to be text throughout, not parsed into objects
        if not _sniff_text(reader.head(4096), reader):
            ctx.add("JSON-INVALID", "JSON file contains binary data", severity=Severity.HIGH)
            ctx.partial("JSON not parseable")
            return
        ctx.add(
            "JSON-NOT-VALIDATED", f"{reader.size}-byte JSON checked as text but not parsed (memory bound)"
        )
        if _basename(ctx) in ("config.json", "model.json"):  # a Keras folder's config: objects Keras builds
            ctx.limit_hit(
                "max_json_bytes", f"{reader.size}-byte {_basename(ctx)} not analyzed as a Keras config"
            )
        from ..analysis import template_carriers as carriers  # jinja2, yaml: only when judging

        carriers.unparsed_json(reader, ctx)  # templates and hydra targets, literal by literal
        return
    raw = reader.read(0, reader.size)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        if named:
            ctx.add("JSON-INVALID", f"named .json but not valid JSON: {exc}"[:300], severity=Severity.HIGH)
            ctx.partial("JSON not parseable")
        else:
            ctx.add("JSON-INVALID", f"starts like JSON but is not valid JSON: {exc}"[:300])
    else:
        from ..analysis import template_carriers as carriers

        carriers.inspect_json_text(raw, ctx)  # chat templates and hydra targets, by content
        if looks_like_keras_config(doc):
            _keras_config(doc, ctx)
        if isinstance(doc, dict) and isinstance(doc.get("weightsManifest"), list):
            _tfjs_weight_paths(doc["weightsManifest"], ctx)


MAX_PATH_FINDINGS = 20


def _tfjs_weight_paths(manifest: list[Any], ctx: InspectContext) -> None:
    """A TF.js ``model.json``: tensorflowjs ``read_weights`` (and tfjs-node's ``file://`` handler) opens
    ``join(<model folder>, path)`` for every manifest path, so a path that leaves the folder reads any file the
    loader can open into the weights (``../secret.bin`` was read into a Dense kernel)."""
    from .onnx.onnx_model import check_location

    bad: list[tuple[str, str]] = []
    for group in manifest:
        paths = group.get("paths") if isinstance(group, dict) else None
        for path in paths if isinstance(paths, list) else ():
            why = check_location(path) if isinstance(path, str) else "not a string"
            if why:
                bad.append((str(path), why))
    for path, why in bad[:MAX_PATH_FINDINGS]:
        ctx.add(
            "TF-JS-WEIGHTS-PATH",
            f"weightsManifest path {path[:200]!r} leaves the model folder ({why})",
            evidence={"path": path[:300], "reason": why},
        )
    if len(bad) > MAX_PATH_FINDINGS:
        ctx.add(
            "TF-JS-WEIGHTS-PATH",
            f"... and {len(bad) - MAX_PATH_FINDINGS} more weightsManifest paths outside the model folder",
            evidence={"suppressed": len(bad) - MAX_PATH_FINDINGS},
        )


def looks_like_keras_config(doc: object) -> bool:
    """Whether loading ``doc`` as a Keras config would build an object: what keras.saving.load_model(<folder>)
    / ``hf://`` and keras_hub presets read from a loose config.json, and ``model_from_json`` from model.json.

    Keras's ``deserialize_keras_object`` builds every dict that has both ``class_name`` and ``config`` and
    walks into every list and every other dict, so such a dict anywhere under lists and dicts counts (a
    top-level list of layers, one nested under ``config`` or under any other key), not only one at the top.
    The parsed document is already bounded (``max_json_values``); the search is iterative.
    """
    stack: list[object] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node and "config" in node:
                return True
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))
    return False


def _keras_config(doc: object, ctx: InspectContext) -> None:
    from ..analysis.keras_config import analyze_keras_config
    from .keras.keras_h5 import report_keras

    report_keras(ctx, analyze_keras_config(doc, max_nodes=ctx.limits.max_nodes), "Keras config (JSON)")


def _basename(ctx: InspectContext) -> str:
    name = ctx.member_name if ctx.member_name is not None else ctx.path
    return posixpath.basename(name.replace("\\", "/")).lower()


def _sniff_image(head: bytes, reader: Reader) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _sniff_text(head: bytes, reader: Reader) -> bool:
    if not is_text(head):
        return False
    # the rest of the file must be text too: a text head can front a binary payload
    for chunk in reader.stream(len(head), chunk=1 << 20):
        if b"\x00" in chunk:
            return False
    return True


def _inspect_nothing(reader: Reader, ctx: InspectContext) -> None:
    """Nothing in these formats executes; detection already read what was needed."""


def _inspect_text(reader: Reader, ctx: InspectContext) -> None:
    """Text carries no code, but a text file named .json is what a loader will parse as JSON: it must parse."""
    if named_json(ctx):
        check_json(reader, ctx, named=True)
    elif not token_list(reader, _basename(ctx)):
        from ..analysis import template_carriers as carriers

        carriers.inspect_text(reader, ctx)  # templates and hydra targets, by content


def _wordpiece_line(line: bytes, first: bool) -> bool:
    return b" " not in line and b"\t" not in line


def _merges_line(line: bytes, first: bool) -> bool:
    if first and line.startswith(b"#version"):
        return True
    left, sep, right = line.partition(b" ")
    return bool(sep and left and right and b" " not in right and b"\t" not in line)


# Tokenizer vocabularies that loaders read token by token, by file name: WordPiece ``vocab.txt`` (transformers'
# BertTokenizer.load_vocab / tokenizers' WordPiece.read_file: each line is one token) and BPE ``merges.txt``
# (tokenizers' BPE.read_file and GPT2Tokenizer: an optional ``#version`` line, then one ``left right`` pair per
# line; tokenizers refuses any other line). Nothing renders them as Jinja or reads them as a hydra/YAML config.
_TOKEN_LISTS = {"vocab.txt": _wordpiece_line, "merges.txt": _merges_line}


def token_list(reader: Reader, basename: str) -> bool:
    """Whether the file is a tokenizer vocabulary in the exact line shape its loader reads (see ``_TOKEN_LISTS``).

    Real vocabularies of code-aware tokenizers hold ``{{``, ``}}``, ``{%``, ``__class__`` or ``_target_`` as
    tokens; judged as a template or a config they read as server-side template injection (or, past the template
    size cap, fail closed). A file that has the name but not the shape (a line with spaces in a vocab.txt, a
    merges.txt line that is not one pair) is judged by content like any other text.
    """
    check = _TOKEN_LISTS.get(basename)
    if check is None:
        return False
    rest = b""
    first = True
    for chunk in reader.stream(0, chunk=1 << 20):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if not check(line.removesuffix(b"\r"), first):
                return False
            first = False
        if len(rest) > 4096:  # no token or merge is this long
            return False
    return not rest or check(rest.removesuffix(b"\r"), first)


JSON = FormatHandler("json", _sniff_json, _inspect_json, family="json", claims=(".json",))
IMAGE = FormatHandler(
    "image", _sniff_image, _inspect_nothing, family="image", claims=(".png", ".jpg", ".jpeg", ".gif", ".webp")
)
TEXT = FormatHandler("text", _sniff_text, _inspect_text, family="text", claims=(".txt", ".md"))
