"""skops ``.skops`` files: a zip of ``schema.json`` (a tree of loader nodes) plus ``.npy``/``.npz``/``.bin`` members.

``skops.io.load`` reads ``schema.json``, checks its ``protocol`` (an int, 0 to 2
for skops 0.16), builds one node per JSON object from its ``__loader__``
(``get_tree``), audits the tree against the caller's ``trusted`` list and then
constructs it. In practice users pass ``trusted=get_untrusted_types(file=...)``,
i.e. they trust whatever the file names, and the audit itself had holes
(CVE-2025-54412 OperatorFuncNode, CVE-2025-54413 MethodNode, CVE-2025-54886
Card.load trusting by default). So the scanner does not repeat skops' audit: it
models what each node's construction really imports and calls and judges every
``module:name`` against the pickle allowlist (the default profiles plus the
``skops`` profile of loader-intrinsic types, or the policy's profiles), with the
pickle rule ids. What each loader does (skops/io/_general.py, _numpy.py,
_scipy.py, _sklearn.py, _quantile_forest.py, old/):

- imports ``__module__``/``__class__`` and calls it: DictNode/ListNode/SetNode
  (``cls()``/``cls(items)``), ConstructorFromReduceNode (``cls(*args)``),
  LossNode (``cls(*args)`` then ``__setstate__``), RandomStateNode,
  RandomGeneratorNode (plus ``numpy.random.<bit generator name>`` taken from the
  state and ``SeedSequence``), NdArrayNode of a type other than ndarray
  (``cls(array)``), OperatorFuncNode (``operator.<__class__>(*attrs)``);
- imports it and builds it without ``__init__``: ObjectNode (``cls.__new__``
  then ``__setstate__``/``__dict__.update``);
- imports it and stores it: FunctionNode and TypeNode (a type stored as a dict
  key type is called on the key); protocol-0 FunctionNode imports
  ``content.module_path:content.function`` instead;
- fetches an attribute: MethodNode (``getattr(obj, func)``, judged as
  ``module:Class.func``);
- builds a fixed type: TreeNode (``sklearn.tree._tree.Tree``), PartialNode
  (``functools.partial``), DefaultDictNode, MaskedArrayNode, DTypeNode,
  SparseMatrixNode (``load_npz``), BytesNode, SliceNode, JsonNode (``json.loads``),
  CachedNode (an earlier node).

Every JSON object with a ``__loader__`` anywhere in the schema is judged, also
where the loader would not look (conservative), and ``__module__``/``__class__``
of fixed-type nodes are judged as declared names (they reach
``get_untrusted_types`` and so the trusted list). An unknown loader or protocol
blocks. The walk is iterative with size, value, node and depth caps. Members are
judged by content: ``.npy``/``.npz`` through the numpy inspectors (object arrays
fail closed), ``.bin`` bytes only when they look like a pickle/archive.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..io.reader import Reader
from .interface import FormatHandler, InspectContext
from .zip.listing import ZipEntry, list_names, looks_like_zip

if TYPE_CHECKING:
    from .pickle.classify import Classifier

LOADER = "skops.io.load"
SCHEMA = "schema.json"
PROTOCOL_MAX = 2  # skops 0.16.0 (skops/io/_protocol.py)
SKOPS_PROFILE = "skops"  # signatures/pickle/profiles/skops.yaml: types the skops loader itself uses
MAX_SCHEMA_DEPTH = 500  # JSON nesting; skops' recursive get_tree fails near Python's recursion limit
MAX_REPORTED = 50  # distinct findings of one kind per schema
PATH_CHARS = 200
MAX_POOL_SIZE = 1024

# Use of a (module, name) by the loader, strongest first.
CALL = "call"  # imported and called with arguments from the file
FIXED = "fixed"  # the loader's own constructor (which callable is not up to the file)
NEW = "new"  # imported, cls.__new__(cls) then __setstate__ / __dict__.update
IMPORT = "import"  # imported and stored (an estimator or a dict may call it later)
DECLARED = "declared"  # named by a fixed-type node: not imported, but listed by get_untrusted_types
_RANK = {CALL: 0, FIXED: 1, NEW: 2, IMPORT: 3, DECLARED: 4}
_USE_TEXT = {
    CALL: "called",
    FIXED: "built",
    NEW: "instantiated (cls.__new__ + __setstate__)",
    IMPORT: "imported",
    DECLARED: "declared",
}

_CALLS_CLASS = {"DictNode", "ListNode", "SetNode", "ConstructorFromReduceNode", "LossNode", "RandomStateNode"}
_FIXED = {  # loaders that build a fixed type whatever __module__/__class__ say: what they do build
    "DefaultDictNode": ("collections", "defaultdict"),
    "PartialNode": ("functools", "partial"),
    "TreeNode": ("sklearn.tree._tree", "Tree"),
    "MaskedArrayNode": ("numpy.ma", "MaskedArray"),
    "DTypeNode": None,
    "SparseMatrixNode": None,
    "BytesNode": None,
    "BytearrayNode": None,
    "SliceNode": None,
}
KNOWN_LOADERS = frozenset(
    {
        *_CALLS_CLASS,
        *_FIXED,
        "TupleNode",
        "FunctionNode",
        "MethodNode",
        "TypeNode",
        "ObjectNode",
        "JsonNode",
        "OperatorFuncNode",
        "NdArrayNode",
        "RandomGeneratorNode",
        "QuantileForestNode",
        "CachedNode",
    }
)
_FILE_LOADERS = {"NdArrayNode", "SparseMatrixNode", "BytesNode", "BytearrayNode"}


def _sniff(head: bytes, reader: Reader) -> bool:
    """A zip with a top-level ``schema.json`` whose text is a JSON object (Python's zipfile cuts names at NUL)."""
    if not looks_like_zip(head, reader):
        return False
    if SCHEMA not in {n.split("\x00", 1)[0] for n in list_names(reader)}:
        return False
    from .zip.listing import central_listing
    from .zip.members import member_head

    listing = central_listing(reader)
    if listing is None:
        return False
    for e in listing.entries:
        if e.name.split("\x00", 1)[0] == SCHEMA:
            # an object: whether it has skops' keys is decided on the parsed JSON (keys may be escaped or
            # come after any amount of whitespace), and a schema without them is judged as plain JSON
            head_text = member_head(reader, e, 4096)
            try:  # json.loads of bytes (skops' read) accepts UTF-8 with or without BOM, UTF-16 and UTF-32
                text = head_text.decode(json.detect_encoding(head_text), "ignore")
            except LookupError:
                continue
            text = text.lstrip(" \t\r\n\ufeff")
            if not text or text.startswith("{"):  # only whitespace in the head: padding before the object
                return True
    return False


@dataclass
class _Use:
    module: str
    name: str
    use: str
    loader: str
    where: str
    count: int = 1


@dataclass
class _Walk:
    """What one schema asks the loader to import, call and read."""

    protocol: Any = None
    uses: dict[tuple[str, str], _Use] = field(default_factory=dict)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    unknown: dict[str, str] = field(default_factory=dict)  # loader -> where
    files: dict[str, str] = field(default_factory=dict)  # member name -> loader reading it
    nodes: int = 0
    alloc: list[tuple[str, str]] = field(default_factory=list)  # (where, why): sizes the file sets
    loaders: dict[str, int] = field(default_factory=dict)

    def use(self, module: Any, name: Any, use: str, loader: str, where: str) -> None:
        if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
            if use != DECLARED:
                self.bad(where, f"{loader} names a non-string or empty module/class ({module!r}, {name!r})")
            return
        key = (module, name)
        old = self.uses.get(key)
        if old is None:
            self.uses[key] = _Use(module, name, use, loader, where)
            return
        old.count += 1
        if _RANK[use] < _RANK[old.use]:
            old.use, old.loader, old.where = use, loader, where

    def bad(self, where: str, why: str) -> None:
        if len(self.invalid) < MAX_REPORTED:
            self.invalid.append((where, why))


def _child(path: str, key: str | int) -> str:
    p = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"
    return p if len(p) <= PATH_CHARS else "…" + p[-PATH_CHARS:]


def _json_str(node: Any) -> Any:
    """The value a JsonNode stands for (json.loads of its content), or None."""
    if (
        isinstance(node, dict)
        and node.get("__loader__") == "JsonNode"
        and isinstance(node.get("content"), str)
    ):
        try:
            return json.loads(node["content"])
        except (ValueError, RecursionError):
            return None
    return None


def _bit_generator_names(content: Any) -> list[Any]:
    """Where RandomGeneratorNode (protocols 0-2) reads the bit generator's class name."""
    out: list[Any] = []
    bg = content.get("bit_generator") if isinstance(content, dict) else None
    if not isinstance(bg, dict):
        return out
    if "bit_generator" in bg:  # protocol 0: the state is a plain dict
        out.append(bg["bit_generator"])
    inner = bg.get("content")
    if isinstance(inner, dict) and "bit_generator" in inner:  # a DictNode of JsonNodes
        name = _json_str(inner["bit_generator"])
        out.append(name if name is not None else inner["bit_generator"])
    return out


def _judge_node(node: dict[str, Any], where: str, walk: _Walk, key_type: bool) -> None:
    """Record what constructing this one node imports, calls and reads."""
    loader = node.get("__loader__")
    module, cls = node.get("__module__"), node.get("__class__")
    walk.nodes += 1
    if not isinstance(loader, str):
        walk.bad(where, f"__loader__ is {type(loader).__name__}, not a loader name")
        walk.use(module, cls, CALL, "?", where)
        return
    walk.loaders[loader] = walk.loaders.get(loader, 0) + 1
    if loader == "JsonNode":
        if not isinstance(node.get("content"), str):
            walk.bad(where, "JsonNode content is not a JSON string")
        return
    if loader == "CachedNode":
        return
    if "__class__" not in node or "__module__" not in node:
        walk.bad(where, f"{loader} without __class__/__module__ (the loader refuses it)")
    content = node.get("content")
    if loader not in KNOWN_LOADERS:
        if len(walk.unknown) < MAX_REPORTED:
            walk.unknown.setdefault(loader[:100], where)
        walk.use(module, cls, CALL, loader, where)
        return
    if loader in _CALLS_CLASS or loader == "QuantileForestNode":
        walk.use(module, cls, CALL, loader, where)
    elif loader == "ObjectNode":
        walk.use(module, cls, NEW, loader, where)
    elif loader == "TupleNode":  # imported; a namedtuple class is called with the items
        walk.use(module, cls, CALL if key_type else IMPORT, loader, where)
    elif loader == "TypeNode":
        walk.use(module, cls, CALL if key_type else IMPORT, loader, where)
    elif loader == "FunctionNode":
        walk.use(module, cls, CALL if key_type else IMPORT, loader, where)
        if isinstance(content, dict) and ("module_path" in content or "function" in content):  # protocol 0
            walk.use(
                content.get("module_path"), content.get("function"), IMPORT, loader, _child(where, "content")
            )
    elif loader == "MethodNode":
        obj = content.get("obj") if isinstance(content, dict) else None
        func = content.get("func") if isinstance(content, dict) else None
        if not isinstance(obj, dict) or not isinstance(func, str):
            walk.bad(where, "MethodNode without content.obj/content.func")
        else:
            om, oc = obj.get("__module__"), obj.get("__class__")
            if (om, oc) != (module, cls):
                walk.bad(where, "MethodNode type differs from its object's (the loader refuses it)")
            walk.use(om, f"{oc}.{func}" if isinstance(oc, str) else oc, CALL, loader, where)
    elif loader == "OperatorFuncNode":
        if module != "operator":
            walk.bad(where, f"OperatorFuncNode with module {module!r} (the loader refuses it)")
        walk.use("operator", cls, CALL, loader, where)
    elif loader == "NdArrayNode":
        kind = node.get("type")
        if kind == "numpy":
            if (module, cls) != ("numpy", "ndarray"):  # cls(np.load(member))
                walk.use(module, cls, CALL, loader, where)
            else:
                walk.use(module, cls, DECLARED, loader, where)
        elif kind == "json":  # an object array: items are nodes; np.ndarray(dtype=object) is built
            walk.use(module, cls, DECLARED, loader, where)
        else:
            walk.bad(where, f"NdArrayNode of type {kind!r} (the loader refuses it)")
    elif loader == "RandomGeneratorNode":
        walk.use(module, cls, CALL, loader, where)
        walk.use("numpy.random.bit_generator", "SeedSequence", FIXED, loader, where)
        _check_pool_size(content, where, walk)
        names = _bit_generator_names(content)
        if not names:
            walk.bad(where, "RandomGeneratorNode without a bit generator name (the loader refuses it)")
        for n in names:
            walk.use("numpy.random", n, CALL, loader, _child(where, "content.bit_generator"))
    elif loader in _FIXED:
        built = _FIXED[loader]
        if built is not None:
            walk.use(built[0], built[1], FIXED, loader, where)
        walk.use(module, cls, DECLARED, loader, where)
        if loader == "SparseMatrixNode" and node.get("type") != "scipy":
            walk.bad(where, f"SparseMatrixNode of type {node.get('type')!r} (the loader refuses it)")
    if loader in _FILE_LOADERS and (loader != "NdArrayNode" or node.get("type") == "numpy"):
        name = node.get("file")
        if not isinstance(name, str):
            walk.bad(where, f"{loader} without a member file name")
        else:
            walk.files.setdefault(name, loader)


def _check_pool_size(content: Any, where: str, walk: _Walk) -> None:
    """``SeedSequence(**state)`` allocates ``pool_size`` words: the file sets it (numpy writes 4)."""
    seed = content.get("seed_seq") if isinstance(content, dict) else None
    items = seed.get("content") if isinstance(seed, dict) else None
    if not isinstance(items, dict) or "pool_size" not in items:
        return
    size = _json_str(items["pool_size"])
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_POOL_SIZE:
        walk.alloc.append((where, f"SeedSequence pool_size {str(size)[:40]} (numpy writes 4)"))


def _key_type_nodes(node: dict[str, Any]) -> Iterator[int]:
    """ids of the type nodes a DictNode calls on its keys (``k_type(key)``)."""
    kt = node.get("key_types")
    items = kt.get("content") if isinstance(kt, dict) else None
    if isinstance(items, list):
        for it in items:
            if isinstance(it, dict):
                yield id(it)


def walk_schema(schema: Any, ctx: InspectContext) -> _Walk:
    """Every loader node of the schema, iteratively, with node, depth and time caps."""
    walk = _Walk()
    if not isinstance(schema, dict):
        walk.bad("$", f"schema.json holds a {type(schema).__name__}, not an object")
        return walk
    walk.protocol = schema.get("protocol")
    key_types: set[int] = set()
    stack: list[tuple[Any, str, int]] = [(schema, "$", 0)]
    steps = 0
    max_nodes = ctx.limits.max_nodes
    while stack:
        value, where, depth = stack.pop()
        steps += 1
        if steps & 0xFFF == 0 and ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out walking schema.json; the rest is not judged")
            break
        if depth > MAX_SCHEMA_DEPTH:
            ctx.limit_hit(
                "skops_schema_depth",
                f"schema.json nests deeper than {MAX_SCHEMA_DEPTH} levels at {where}; deeper nodes not judged",
            )
            break
        if isinstance(value, dict):
            if "__loader__" in value:
                if walk.nodes >= max_nodes:
                    ctx.limit_hit(
                        "max_nodes", f"schema.json has more than {max_nodes} nodes; the rest is not judged"
                    )
                    break
                _judge_node(value, where, walk, id(value) in key_types)
                if value.get("__loader__") == "DictNode":
                    key_types.update(_key_type_nodes(value))
            for k, v in value.items():
                if isinstance(v, (dict, list)):
                    stack.append((v, _child(where, str(k)), depth + 1))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, (dict, list)):
                    stack.append((v, _child(where, i), depth + 1))
    if "__loader__" not in schema:
        walk.bad("$", "the top-level object has no __loader__")
    return walk


# --------------------------------------------------------------------------- judging


def _classifier(ctx: InspectContext) -> tuple[Classifier, dict[str, tuple[str, str]]]:
    from .pickle.classify import Classifier
    from .pickle.constraints import load_constraints

    st = ctx.state
    db = st.rules
    names = (
        [p.name for p in db.default_profiles()] if st.allowed_profiles is None else list(st.allowed_profiles)
    )
    # loader-intrinsic types (key types, tuple, bit generators): in force whatever the policy's profiles
    if SKOPS_PROFILE in db.profiles and SKOPS_PROFILE not in names:
        names.append(SKOPS_PROFILE)
    return Classifier(db, names, st.extra_allowed_globals), load_constraints(db.root)


HINT = "; if this is your own class, allow it with a scoped policy allowance (pickle.extra_allowed, sources)"


def _report_uses(walk: _Walk, ctx: InspectContext) -> None:
    classifier, constraints = _classifier(ctx)
    reported = 0
    for u in sorted(walk.uses.values(), key=lambda u: (_RANK[u.use], u.module, u.name)):
        if reported >= MAX_REPORTED:
            ctx.add(
                "PICKLE-IMPORT-UNLISTED",
                f"more than {MAX_REPORTED} unlisted names in schema.json; the rest are not listed",
                evidence={"loader": LOADER},
            )
            break
        v = classifier.classify(u.module, u.name)
        dotted = f"{u.module}.{u.name}"
        ev: dict[str, Any] = {
            "global": f"{u.module}:{u.name}"[:300],
            "loader": LOADER,
            "node": u.loader[:100],
            "use": u.use,
            "at": u.where,
            "occurrences": u.count,
        }
        what = f"{dotted} ({u.loader} at {u.where}) is {_USE_TEXT[u.use]} by {LOADER}"
        if v.rule is not None:
            ev["category"] = v.deny.category if v.deny else None
            if v.via:
                ev["reaches"] = v.via
            why = f": {v.deny.note}" if v.deny and v.deny.note else ""
            ctx.add(v.rule, f"{what} ({ev['category']}{why})", evidence=ev)
            reported += 1
        elif not v.allowed:
            rule = "PICKLE-CALL-UNLISTED" if u.use in (CALL, FIXED, NEW) else "PICKLE-IMPORT-UNLISTED"
            ctx.add(rule, f"{what}, not in the allowed profiles{HINT}", evidence=ev)
            reported += 1
        else:
            c = constraints.get(f"{u.module}:{u.name}")
            if c is None or u.use in (DECLARED, FIXED):
                continue
            kind, why = c
            if (kind == "data-only" and u.use == CALL) or (kind == "newobj-only" and u.use in (CALL, IMPORT)):
                ctx.add(
                    "PICKLE-CONSTRAINT-VIOLATION",
                    f"{what}, but is allowed only {kind}: {why[:200]}",
                    evidence={**ev, "constraint": kind},
                )
                reported += 1


def _report_structure(walk: _Walk, ctx: InspectContext) -> None:
    p = walk.protocol
    if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= PROTOCOL_MAX:
        ctx.add(
            "SKOPS-SCHEMA-INVALID",
            f"skops protocol {str(p)[:40]!r} is not an integer from 0 to {PROTOCOL_MAX} (skops 0.16); "
            "what a loader would do with it is not modeled",
            evidence={"protocol": str(p)[:40]},
        )
    for loader, where in walk.unknown.items():
        ctx.add(
            "SKOPS-LOADER-UNKNOWN",
            f"node loader {loader!r} at {where} is not one skops 0.16 registers; what it imports is not modeled",
            evidence={"loader": loader, "at": where},
        )
    for where, why in walk.invalid:
        ctx.add("SKOPS-SCHEMA-INVALID", f"{why} at {where}", evidence={"at": where})
    for where, why in walk.alloc[:MAX_REPORTED]:
        ctx.add(
            "PICKLE-ALLOCATION-SIZE", f"{why} at {where}: the loader allocates it", evidence={"at": where}
        )


# --------------------------------------------------------------------------- the archive


def _schema_entries(entries: list[ZipEntry]) -> list[ZipEntry]:
    return [e for e in entries if e.name.split("\x00", 1)[0] == SCHEMA]


def _analyze_schema(reader: Reader, entry: ZipEntry, ctx: InspectContext) -> _Walk | None:
    from ..io.spool import close_if_spooled
    from .parsers.json_cost import reader_value_bound
    from .zip.members import open_member

    sub = open_member(reader, entry, ctx)
    if sub is None:
        ctx.add("SKOPS-SCHEMA-INVALID", f"{entry.name!r} could not be read from the archive")
        ctx.partial("skops schema.json unreadable")
        return None
    try:
        if sub.size > ctx.limits.max_json_bytes:
            ctx.limit_hit("max_json_bytes", f"schema.json of {sub.size} bytes not analyzed")
            return None
        if reader_value_bound(sub) > ctx.limits.max_json_values:  # parsing would cost up to ~25x the text
            ctx.limit_hit(
                "max_json_values",
                f"schema.json holds more than {ctx.limits.max_json_values} JSON values; not analyzed",
            )
            return None
        raw = sub.read(0, sub.size)
    finally:
        close_if_spooled(sub)
    try:
        schema = json.loads(raw)
    except RecursionError:
        ctx.limit_hit("skops_schema_depth", "schema.json nests too deeply to parse; not analyzed")
        return None
    except ValueError as exc:
        ctx.add("SKOPS-SCHEMA-INVALID", f"schema.json is not valid JSON: {str(exc)[:200]}")
        ctx.partial("skops schema.json does not parse")
        return None
    if isinstance(schema, dict) and not {"__loader__", "protocol"} & schema.keys():
        return None  # skops.io.load refuses it (no protocol); schema.json is judged as plain JSON
    walk = walk_schema(schema, ctx)
    _report_structure(walk, ctx)
    _report_uses(walk, ctx)
    return walk


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    from .torch.torch_zip import head_looks_like_payload
    from .zip.checks import read_zip
    from .zip.members import inspect_entry, inspect_extra_regions, member_head, unique_entries

    listing = read_zip(reader, ctx)
    if listing is None:
        return
    inspect_extra_regions(reader, listing, ctx)
    files: dict[str, str] = {}
    walks = 0
    for e in _schema_entries(listing.entries):  # every copy: zipfile reads the last, other readers the first
        walk = _analyze_schema(reader, e, ctx)
        if walk is not None:
            walks += 1
            files.update(walk.files)
    present = {e.name.split("\x00", 1)[0] for e in listing.entries}
    missing = sorted(n for n in files if n not in present)
    if missing:
        ctx.add(
            "SKOPS-SCHEMA-INVALID",
            f"schema.json reads {len(missing)} member(s) the archive does not hold: {', '.join(missing[:5])[:300]}",
            evidence={"missing": missing[:20]},
        )
    for e in unique_entries(listing):
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting skops members")
            return
        if e.is_dir:
            continue
        base = e.name.split("\x00", 1)[0]
        if base == SCHEMA and walks:
            continue
        if files.get(base) in ("BytesNode", "BytearrayNode"):
            # raw bytes the loader keeps as a value and never parses: only a disguised payload is looked for
            if head_looks_like_payload(member_head(reader, e, 512)):
                inspect_entry(reader, e, ctx)
            continue
        # .npy through the numpy inspector, .npz through the npz one, the rest by content
        inspect_entry(reader, e, ctx)


SKOPS = FormatHandler("skops", _sniff, _inspect, family="skops", claims=(".skops",), can_carry_code=True)
