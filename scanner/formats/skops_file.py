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
blocks.

Allowed is not enough for callables that call, instantiate, setattr or allocate
from what they are given (copyreg._reconstructor, defaultdict, partial, bytes,
Decimal, numpy scalars ...): the schema's values are followed in construction
order (``_Calls``), through ``__id__`` references as get_tree resolves them
(the first node of an id in get_tree's order is what every later one names),
with small ``.npy`` members read as the literals np.load returns, and every call
and state update is handed to the pickle walker's own judging
(pickle/call_judge.py ``CallJudge``): the argument rules of
signatures/pickle/gadgets.yaml, hooks planted by ``__dict__.update``, untraced
calls and what a helper calls, with the pickle rule ids. A value that cannot be
modelled is an Opaque one, which those rules refuse. The walk is iterative with size, value, node and depth caps. Members are
judged by content: ``.npy``/``.npz`` through the numpy inspectors (object arrays
fail closed), ``.bin`` bytes only when they look like a pickle/archive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..io.reader import Reader
from .interface import FormatHandler, InspectContext
from .pickle.values import Blob, Coll, Dct, Glob, Opaque, Seq, Tup, V, make_seq
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
HELPER = (
    "helper"  # called by an allowlisted helper it was handed (gadgets.yaml 'invoked': defaultdict, partial)
)
FIXED = "fixed"  # the loader's own constructor (which callable is not up to the file)
NEW = "new"  # imported, cls.__new__(cls) then __setstate__ / __dict__.update
IMPORT = "import"  # imported and stored (an estimator or a dict may call it later)
DECLARED = "declared"  # named by a fixed-type node: not imported, but listed by get_untrusted_types
_RANK = {CALL: 0, HELPER: 1, FIXED: 2, NEW: 3, IMPORT: 4, DECLARED: 5}
_USE_TEXT = {
    CALL: "called",
    HELPER: "called by an allowlisted helper it is handed to",
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
    cut: bool = False  # a limit stopped the walk: the values are not followed (the limit finding blocks)

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

    def upgrade(self, module: str, name: str, use: str, loader: str, where: str) -> None:
        """A stronger use found by following the values (a stored import called by a helper): not a new site."""
        old = self.uses.get((module, name))
        if old is None:
            self.uses[(module, name)] = _Use(module, name, use, loader, where)
        elif _RANK[use] < _RANK[old.use]:
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
            walk.cut = True
            break
        if depth > MAX_SCHEMA_DEPTH:
            ctx.limit_hit(
                "skops_schema_depth",
                f"schema.json nests deeper than {MAX_SCHEMA_DEPTH} levels at {where}; deeper nodes not judged",
            )
            walk.cut = True
            break
        if isinstance(value, dict):
            if "__loader__" in value:
                if walk.nodes >= max_nodes:
                    ctx.limit_hit(
                        "max_nodes", f"schema.json has more than {max_nodes} nodes; the rest is not judged"
                    )
                    walk.cut = True
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


# --------------------------------------------------------------------------- calls and their arguments
#
# What each loader calls, with which arguments (skops 0.16.0 _construct), modelled in the pickle walker's value
# terms (literals, Glob, Call, Seq, Dct, Opaque) so the walker's own gadgets.yaml judging (CallJudge) applies:
#   ConstructorFromReduceNode  cls(*content)              LossNode/TreeNode/QuantileForestNode  ctor(*args) + state
#   ListNode/SetNode           cls([items])               TupleNode (a namedtuple class)        cls(*items)
#   DictNode                   cls(); key_type(json key)  DefaultDictNode  defaultdict(**main); .default_factory
#   PartialNode                partial(func, *args, **kwds) + __dict__.update(namespace)
#   ObjectNode                 cls.__new__(cls) + __setstate__(attrs) / __dict__.update(attrs)
#   OperatorFuncNode           operator.<cls>(*attrs)     NdArrayNode (numpy, not ndarray)      cls(np.load(member))
#   RandomStateNode            cls() + set_state          RandomGeneratorNode  SeedSequence(**s), <bg>(seq), cls(bit_generator=)
#   MaskedArrayNode            numpy.ma.MaskedArray(data, mask)
# An ``__id__`` seen before in get_tree's order (CachedNode, or any node repeating it) is that earlier node's
# object, so arguments are followed through references.

_REDUCE_LOADERS = {
    "LossNode": None,
    "TreeNode": ("sklearn.tree._tree", "Tree"),
    "QuantileForestNode": (
        "quantile_forest._quantile_forest_fast",
        "QuantileForest",
    ),
}
_LEAF_LOADERS = frozenset({"JsonNode", "FunctionNode", "TypeNode", "MethodNode"})
_BUILTIN_CONTAINERS = {
    ("builtins", "list"): "list",
    ("builtins", "set"): "set",
    ("builtins", "tuple"): "tuple",
}
# numeric .npy kinds read exactly (sizes matter: np.empty/bytes of a 0-d int array allocate that much)
_NPY_STRUCT = {"i": {1: "b", 2: "h", 4: "i", 8: "q"}, "u": {1: "B", 2: "H", 4: "I", 8: "Q"}, "b": {1: "?"}}
_NPY_STRUCT.update(M={8: "q"}, m={8: "q"}, f={2: "e", 4: "f", 8: "d"}, c={8: "ff", 16: "dd"})
NPY_HEAD = 1 << 16  # bytes of an .npy member read to take a small array's values as literals
_JSON_DEPTH = 32

#: member name -> the first NPY_HEAD bytes of the one member skops reads under that name (None: absent/ambiguous)
MemberHead = Callable[[str], "bytes | None"]


def _tree_children(node: dict[str, Any], protocol: int) -> list[Any]:
    """The child states ``get_tree`` builds, in its order: the first node with an ``__id__`` is what it names."""
    loader = node.get("__loader__")
    c = node.get("content")
    cd = c if isinstance(c, dict) else {}
    if loader == "DictNode":
        return [node.get("key_types"), *cd.values()]
    if loader in ("ListNode", "SetNode", "TupleNode"):
        return list(c) if isinstance(c, list) else []
    if loader == "DefaultDictNode":
        return [cd.get("main"), cd.get("default_factory")]
    if loader == "PartialNode":
        return [cd.get("func"), cd.get("args"), cd.get("kwds"), cd.get("namespace")]
    if loader in ("ConstructorFromReduceNode", "RandomStateNode", "DTypeNode"):
        return [c]
    if loader == "ObjectNode":
        return [] if c is None else [c]
    if loader == "MethodNode":
        return [cd.get("obj")]
    if loader == "OperatorFuncNode":
        return [node.get("attrs")]
    if loader == "NdArrayNode":
        return [*c, node.get("shape")] if node.get("type") == "json" and isinstance(c, list) else []
    if loader == "MaskedArrayNode":
        return [cd.get("data"), cd.get("mask")]
    if loader == "RandomGeneratorNode":
        return (
            []
            if protocol == 0
            else [cd.get("bit_generator"), *([cd.get("seed_seq")] if protocol >= 2 else [])]
        )
    if loader in _REDUCE_LOADERS:
        r = node.get("__reduce__")
        return [c, r.get("args") if isinstance(r, dict) else None]
    return []


def _construct_children(node: dict[str, Any], protocol: int) -> list[tuple[str, Any]]:
    """(label, child state) in the order ``_construct`` builds them."""
    loader = node.get("__loader__")
    c = node.get("content")
    cd = c if isinstance(c, dict) else {}
    if loader == "DictNode":
        return [("key_types", node.get("key_types")), *((f"content.{k}", v) for k, v in cd.items())]
    if loader == "NdArrayNode":
        kids = _tree_children(node, protocol)
        return [("shape", kids[-1]), *((f"content[{i}]", v) for i, v in enumerate(kids[:-1]))] if kids else []
    if loader == "RandomGeneratorNode":
        # SeedSequence first (protocol 2), then the bit generator state; protocol 0 keeps a plain dict
        return [(f"content.{k}", cd.get(k)) for k in ("seed_seq", "bit_generator")[2 - protocol :]]
    if loader in _REDUCE_LOADERS:
        kids = _tree_children(node, protocol)
        return [("__reduce__.args", kids[1]), ("content", kids[0])]
    if loader in ("ListNode", "SetNode", "TupleNode"):
        return [(f"content[{i}]", v) for i, v in enumerate(_tree_children(node, protocol))]
    labels = {
        "DefaultDictNode": ("content.main", "content.default_factory"),
        "PartialNode": ("content.func", "content.args", "content.kwds", "content.namespace"),
        "MethodNode": ("content.obj",),
        "OperatorFuncNode": ("attrs",),
        "MaskedArrayNode": ("content.data", "content.mask"),
    }.get(str(loader), ("content",))
    return list(zip(labels, _tree_children(node, protocol), strict=False))


def _dct(pairs: Iterator[tuple[Any, Any]]) -> Dct:
    """A mapping value; hook-named keys are kept past the item cap (BUILD state is judged by them)."""
    from .pickle.values import KEEP_ITEMS
    from .pickle.walker import HOOK_NAMES

    d = Dct()
    for k, v in pairs:
        if type(k) is str and k in HOOK_NAMES and len(d.items) >= KEEP_ITEMS:
            d.items.append((k, v))
            d.total += 1
        else:
            d.set(k, v)
    return d


def _json_value(v: Any, depth: int = 0) -> Any:
    """A parsed JSON value in the walker's terms: scalars as literals, lists as list Seqs, objects as Dcts."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if depth > _JSON_DEPTH:
        return Opaque("deeply nested JSON")
    if isinstance(v, list):
        return make_seq("list", [_json_value(x, depth + 1) for x in v])
    if isinstance(v, dict):
        return _dct((k, _json_value(x, depth + 1)) for k, x in v.items())
    return Opaque("JSON value")


def _names(node: dict[str, Any]) -> tuple[str, str]:
    """(``__module__``, ``__class__``) when both are strings (hashable), else a pair no table holds."""
    module, cls = node.get("__module__"), node.get("__class__")
    return (module, cls) if isinstance(module, str) and isinstance(cls, str) else ("", "")


def _truthy(v: Any) -> bool:
    """Whether ``if v:`` may pass (an empty container or a false literal does not)."""
    if isinstance(v, (Seq, Dct)):
        return v.total > 0
    return bool(v) if not isinstance(v, V) else True


def _star(v: Any) -> Any:
    """``*v`` as positional arguments: a tuple Seq, or an Opaque when the loader's unpacking cannot be known."""
    if isinstance(v, Seq):
        if v.kind in ("set", "frozenset") and v.total > 1:
            return Opaque("a set unpacked as arguments (order set by hashing)")
        if isinstance(v, Tup):
            return v
        return (
            make_seq("tuple", list(v.items))
            if v.complete
            else Coll("tuple", tuple(v.items), v.total, v.spill)
        )
    if isinstance(v, Dct):
        keys = [k for k, _ in v.items]
        return make_seq("tuple", keys) if len(keys) == v.total else Coll("tuple", tuple(keys), v.total)
    if isinstance(v, str):
        return make_seq("tuple", list(v[:64])) if len(v) <= 64 else Coll("tuple", tuple(v[:64]), len(v))
    return Opaque(
        f"arguments unpacked from {type(v).__name__ if not isinstance(v, V) else 'a value built at load time'}"
    )


def _npy_item(kind: str, size: int, raw: bytes, big: bool) -> Any:
    """One element of a non-object .npy array as the literal numpy makes a scalar of (None: not modelled)."""
    import struct

    code = _NPY_STRUCT.get(kind, {}).get(size)
    if code is not None:
        v = struct.unpack(f"{'>' if big else '<'}{code}", raw)
        return complex(*v) if kind == "c" else v[0]
    if kind == "f":  # long double: a float whatever its value (never a size)
        return 0.0
    if kind == "c":
        return 0j
    if kind in ("S", "V"):
        return bytes(raw)
    if kind == "U":
        return raw.decode("utf-32-be" if big else "utf-32-le", "replace").rstrip("\x00")
    return None


def _npy_value(head: bytes | None) -> Any:
    """What ``np.load(member, allow_pickle=False)`` returns, as literals when it is small: a scalar for a 0-d
    array (how skops stores numpy scalars), a list for a 1-d one; an Opaque ndarray otherwise."""
    import re

    from ..io.reader import BytesReader
    from .numpy_npy import HeaderError, read_header

    opaque = Opaque("ndarray")
    if head is None:
        return opaque
    try:
        hdr, start, _ = read_header(BytesReader(head, "<npy>"))
    except (HeaderError, ValueError):
        return opaque
    descr, shape = hdr["descr"], hdr["shape"]
    m = re.fullmatch(r"([<>|=]?)([biufcMmSUV?])(\d+)(\[\w+\])?", descr) if isinstance(descr, str) else None
    if m is None or len(shape) > 1 or not all(type(d) is int and 0 <= d <= 64 for d in shape):
        return opaque
    kind, n = ("b", 1) if m.group(2) == "?" else (m.group(2), int(m.group(3)))
    size = n * 4 if kind == "U" else n
    count = shape[0] if shape else 1
    data = head[start : start + count * size]
    if not 0 < size <= 1 << 14 or len(data) < count * size:
        return opaque
    values = [_npy_item(kind, size, data[i * size : (i + 1) * size], m.group(1) == ">") for i in range(count)]
    if any(v is None for v in values):
        return opaque
    return values[0] if not shape else make_seq("list", values)


class _Calls:
    """Follows the values of one schema in construction order and hands every call to the gadget judge."""

    def __init__(
        self, schema: dict[str, Any], walk: _Walk, ctx: InspectContext, member_head: MemberHead
    ) -> None:
        from .pickle.call_judge import CallJudge
        from .pickle.gadgets import load_gadgets

        self.schema = schema
        self.walk = walk
        self.ctx = ctx
        p = walk.protocol
        self.protocol = p if type(p) is int and 0 <= p <= PROTOCOL_MAX else PROTOCOL_MAX
        self.member_head = member_head
        self.judge = CallJudge(load_gadgets(ctx.state.rules.root), ctx.limits, ctx.state.out_of_time)
        self.redirect: dict[int, dict[str, Any] | None] = {}  # node id -> the earlier node its __id__ names
        self.targets: set[int] = set()  # nodes named by a later __id__: their value is kept
        self.values: dict[int, Any] = {}
        self.sites: list[tuple[str, str]] = []  # (loader, where) of each call, indexed by the judge's offsets
        # the imports the file names, one Glob each, with the first node naming them (their uses are upgraded)
        self.globs: dict[tuple[str, str], tuple[Glob, str, str]] = {}
        self.fixed: dict[tuple[str, str], Glob] = {}  # the loaders' own constructors

    # -- references (get_tree order) --
    def link(self) -> None:
        memo: dict[Any, dict[str, Any]] = {}
        stack: list[Any] = [self.schema]
        while stack:
            st = stack.pop()
            if not isinstance(st, dict):
                continue  # the loader fails on it before constructing anything
            sid = st.get("__id__")
            try:
                hit = memo.get(sid) if sid is not None else None
            except TypeError:  # an unhashable __id__: get_tree raises
                self.redirect[id(st)] = None
                continue
            if hit is not None:
                self.redirect[id(st)] = hit
                self.targets.add(id(hit))
                continue
            if st.get("__loader__") == "CachedNode":
                self.redirect[id(st)] = None  # an id not built before: the loader refuses the file
                continue
            if sid:
                memo[sid] = st
            stack.extend(reversed(_tree_children(st, self.protocol)))

    def resolve(self, st: Any) -> dict[str, Any] | None:
        if not isinstance(st, dict):
            return None
        return self.redirect.get(id(st), st)

    # -- imports --
    def _site(self, loader: str, where: str) -> int:
        self.sites.append((loader, where))
        return len(self.sites) - 1

    def site(self, at: int) -> tuple[str, str]:
        return self.sites[at] if 0 <= at < len(self.sites) else ("?", "$")

    def glob(self, module: Any, name: Any, loader: str, where: str) -> Any:
        if not isinstance(module, str) or not isinstance(name, str) or not module or not name:
            return Opaque("an import of a non-string name")
        key = (module, name)
        got = self.globs.get(key)
        if got is None:
            from .pickle.records import ImportRec

            got = self.globs[key] = (Glob(ImportRec(module, name, loader, -1, -1)), loader, where)
        return got[0]

    def fixed_glob(self, module: str, name: str) -> Glob:
        from .pickle.records import ImportRec

        g = self.fixed.get((module, name))
        if g is None:
            g = self.fixed[(module, name)] = Glob(ImportRec(module, name, "skops", -1, -1))
        return g

    def call(self, func: Any, args: Any, how: str, at: int, keywords: bool = False) -> Any:
        if keywords and isinstance(func, Glob) and func.rec.path in self.judge.gadgets:
            self.judge.issue(
                f"{func.rec.path} gets keyword arguments, which its argument rules (gadgets.yaml) do not place",
                {"callable": func.rec.path},
                at,
            )
        return self.judge.call(func, args, how, at)

    # -- construction --
    def run(self) -> None:
        """Builds the root, children first (iteratively: the schema nests up to MAX_SCHEMA_DEPTH)."""
        root = self.resolve(self.schema)
        if root is None:
            return
        frames: list[tuple[dict[str, Any], str, list[tuple[str, Any]], list[Any]]] = []
        active: set[int] = set()

        def enter(node: dict[str, Any], where: str) -> None:
            active.add(id(node))
            frames.append((node, where, _construct_children(node, self.protocol), []))

        enter(root, "$")
        steps = 0
        while frames:
            steps += 1
            if steps & 0xFFF == 0 and self.ctx.state.out_of_time():
                self.ctx.limit_hit("file_seconds", "time budget ran out following schema.json's values")
                return
            node, where, todo, vals = frames[-1]
            if len(vals) < len(todo):
                label, st = todo[len(vals)]
                child = self.resolve(st)
                if child is None:
                    vals.append(Opaque("a node the loader cannot build"))
                elif id(child) in self.values:
                    vals.append(self.values[id(child)])
                elif id(child) in active:
                    vals.append(Opaque("a reference to a node still being built"))
                else:
                    enter(child, _child(where, label))
                continue
            frames.pop()
            active.discard(id(node))
            value = self.build(node, vals, where)
            if id(node) in self.targets:
                self.values[id(node)] = value
            if frames:
                frames[-1][3].append(value)

    def leaf(self, node: dict[str, Any], where: str) -> Any:
        """The value of a node without children (JsonNode, FunctionNode, TypeNode, MethodNode)."""
        loader = node.get("__loader__")
        module, cls = node.get("__module__"), node.get("__class__")
        content = node.get("content")
        if loader == "JsonNode":
            try:
                return _json_value(json.loads(content)) if isinstance(content, str) else Opaque("JSON")
            except (ValueError, RecursionError):
                return Opaque("unparsable JSON")
        if loader == "FunctionNode" and self.protocol == 0 and isinstance(content, dict):
            return self.glob(content.get("module_path"), content.get("function"), str(loader), where)
        if loader == "MethodNode":
            func = content.get("func") if isinstance(content, dict) else None
            name = f"{cls}.{func}" if isinstance(cls, str) and isinstance(func, str) else None
            return self.glob(module, name, str(loader), where)
        return self.glob(module, cls, str(loader), where)

    def build(self, node: dict[str, Any], vals: list[Any], where: str) -> Any:  # noqa: C901 - one case a loader
        from .pickle.values import EMPTY_TUPLE

        loader = str(node.get("__loader__"))
        module, cls = node.get("__module__"), node.get("__class__")
        if loader in _LEAF_LOADERS:
            return self.leaf(node, where)
        at = self._site(loader, where)
        if loader == "ObjectNode":
            inst = self.call(self.glob(module, cls, loader, where), EMPTY_TUPLE, "NEWOBJ", at)
            if vals and vals[0] is not None:
                self.judge.plant(inst, vals[0], "ObjectNode state", at)
            return inst
        if loader == "ConstructorFromReduceNode":
            return self.call(self.glob(module, cls, loader, where), _star(vals[0]), loader, at)
        if loader in _REDUCE_LOADERS:
            fixed = _REDUCE_LOADERS[loader]
            ctor = self.fixed_glob(*fixed) if fixed else self.glob(module, cls, loader, where)
            inst = self.call(ctor, _star(vals[0]), loader, at)
            if _truthy(vals[1]):  # ``if not attrs: return instance``
                self.judge.plant(inst, vals[1], f"{loader} state", at)
            return inst
        if loader in ("ListNode", "SetNode", "TupleNode"):
            kind = {"ListNode": "list", "SetNode": "set", "TupleNode": "tuple"}[loader]
            items = make_seq(kind, vals)
            if _BUILTIN_CONTAINERS.get(_names(node)) == kind:
                return items
            func = self.glob(module, cls, loader, where)
            return self.call(func, items if kind == "tuple" else make_seq("tuple", [items]), loader, at)
        if loader == "DictNode":
            return self.dict_node(node, vals, where, at)
        if loader == "DefaultDictNode":
            main, factory = vals
            inst = self.call(
                self.fixed_glob("collections", "defaultdict"), make_seq("tuple", [factory]), loader, at
            )
            if isinstance(main, Dct):
                self.judge.hold(inst, [x for pair in main.items for x in pair], at)
            return inst
        if loader == "PartialNode":
            return self.partial(vals, at)
        if loader == "OperatorFuncNode":
            return self.call(self.glob("operator", cls, loader, where), _star(vals[0]), loader, at)
        if loader == "NdArrayNode":
            if node.get("type") == "json":
                return make_seq("list", vals[1:])  # an object array of the items (np.ndarray/np.array, fixed)
            name = node.get("file")
            arr = _npy_value(self.member_head(name) if isinstance(name, str) else None)
            if (module, cls) == ("numpy", "ndarray"):
                return arr
            return self.call(self.glob(module, cls, loader, where), make_seq("tuple", [arr]), loader, at)
        if loader == "MaskedArrayNode":
            return self.call(self.fixed_glob("numpy.ma", "MaskedArray"), make_seq("tuple", vals), loader, at)
        if loader == "RandomStateNode":
            return self.call(self.glob(module, cls, loader, where), EMPTY_TUPLE, loader, at)
        if loader == "RandomGeneratorNode":
            return self.generator(node, vals, where, at)
        if loader in ("BytesNode", "BytearrayNode"):
            return Blob("binbytes" if loader == "BytesNode" else "bytearray8", -1)
        return Opaque(f"a {loader[:40]} value")  # DTypeNode, SparseMatrixNode, SliceNode, unknown loaders

    def dict_node(self, node: dict[str, Any], vals: list[Any], where: str, at: int) -> Any:
        """``cls()``, then ``content[key_type(key)] = value`` for each JSON key with its key type (zip)."""
        from .pickle.values import EMPTY_TUPLE

        module, cls = node.get("__module__"), node.get("__class__")
        content = node.get("content")
        keys = list(content) if isinstance(content, dict) else []
        types = self.key_types(node, vals[0], where)
        pairs: list[tuple[Any, Any]] = []
        called: set[int] = set()  # key types without argument rules, or not imports: judged once a dict
        for i, (key, value) in enumerate(zip(keys, vals[1:], strict=False)):
            if types is not None and i >= len(types):
                break  # zip stops at the shorter: the rest is never built into the dict
            kt = types[i] if types is not None else vals[0]
            if isinstance(kt, Glob) and kt.rec.path == "builtins:str":
                pairs.append((key, value))
                continue
            rules = isinstance(kt, Glob) and kt.rec.path in self.judge.gadgets
            if isinstance(kt, V) and (rules or id(kt) not in called):
                called.add(id(kt))  # a literal key type is not callable: the loader raises
                self.call(kt, make_seq("tuple", [key]), "DictNode key type", at)
            pairs.append((Opaque("a converted key"), value))
        d = _dct(iter(pairs))
        if (module, cls) == ("builtins", "dict"):
            return d
        inst = self.call(self.glob(module, cls, "DictNode", where), EMPTY_TUPLE, "DictNode", at)
        self.judge.hold(inst, [x for pair in d.items for x in pair], at)
        return inst

    def key_types(self, node: dict[str, Any], value: Any, where: str) -> list[Any] | None:
        """Each key's type: read from the key_types list node itself (its value keeps only the first items)."""
        kt = self.resolve(node.get("key_types"))
        items = kt.get("content") if isinstance(kt, dict) else None
        if (
            isinstance(kt, dict)
            and kt.get("__loader__") in ("ListNode", "TupleNode")
            and _names(kt) in _BUILTIN_CONTAINERS
            and isinstance(items, list)
        ):
            out = []
            for st in items:
                r = self.resolve(st)
                if r is not None and id(r) in self.values:
                    out.append(self.values[id(r)])
                elif r is not None and r.get("__loader__") in _LEAF_LOADERS:
                    out.append(self.leaf(r, _child(where, "key_types")))
                else:
                    out.append(Opaque("a key type built by a node"))
            return out
        if isinstance(value, Seq) and value.complete:
            return list(value.items)
        return None

    def partial(self, vals: list[Any], at: int) -> Any:
        """``partial(func, *args, **kwds)``, whose namespace is then put in its ``__dict__``."""
        func, args, kwds, namespace = vals
        star = _star(args)
        items = [func, *star.items] if isinstance(star, Seq) else [func, star]
        partial = self.fixed_glob("functools", "partial")
        inst = self.call(partial, make_seq("tuple", items), "PartialNode", at)
        if isinstance(func, Glob):
            # calling the partial calls func(*args, ...): func's own argument rules judge the bound ones (the
            # walker does when the partial's rule forwards them, calls_with)
            if not self.judge.forwards(partial.rec.path):
                self.judge.applied(func, star, at)
            if _truthy(kwds) and func.rec.path in self.judge.gadgets:
                self.judge.issue(
                    f"{func.rec.path} is bound keyword arguments by a partial, which its argument rules "
                    "(gadgets.yaml) do not place",
                    {"callable": func.rec.path},
                    at,
                )
        if _truthy(namespace):  # ``if namespace: instance.__dict__.update(namespace)``
            self.judge.plant(inst, namespace, "PartialNode namespace", at)
        return inst

    def generator(self, node: dict[str, Any], vals: list[Any], where: str, at: int) -> Any:
        """SeedSequence(**seed_seq) (protocol 2), getattr(numpy.random, name)(seq or nothing), cls(bit_generator=)."""
        from .pickle.values import EMPTY_TUPLE

        module, cls = node.get("__module__"), node.get("__class__")
        seq = None
        if self.protocol >= 2:
            seed_seq = self.fixed_glob("numpy.random.bit_generator", "SeedSequence")
            seq = self.call(seed_seq, EMPTY_TUPLE, "RandomGeneratorNode", at, keywords=True)
        state = vals[-1] if vals else None
        name = state.get("bit_generator") if isinstance(state, Dct) else None
        if isinstance(name, str):
            bg = self.glob(
                "numpy.random", name, "RandomGeneratorNode", _child(where, "content.bit_generator")
            )
            self.call(bg, make_seq("tuple", [seq] if seq is not None else []), "RandomGeneratorNode", at)
        gen = self.glob(module, cls, "RandomGeneratorNode", where)
        return self.call(gen, EMPTY_TUPLE, "RandomGeneratorNode", at, keywords=True)


_ANOMALY_RULES = {
    "gadget-argument": "PICKLE-GADGET-ARGUMENT",
    "allocation": "PICKLE-ALLOCATION-SIZE",
    "hook-planted": "PICKLE-HOOK-PLANTED",
}


def judge_calls(schema: Any, walk: _Walk, ctx: InspectContext, member_head: MemberHead) -> None:
    """Every call the loader makes, judged by gadgets.yaml as the pickle walker judges REDUCE and BUILD; imports
    a helper calls (or a reference makes called) are upgraded in ``walk.uses``."""
    from .pickle.walker import LimitHit

    if walk.cut or not isinstance(schema, dict) or "__loader__" not in schema:
        return  # a limit already blocks the file; a schema without a root node is refused by the loader
    calls = _Calls(schema, walk, ctx, member_head)
    try:
        calls.link()
        calls.run()
    except LimitHit as exc:
        ctx.limit_hit(exc.what, f"{exc} (following the values of schema.json)")
    for (module, name), (g, loader, where) in calls.globs.items():
        rec = g.rec
        direct = rec.called - rec.new_calls - rec.helper_calls - rec.static_calls
        use = CALL if direct > 0 else HELPER if rec.helper_calls else NEW if rec.new_calls else None
        if use is not None:
            walk.upgrade(module, name, use, loader, where)
    res = calls.judge.result
    for rec in res.imports:  # resolved by the walker itself (getattr(<import>, 'name'))
        loader, where = calls.site(rec.offset)
        walk.upgrade(rec.module, rec.name, CALL if rec.called else IMPORT, loader, where)
    reported = 0
    for a in res.anomalies:
        rule = _ANOMALY_RULES.get(a.kind)
        if rule is None:
            continue
        if reported >= MAX_REPORTED:
            break
        loader, where = calls.site(a.offset)
        ev = {**a.evidence, "loader": LOADER, "node": loader, "at": where}
        ctx.add(rule, f"{a.message} ({loader} at {where}, {LOADER})", evidence=ev)
        reported += 1
    for u in res.untraced[:MAX_REPORTED]:
        loader, where = calls.site(u.offset)
        ctx.add(
            "PICKLE-UNTRACED-CALL",
            f"{loader} at {where} calls {u.callable}, which does not trace to an import ({LOADER})",
            evidence={"callable": u.callable, "args": u.args, "loader": LOADER, "node": loader, "at": where},
        )


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
            rule = "PICKLE-CALL-UNLISTED" if u.use in (CALL, HELPER, FIXED, NEW) else "PICKLE-IMPORT-UNLISTED"
            ctx.add(rule, f"{what}, not in the allowed profiles{HINT}", evidence=ev)
            reported += 1
        else:
            c = constraints.get(f"{u.module}:{u.name}")
            if c is None or u.use in (DECLARED, FIXED):
                continue
            kind, why = c
            # data-only: as in the pickle check, helpers that call it later are judged by gadgets.yaml
            if (kind == "data-only" and u.use == CALL) or (
                kind == "newobj-only" and u.use in (CALL, HELPER, IMPORT)
            ):
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


def _analyze_schema(
    reader: Reader, entry: ZipEntry, ctx: InspectContext, member_head: MemberHead
) -> _Walk | None:
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
    judge_calls(schema, walk, ctx, member_head)
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
    by_name: dict[str, list[ZipEntry]] = {}
    for e in listing.entries:
        by_name.setdefault(e.name.split("\x00", 1)[0], []).append(e)

    def head_of(name: str) -> bytes | None:
        found = by_name.get(name, [])  # several members of one name: which one numpy gets is not modelled
        return member_head(reader, found[0], NPY_HEAD) if len(found) == 1 else None

    for e in _schema_entries(listing.entries):  # every copy: zipfile reads the last, other readers the first
        walk = _analyze_schema(reader, e, ctx, head_of)
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
