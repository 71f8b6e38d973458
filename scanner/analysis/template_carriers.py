"""Values in JSON, YAML and text files that loaders execute: Jinja templates and hydra ``_target_`` calls.

Carriers are found by content, not by name: any string holding ``{{ }}`` or
``{% %}`` is analysed as a template (strictly under a key naming a template,
e.g. ``chat_template`` and its list form, or in a ``.jinja`` file), any
``_target_``/``class_path`` is judged as a call. What cannot be read whole
(too big, unparseable YAML holding targets) is a blocking finding with partial
coverage, never a pass.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable
from typing import Any

from ..findings import Severity
from ..formats.interface import InspectContext
from ..io.reader import Reader
from .hydra_targets import DOTTED_NAME, TARGET_KEYS, TargetIssue, judge_target, resolver_issues
from .template_language import MAX_TEMPLATE_CHARS

MAX_YAML_BYTES = 512 << 10  # real hydra/NeMo configs are KBs; PyYAML needs ~60x the text in memory
# PyYAML's pure-Python reader (OmegaConf's) reads ~70 KB/s: tried on text libyaml refuses up to this size (past it
# a .yaml config that does not parse fails closed as before)
MAX_PY_YAML_CHARS = 128 << 10
MAX_JSON_TREE_BYTES = 4 << 20  # larger JSON is scanned literal by literal instead of re-parsed into objects
MAX_LITERAL_CARRY = 16 << 20
LITERAL_WINDOW = 8 << 20
MAX_VALUES_WALKED = 2_000_000
MAX_TEMPLATES_PER_FILE = 256
MAX_FINDINGS_PER_RULE = 20
# HyperPyYAML (SpeechBrain hyperparams.yaml, load_hyperpyyaml): these tags pydoc.locate a dotted name and
# instantiate (!new:), call (!apply:, !applyref:), partially apply (!name:) or import (!module:) it while loading
HPY_TAGS = ("!new:", "!apply:", "!applyref:", "!name:", "!module:")
# CompVis/Stability instantiate_from_config (ldm.util, sgm.util; AUTOMATIC1111 instantiates the <checkpoint>.yaml
# found beside a checkpoint): get_obj_from_str(config["target"])(**config.get("params", {})), nested configs too.
# A document with a {target: dotted.name, params: ...} node is such a config, and every dotted target in it a call.
# Hydra 0.11/1.0 instantiate read the same shape as {class|cls|target: dotted.name, params: ...}.
COMPVIS_KEYS = ("target", "cls", "class")
_COMPVIS_PARAMS = "params"
MAX_COMPVIS_TARGETS = 2000
# fiddle serialization (NeMo 2 checkpoints' context/io.json, fiddle.experimental.serialization.load_json):
# {"type": "pyref", "module": M, "name": N} is importlib.import_module(M) and a getattr walk of N, and the
# Buildable it types is called by fdl.build: judged like a hydra target
PYREF = "pyref"
_MARKERS = (
    b"{{",
    b"{%",
    b"_target_",
    b"target",
    b"params",
    b"pyref",
    b"class_path",
    b"${",
    b"!!python",
    b"!python",
    *(t.encode() for t in HPY_TAGS),
    *(_TAG_SPELLINGS := (b"%TAG", b"!<", b"!!%")),
)
# a Python tag spelled without "!!python": a %TAG directive naming the prefix (``%TAG !p! tag:yaml.org,2002:python/``
# then ``!p!object/apply:os.system``), a verbatim tag (``!<tag:yaml.org,2002:python/...>``) or URI escapes in the
# suffix (``!!%70ython/...``): PyYAML resolves each to the same python/ tag, and yaml.unsafe_load called os.system
_TARGET_MARKERS = frozenset(
    {b"_target_", b"class_path", b"!!python", b"!python", *(t.encode() for t in HPY_TAGS), *_TAG_SPELLINGS}
)
# a YAML tag whose text holds a URI escape: PyYAML and ruamel decode it (``!appl%79:os.system`` is HyperPyYAML's
# ``!apply:os.system``, which load_hyperpyyaml 1.2.3 called; ``!!%70ython/...`` a Python tag)
_ESCAPED_TAG = re.compile(rb"(?:^|[\s\[\]{},:?-])![!\w.:/;?@&=+$,~*'()#-]*%[0-9A-Fa-f]{2}")
_TEMPLATE_NAMES = re.compile(r"\.(?:jinja2?|j2)$", re.I)
_YAML_NAMES = re.compile(r"\.ya?ml$", re.I)
_PY_TAG = "tag:yaml.org,2002:python/"


def _name(ctx: InspectContext) -> str:
    return posixpath.basename(
        (ctx.member_name if ctx.member_name is not None else ctx.path).replace("\\", "/")
    )


def has_markers(reader: Reader, markers: tuple[bytes, ...] = _MARKERS) -> set[bytes]:
    """Which marker byte strings occur anywhere in the file (streamed, with overlap)."""
    found: set[bytes] = set()
    tail = b""
    for chunk in reader.stream(0, chunk=1 << 20):
        buf = tail + chunk
        found.update(m for m in markers if m in buf)
        tail = buf[-16:]
        if len(found) == len(markers):
            break
    return found


def _has_target_key(docs: list[Any]) -> bool:
    """Whether any mapping in parsed YAML has an instantiate key (found after escapes were decoded)."""
    seen: set[int] = set()
    stack: list[Any] = list(docs)
    walked = 0
    while stack and walked < MAX_VALUES_WALKED:
        obj = stack.pop()
        walked += 1
        if isinstance(obj, (dict, list)):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(obj, dict):
                if any(isinstance(k, str) and k in TARGET_KEYS for k in obj) or _calls_on_load(obj):
                    return True
                stack.extend(obj.values())
            else:
                stack.extend(obj)
    return bool(stack)  # cut at the cap: judge it whole rather than assume nothing is there


def _calls_on_load(obj: dict[Any, Any]) -> bool:
    """An instantiate_from_config / hydra 0.x node or a fiddle pyref (keys found after escapes were decoded)."""
    if obj.get("type") == PYREF:
        return True
    return _COMPVIS_PARAMS in obj and any(isinstance(obj.get(k), str) for k in COMPVIS_KEYS)


def templated(s: str) -> bool:
    """A string a Jinja renderer would treat as a template: an opener and its closer."""
    return ("{{" in s and "}}" in s) or ("{%" in s and "%}" in s)


# --------------------------------------------------------------------------- text files (.jinja, .yaml, anything)


def inspect_text(reader: Reader, ctx: InspectContext) -> None:
    """Text files: templates by content, YAML configs with targets; the rest carries nothing executable."""
    markers = has_markers(reader, (*_MARKERS, b"\\", b"%"))
    escaped = b"\\" in markers
    if (
        b"%" in markers
        and not markers & _TARGET_MARKERS
        and reader.size <= MAX_YAML_BYTES
        and _ESCAPED_TAG.search(reader.read(0, reader.size))
    ):
        markers.add(b"!!%")  # a tag spelled with URI escapes is judged as the tag it decodes to
    markers.discard(b"\\")
    markers.discard(b"%")
    name = _name(ctx)
    if escaped and not markers & _TARGET_MARKERS and reader.size <= MAX_YAML_BYTES:
        # a double-quoted YAML key spelled with escapes ("\x5ftarget_", "\u005ftarget_", a line-folding "\")
        # decodes to _target_ in OmegaConf/hydra: find targets after decoding, not in the raw bytes
        docs = _load_yaml(
            reader.read(0, reader.size).decode("utf-8", "replace"),
            ctx,
            strict=False,
            retry=bool(_YAML_NAMES.search(name)),
        )
        if docs is not None and _has_target_key(docs):
            walk_values(docs, ctx)
            return
    if not markers:
        return
    is_template_file = bool(_TEMPLATE_NAMES.search(name))
    yaml_like = bool(_YAML_NAMES.search(name)) or bool(markers & _TARGET_MARKERS)
    targets = bool(markers & _TARGET_MARKERS)
    if yaml_like and not is_template_file:
        if reader.size > MAX_YAML_BYTES:
            if targets or {b"target", b"params"} <= markers:  # instantiate_from_config: target + params
                ctx.add(
                    "CONFIG-TARGET-UNREADABLE",
                    f"{reader.size}-byte YAML/text with instantiate targets exceeds "
                    f"{MAX_YAML_BYTES} bytes; targets not judged",
                    evidence={"limit": MAX_YAML_BYTES},
                )
                ctx.partial("YAML config too large to judge its targets")
                return
        else:  # parsed values are judged one by one; otherwise the text is judged whole below
            # a .yaml file with targets must parse (hydra reads it by that name); other text may be prose about them
            strict = targets and bool(_YAML_NAMES.search(name))
            docs = _load_yaml(
                reader.read(0, reader.size).decode("utf-8", "replace"),
                ctx,
                strict=strict,
                retry=bool(_YAML_NAMES.search(name)),
            )
            if docs is not None:
                walk_values(docs, ctx)
                return
            if strict:
                return
    if not markers & {b"{{", b"{%"}:
        return
    if reader.size > 4 * MAX_TEMPLATE_CHARS:
        _oversize_template(ctx, reader.size)
        return
    text = reader.read(0, reader.size).decode("utf-8", "replace")
    if is_template_file or templated(text):
        judge_template(
            text, ctx, where=name, strict=is_template_file or name.lower().startswith("chat_template")
        )


def _oversize_template(ctx: InspectContext, size: int) -> None:
    ctx.add(
        "TEMPLATE-OVERSIZE",
        f"{size}-byte file with Jinja markers is too large to analyse as a template",
        evidence={"bytes": size, "limit": MAX_TEMPLATE_CHARS},
    )
    ctx.partial("template too large to analyse")


# --------------------------------------------------------------------------- YAML


def _read_yaml(text: str, loader_cls: Any) -> tuple[list[Any], list[str]]:
    """Every document, the tags seen and the losers of duplicate keys (as extra documents); raises on bad YAML."""
    loader = loader_cls(text)
    try:
        docs: list[Any] = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs + loader.shadowed, loader.tags
    finally:
        getattr(loader, "dispose", lambda: None)()


def _load_yaml(text: str, ctx: InspectContext, *, strict: bool, retry: bool = False) -> list[Any] | None:
    """Every document of the text (None when it does not parse). ``retry``: a YAML-named file libyaml refuses is
    read again with PyYAML's own reader, OmegaConf's (it accepts e.g. ``[_target_:]``), up to MAX_PY_YAML_CHARS."""
    import yaml  # ~17 ms: only for text that looks like a config

    from .recording_yaml_loader import PyRecordingLoader, RecordingLoader, readers_may_differ

    errors = (yaml.YAMLError, RecursionError, ValueError, TypeError)
    # libyaml reads fast and is what MLflow reads with; OmegaConf (hydra, NeMo) reads with PyYAML's own scanner.
    # Where the two can disagree, or libyaml refuses what PyYAML may accept, PyYAML's reading is judged too.
    failure: BaseException | None = None
    try:
        docs, tags = _read_yaml(text, RecordingLoader)
    except errors as exc:
        docs, tags, failure = [], [], exc
    if failure is not None and retry and len(text) <= MAX_PY_YAML_CHARS:
        try:
            docs, tags = _read_yaml(text, PyRecordingLoader)
            failure = None
        except errors:
            pass
    elif failure is None and readers_may_differ(text):
        try:
            more, more_tags = _read_yaml(text, PyRecordingLoader)
            docs, tags = docs + more, tags + more_tags
        except errors:
            pass  # PyYAML refuses it: OmegaConf loads nothing, libyaml's reading was judged
    if failure is not None:
        if strict:
            ctx.add(
                "CONFIG-TARGET-UNREADABLE",
                f"YAML does not parse, so its targets cannot be judged: {failure}"[:300],
            )
            ctx.partial("YAML not parseable")
        return None
    py_tags = sorted(
        {t for t in tags if t.startswith(_PY_TAG) or t.startswith("!python") or t.startswith("!!python")}
    )
    if py_tags:
        ctx.add(
            "CONFIG-TARGET-DANGEROUS",
            f"YAML python tag {py_tags[0]!r}: unsafe YAML loaders construct or call Python objects",
            severity=Severity.CRITICAL,
            evidence={"tags": py_tags[:10]},
        )
    _judge_hyperpyyaml_tags(tags, ctx)
    return docs


def _judge_hyperpyyaml_tags(tags: list[str], ctx: InspectContext) -> None:
    """HyperPyYAML tag targets are hydra targets by another spelling: the same allowlist judges them."""
    counts: dict[str, int] = {}
    for tag in dict.fromkeys(tags):
        prefix = next((p for p in HPY_TAGS if tag.startswith(p)), None)
        if prefix is None:
            continue
        issue = judge_target(tag[len(prefix) :], prefix.rstrip(":"), ctx.rules)
        if issue is not None:
            _add(
                ctx,
                counts,
                issue.rule_id,
                f"HyperPyYAML {prefix.rstrip(':')} tag: {issue.message}",
                issue.severity,
                {"key": prefix.rstrip(":"), "target": tag[len(prefix) :][:200], "loader": "hyperpyyaml"},
            )


# --------------------------------------------------------------------------- JSON


def inspect_json_text(raw: bytes, ctx: InspectContext) -> None:
    """A JSON document already known to parse: judge templates and targets, duplicate keys included."""
    if not any(m in raw for m in (*_MARKERS, b"\\u")):  # an escaped "\\u005ftarget_" is a target key too
        return
    if len(raw) > MAX_JSON_TREE_BYTES:
        if b'"pyref"' in raw:
            _pyref_unjudged(ctx)
        _scan_json_literals([raw], ctx)
        return
    shadowed: list[Any] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                shadowed.append({k: out[k]})
            out[k] = v
        return out

    try:
        doc = json.loads(raw, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return  # the JSON inspector reports documents that do not parse
    if fiddle_remote_code(doc):
        ctx.add(
            "CONFIG-TARGET-UNLISTED",
            "fiddle config builds a callable with trust_remote_code: true; "
            "the repository code it loads is outside this scan",
            evidence={"key": "trust_remote_code", "loader": "fiddle"},
        )
    walk_values([doc, *shadowed], ctx)


def fiddle_remote_code(doc: Any) -> bool:
    """A fiddle-serialized Buildable (NeMo 2 io.json) given trust_remote_code set to true.

    Config.__unflatten__ names its values by position from the metadata's argument_names tuple (the
    ``Attr(name=...)`` label beside each value is not read back), so both spellings are checked."""
    objs = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objs, dict):
        return False

    def deref(v: Any) -> Any:
        for _ in range(16):
            if not (isinstance(v, dict) and v.get("type") == "ref" and isinstance(v.get("key"), str)):
                break
            v = objs.get(v["key"])
        return v.get("value") if isinstance(v, dict) and v.get("type") == "leaf" else v

    def values(o: Any) -> list[Any]:
        items = o.get("items") if isinstance(o, dict) else None
        return (
            [it for it in items if isinstance(it, list) and len(it) == 2] if isinstance(items, list) else []
        )

    for o in objs.values():
        items = values(o)
        meta = deref(o.get("metadata")) if isinstance(o, dict) else None
        meta_items = values(meta)
        if isinstance(meta, dict) and meta.get("type") == {
            "type": PYREF,
            "module": "builtins",
            "name": "tuple",
        }:
            names = [deref(v) for _, v in meta_items]  # a dict's metadata: its keys, in order
        else:  # a Buildable's: BuildableTraverserMetadata(fn_or_cls, argument_names, ...)
            names = [deref(v) for _, v in values(deref(meta_items[1][1]))] if len(meta_items) > 1 else []
        for i, (label, v) in enumerate(items):
            named = (isinstance(label, str) and "trust_remote_code" in label) or (
                i < len(names) and names[i] == "trust_remote_code"
            )
            if named and fiddle_truthy(deref(v)):
                return True
    return False


_FIDDLE_CONTAINERS = frozenset({"list", "tuple", "dict", "set", "frozenset"})


def fiddle_truthy(v: Any) -> bool:
    """``if trust_remote_code:`` on what fdl.build passes: the value as serialized, never coerced. A string is
    true unless empty ("False" and "no" included), a builtins container true when it has items, any other object
    (a Buildable, a pyref'd class or function, an enum member ...) true."""
    if isinstance(v, dict):
        t = v.get("type")
        if t == PYREF:
            return True  # a class or function object
        if isinstance(t, dict) and t.get("type") == PYREF:
            if t.get("module") == "builtins" and t.get("name") in _FIDDLE_CONTAINERS:
                items = v.get("items")
                return not isinstance(items, list) or bool(items)
            return True  # a Buildable or another object built from the config
        return True  # not a fiddle value this check can read: counted as true (fail closed)
    return bool(v)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear, no backtracking
_COLON = re.compile(rb"\s*:\s*")
_INTERESTING = (b"\\", b"{{", b"{%", b"_target_", b"class_path", b"${")


def _scan_json_literals(chunks: Iterable[bytes], ctx: InspectContext) -> None:
    """Big JSON (tokenizer files): every string literal holding a marker or an escape, without building objects.

    Reads window by window, so memory stays bounded whatever the file size; keys are decoded too, so an escaped
    ``"\\u005ftarget_"`` is still a target, and every duplicate is seen.
    """
    st = _LiteralScan(ctx)
    carry = b""
    chunks = iter(chunks)
    chunk = next(chunks, None)
    while chunk is not None:
        nxt = next(chunks, None)
        buf = carry + chunk
        done = st.feed(buf, final=nxt is None)
        if done is None:
            return
        carry = buf[done:]
        if len(carry) > MAX_LITERAL_CARRY:
            ctx.add(
                "TEMPLATE-OVERSIZE",
                f"a JSON string longer than {MAX_LITERAL_CARRY} bytes; the rest not analysed",
            )
            ctx.partial("JSON string too long to judge")
            return
        chunk = nxt


# a JSON number, true or false, ending where the value does (a following delimiter or the end of the buffer)
_JSON_SCALAR = re.compile(
    rb"(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false)(?=[\s,}\]]|\Z)"
)


def _scalar(lit: bytes) -> int | float | bool | None:
    """The Python value ``json.loads`` gives a JSON number or boolean literal (None, judged as a container, for
    a number too long for ``int``: 4,300 digits raise in every reader)."""
    if len(lit) > 64:
        return None
    if lit in (b"true", b"false"):
        return lit == b"true"
    text = lit.decode("ascii")
    return float(text) if any(c in text for c in ".eE") else int(text)


class _LiteralScan:
    def __init__(self, ctx: InspectContext) -> None:
        self.ctx = ctx
        self.counts: dict[str, int] = {}
        self.templates = 0
        self.key = ""

    def _target(self, key: str, value: object) -> None:
        issue = judge_target(value, key, self.ctx.rules)
        if issue is not None:
            _add(
                self.ctx,
                self.counts,
                issue.rule_id,
                issue.message,
                issue.severity,
                {"key": key, "target": str(value)[:200]},
            )

    def feed(self, buf: bytes, *, final: bool) -> int | None:
        """Judge the complete literals of ``buf``; returns where the unjudged rest starts (None: stop)."""
        pos = 0
        while True:
            q = buf.find(b'"', pos)  # outside strings here, so the next quote opens a literal
            if q < 0:
                return len(buf)
            m = _JSON_STRING.match(buf, q)
            if m is None or (not final and m.end() > len(buf) - 256):
                return q if not final else None  # cut by the window (or malformed at the end)
            pos = m.end()
            lit = m.group()
            colon = _COLON.match(buf, m.end())
            if colon is not None:  # a key
                nxt = buf[colon.end() : colon.end() + 1]
                self.key = _decode(lit) if len(lit) < 256 or any(x in lit for x in _INTERESTING) else ""
                if self.key in TARGET_KEYS:
                    if nxt == b'"':
                        v = _JSON_STRING.match(buf, colon.end())
                        if v is None:
                            return q if not final else None
                        self._target(self.key, _decode(v.group()))
                        pos = v.end()
                    elif (n := _JSON_SCALAR.match(buf, colon.end())) is not None:
                        if not final and n.end() > len(buf) - 256:
                            return q  # the number may go on past the window
                        self._target(self.key, _scalar(n.group()))  # hydra imports nothing for a number
                        pos = n.end()
                    elif self.key == "_target_" or nxt == b"[":
                        self._target(self.key, None)  # a container or null where a dotted name belongs
                continue
            if not any(x in lit for x in _INTERESTING):
                continue
            value = _decode(lit)
            if "${" in value:
                for issue in resolver_issues(value):
                    _add(
                        self.ctx,
                        self.counts,
                        issue.rule_id,
                        issue.message,
                        issue.severity,
                        {"key": self.key[:100]},
                    )
            if templated(value) or ("template" in self.key.lower() and ("{{" in value or "{%" in value)):
                self.templates += 1
                if self.templates > MAX_TEMPLATES_PER_FILE:
                    self.ctx.add(
                        "TEMPLATE-OVERSIZE",
                        f"more than {MAX_TEMPLATES_PER_FILE} template-shaped values; the rest not analysed",
                    )
                    self.ctx.partial("too many templates in one file")
                    return None
                judge_template(
                    value, self.ctx, where=self.key or "value", strict="template" in self.key.lower()
                )


def _decode(lit: bytes) -> str:
    try:
        value = json.loads(lit)
    except ValueError:
        return lit.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


# --------------------------------------------------------------------------- the walk


def walk_values(roots: list[Any], ctx: InspectContext) -> None:
    """Every target and template-shaped string in parsed JSON/YAML; each container visited once (aliases)."""
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(r, "") for r in reversed(roots)]
    counts: dict[str, int] = {}
    templates = 0
    walked = 0
    # dotted target/cls/class values, judged when the document is instantiate_from_config-style
    compvis: dict[tuple[str, str], None] = {}
    compvis_style = False
    root = next(
        (r for r in roots if isinstance(r, dict)), None
    )  # what ${a.b} node interpolations resolve from
    while stack:
        obj, key = stack.pop()
        walked += 1
        if walked > MAX_VALUES_WALKED:
            ctx.add(
                "CONFIG-TARGET-UNREADABLE", f"more than {MAX_VALUES_WALKED} values; the rest was not judged"
            )
            ctx.partial("config value walk stopped at its cap")
            return
        if isinstance(obj, dict):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            for tk in TARGET_KEYS:
                if tk in obj and (tk == "_target_" or isinstance(obj.get("init_args", {}), dict)):
                    args = obj.get("init_args") if tk == "class_path" else obj
                    if isinstance(args, dict) and remote_code_requested(args):
                        # an allowlisted loader (NeMo/transformers AutoTokenizer, from_pretrained ...) told to run
                        # a model repository's own code: code from outside this scan
                        _add(
                            ctx,
                            counts,
                            "CONFIG-TARGET-UNLISTED",
                            f"{tk} {str(obj[tk])[:200]!r} is instantiated with trust_remote_code: true; "
                            "the repository code it loads is outside this scan",
                            None,
                            {"key": "trust_remote_code", "target": str(obj[tk])[:200]},
                        )
                    target = obj[tk]
                    issue = judge_target(target, tk, ctx.rules)
                    # ${a.b} is resolved before the import; hydra composition (defaults lists, config groups whose
                    # absolute references name the composed root) can replace what it names, so an interpolated
                    # target stays computed (blocks) and the value it names in this file can only raise severity
                    resolved = resolve_node_ref(target, root)
                    if resolved is not target:
                        worse = judge_target(resolved, tk, ctx.rules)
                        if worse is not None and worse.rule_id == "CONFIG-TARGET-DANGEROUS":
                            issue = TargetIssue(
                                worse.rule_id,
                                worse.severity,
                                f"{worse.message} (resolved from {str(target)[:100]!r})",
                            )
                            target = resolved
                    if issue is not None:
                        _add(
                            ctx,
                            counts,
                            issue.rule_id,
                            issue.message,
                            issue.severity,
                            {"key": tk, "target": str(target)[:200]},
                        )
            if (
                obj.get("type") == PYREF
                and isinstance(obj.get("module"), str)
                and isinstance(obj.get("name"), str)
            ):
                ref = f"{obj['module']}.{obj['name']}"
                issue = judge_target(ref, PYREF, ctx.rules)
                if issue is not None:
                    _add(
                        ctx,
                        counts,
                        issue.rule_id,
                        f"fiddle pyref (imported when the config is deserialized): {issue.message}",
                        issue.severity,
                        {"key": PYREF, "target": ref[:200], "loader": "fiddle"},
                    )
            for ck in COMPVIS_KEYS:
                # an interpolation is resolved by OmegaConf.load before config["target"] is read: judged as a
                # computed name (OmegaConf.merge of base configs can replace what it names) and as the value it
                # names in this document
                raw = obj.get(ck)
                if not isinstance(raw, str):
                    continue
                resolved = resolve_node_ref(raw, root) if "${" in raw else raw
                for ct in dict.fromkeys([raw, resolved] if isinstance(resolved, str) else [raw]):
                    if (DOTTED_NAME.fullmatch(ct) and "." in ct) or "${" in ct:
                        compvis[(ck, ct)] = None
                        compvis_style = compvis_style or _COMPVIS_PARAMS in obj
            for k, v in list(obj.items())[::-1]:
                stack.append((v, str(k)))
        elif isinstance(obj, list):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            stack.extend((v, key) for v in reversed(obj))
        elif isinstance(obj, str):
            if "${" in obj:
                for issue in resolver_issues(obj):
                    _add(ctx, counts, issue.rule_id, issue.message, issue.severity, {"key": key[:100]})
            if templated(obj) or ("template" in key.lower() and ("{{" in obj or "{%" in obj)):
                templates += 1
                if templates > MAX_TEMPLATES_PER_FILE:
                    ctx.add(
                        "TEMPLATE-OVERSIZE",
                        f"more than {MAX_TEMPLATES_PER_FILE} template-shaped values; the rest not analysed",
                    )
                    ctx.partial("too many templates in one file")
                    return
                judge_template(obj, ctx, where=key or "value", strict="template" in key.lower())
    if compvis_style:
        _judge_compvis(list(compvis), ctx, counts)


_ABS_REF = re.compile(r"\$\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}")


def resolve_node_ref(value: Any, root: Any, hops: int = 16) -> Any:
    """``${a.b}`` (an absolute node interpolation) followed through the document as OmegaConf resolves it; the
    value itself when it is anything else or cannot be followed (a resolver, a relative or missing key, a cycle):
    the caller judges that as a computed name."""
    current = value
    for _ in range(hops):
        if not isinstance(current, str) or "${" not in current:
            return current if current is not None else value
        m = _ABS_REF.fullmatch(current.strip())
        if m is None:
            return current if current is value else value
        node = root
        for part in m.group(1).split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return value
        current = node
    return value


def _judge_compvis(targets: list[tuple[str, str]], ctx: InspectContext, counts: dict[str, int]) -> None:
    """instantiate_from_config targets: imported and called with the node's params, judged like hydra targets."""
    if len(targets) > MAX_COMPVIS_TARGETS:
        ctx.add(
            "CONFIG-TARGET-UNREADABLE",
            f"more than {MAX_COMPVIS_TARGETS} distinct instantiate_from_config targets; the rest not judged",
        )
        ctx.partial("instantiate_from_config targets past the cap")
    for key, target in targets[:MAX_COMPVIS_TARGETS]:
        issue = judge_target(target, key, ctx.rules)
        if issue is not None:
            _add(
                ctx,
                counts,
                issue.rule_id,
                f"instantiate_from_config target: {issue.message}",
                issue.severity,
                {"key": key, "target": target[:200], "loader": "instantiate_from_config"},
            )


def remote_code_requested(args: dict[Any, Any]) -> bool:
    """trust_remote_code set to anything OmegaConf/Python treats as true."""
    v = args.get("trust_remote_code")
    if isinstance(v, str):
        return v.strip().lower() in ("true", "yes", "on", "1", "y")
    return bool(v) and not isinstance(v, (dict, list))


def _add(
    ctx: InspectContext,
    counts: dict[str, int],
    rule: str,
    message: str,
    severity: Severity | None,
    evidence: dict[str, Any],
) -> None:
    counts[rule] = counts.get(rule, 0) + 1
    if counts[rule] <= MAX_FINDINGS_PER_RULE:
        ctx.add(rule, message, severity=severity, evidence=evidence)


def judge_template(source: str, ctx: InspectContext, *, where: str, strict: bool) -> None:
    """Run the template analysis; strict carriers (named as templates) fail closed when not parseable."""
    from .jinja_template import analyze_template  # jinja2 only when there is a template (start-up, issue #13)

    for issue in analyze_template(source, ctx.limits, rules=ctx.rules):
        sev = issue.severity
        if issue.rule_id in ("TEMPLATE-INVALID", "TEMPLATE-OVERSIZE"):
            if strict:
                ctx.partial(f"template {where!r} not analysed in full")
            else:  # text that merely contains braces; no renderer would take it as a template
                sev = Severity.LOW
        elif issue.rule_id == "TEMPLATE-UNLISTED" and not strict:
            sev = Severity.MEDIUM
        ev = dict(issue.evidence)
        ev["template"] = where[:100]
        ctx.add(issue.rule_id, f"template {where[:100]!r}: {issue.message}"[:500], severity=sev, evidence=ev)


def _pyref_unjudged(ctx: InspectContext) -> None:
    """Literal-by-literal scanning cannot pair a pyref's module with its name: fail closed instead."""
    ctx.add(
        "CONFIG-TARGET-UNREADABLE",
        "JSON with fiddle pyrefs is too large to parse whole; what deserializing it imports is not judged",
    )
    ctx.partial("fiddle pyrefs not judged")


def unparsed_json(reader: Reader, ctx: InspectContext) -> None:
    """A JSON file too large to parse into objects: its string literals are judged window by window."""
    if has_markers(reader, (b'"pyref"',)):
        _pyref_unjudged(ctx)
    if has_markers(reader) or _has_escapes(reader):
        _scan_json_literals(reader.stream(0, chunk=LITERAL_WINDOW), ctx)


def _has_escapes(reader: Reader) -> bool:
    return any(b"\\u" in chunk for chunk in reader.stream(0, chunk=1 << 20))
