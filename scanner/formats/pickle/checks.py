"""The checks that judge one pickle walk, as independent functions in an explicit ordered list.

The walker records facts (records.py); each check here reads the typed walk result
and reports findings through a :class:`CheckContext`. No check depends on another
or on the walker's state, so a check can be read, tested and changed alone.
``CHECKS`` is the order findings are reported in. Allowlist first: the import
check blocks anything no profile lists; the denylist only raises severity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...io.reader import BytesReader
from ...limits import Limits
from ..interface import BudgetExceeded, InspectContext
from .classify import Classifier, Verdict
from .constraints import kept_slots
from .cursor import Cursor
from .nested import decode_candidate, static_bytes
from .records import Anomaly, AnomalyKind, CallSite, ImportRec
from .walker import Budget, LimitHit, Machine, WalkResult

log = logging.getLogger(__name__)

MAX_FINDINGS = 20  # per kind of record (untraced calls, mutations, anomalies) and walk
MAX_DECODED = 64 << 20  # bytes an encoded literal may decode to
#: the walk that decides whether a raw literal is a pickle (the nested analysis that follows has the full limits)
_RAW_LIMITS = Limits(max_pickle_opcodes=20_000, max_pickle_stack=2_000, max_pickle_memo=2_000)

ALLOWANCE_HINT = (
    "; if this is your own class, allow it with a scoped policy allowance (pickle.extra_allowed with sources)"
)
DENY_HINT = (
    "; a loader runs this: only a reviewed file may be allowed, by a policy exception pinned to its sha256"
)


@dataclass
class CheckContext:
    """What the checks need besides the walk result: where to report, the allowlist and rules, the budgets."""

    ctx: InspectContext
    classifier: Classifier
    constraints: Mapping[str, tuple[str, str]]  # 'module:name' -> (kind, why): audited usage shapes
    budget: Budget
    # analyze a pickle found inside this one (bytes, offset, how found); None: nested payloads are not followed
    analyze_nested: Callable[[bytes, int, str, frozenset[str] | None], None] | None = None
    view: str | None = None  # the loader's interpretation judged, when it is not the primary walk

    @property
    def vnote(self) -> str:
        return f" [{self.view}]" if self.view else ""


Check = Callable[[WalkResult, CheckContext], None]


# --------------------------------------------------------------------------- imports


@dataclass
class ImportUse:
    """Every site of one (module, name, dynamic) import in a walk, with how often the loader calls or passes it."""

    recs: list[ImportRec]
    called: int  # calls other than statically resolved getattr
    passed: int
    call: CallSite | None
    verdict: Verdict

    @property
    def first(self) -> ImportRec:
        return self.recs[0]

    @property
    def only_getattr_owner(self) -> bool:
        """Only used as getattr(<import>, 'name'): the fetched attributes are judged as imports of their own."""
        return not self.called and not self.passed and any(r.static_calls for r in self.recs)

    @property
    def unresolved(self) -> bool:
        """A dynamic import whose target is not allowlisted by its exact path (extension codes never are)."""
        return self.first.dynamic is not None and not (self.first.opcode != "EXT" and self.verdict.allowed)

    @property
    def use(self) -> str:
        return "called" if self.called else ("passed to a call" if self.passed else "imported")

    def evidence(self, view: str | None) -> dict[str, Any]:
        first = self.first
        ev: dict[str, Any] = {"global": first.path, "opcode": first.opcode, "occurrences": len(self.recs)}
        if view:
            ev["view"] = view
        if first.raw:
            ev["as_written"] = first.raw
        if self.called:
            ev["called"] = self.called
        if self.call:
            ev["callable"] = first.dotted
            ev["args"] = self.call.args
            if self.call.kwargs is not None:
                ev["kwargs"] = self.call.kwargs
        return ev


def import_uses(res: WalkResult, classifier: Classifier) -> list[ImportUse]:
    """Import sites grouped by (module, name, dynamic) in first-seen order, getattr-only owners left out."""
    groups: dict[tuple[str, str, str | None], list[ImportRec]] = {}
    for rec in res.imports:
        groups.setdefault((rec.module, rec.name, rec.dynamic), []).append(rec)
    out = []
    for (module, name, _), recs in groups.items():
        use = ImportUse(
            recs,
            called=sum(r.called - r.static_calls for r in recs),
            passed=sum(r.passed for r in recs),
            call=next((r.first_call for r in recs if r.first_call), None),
            verdict=classifier.classify(module, name, recs[0].raw),
        )
        if not use.only_getattr_owner:
            out.append(use)
    return out


def check_imports(res: WalkResult, cx: CheckContext) -> None:
    """Allowlist first: a denylisted global is dangerous whatever its use; an unlisted one blocks (called or
    not: a global planted as data is called through the object protocol); an allowlisted one must keep the
    usage shape its audit allows."""
    for u in import_uses(res, cx.classifier):
        first, v = u.first, u.verdict
        ev = u.evidence(cx.view)
        if v.rule is not None:
            ev["category"] = v.deny.category if v.deny else None
            if v.via:
                ev["reaches"] = v.via
            why = f": {v.deny.note}" if v.deny and v.deny.note else ""
            msg = f"{first.dotted} ({ev['category']}{why}) is {u.use}{cx.vnote}{DENY_HINT}"
            cx.ctx.add(v.rule, msg, offset=first.offset, opcode_index=first.index, evidence=ev)
        elif u.unresolved:
            continue  # check_dynamic_imports
        elif v.allowed:
            _check_constraint(u, ev, cx, res.stored_unknown)
        elif u.called or u.passed:
            cx.ctx.add(
                "PICKLE-CALL-UNLISTED",
                f"{first.dotted} is not in the allowed profiles and is {u.use}{cx.vnote}{ALLOWANCE_HINT}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )
        else:
            cx.ctx.add(
                "PICKLE-IMPORT-UNLISTED",
                f"{first.dotted} is imported but not in the allowed profiles{cx.vnote}{ALLOWANCE_HINT}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )


def _check_constraint(
    u: ImportUse, ev: dict[str, Any], cx: CheckContext, stored_unknown: bool = False
) -> None:
    """An allowlisted global used outside the shape its audit allows (signatures/pickle/audit)."""
    first = u.first
    rule = cx.constraints.get(first.path)
    if rule is None:
        return
    kind, why = rule
    if kind == "newobj-only":
        _check_kept(u, ev, cx, why, stored_unknown)
    if not u.called:
        return
    new = sum(r.new_calls for r in u.recs)
    # data-only: the unpickler must not call it; helpers that use it later are judged by gadgets.yaml
    if kind == "data-only":
        # cls.__new__(cls, *args) of a type tag is a constructor call: torch.FloatStorage.__new__(cls, n) and
        # torch.cuda.FloatTensor.__new__(cls, n) allocate n elements (on the GPU for torch.cuda)
        new += sum(r.helper_calls for r in u.recs) - sum(r.new_with_args for r in u.recs)
    if u.called <= new:
        return  # only instantiated with cls.__new__ (NEWOBJ, or as the class argument of an audited rebuild helper)
    use = f"called other than by cls.__new__ ({u.called - new} times)"
    if kind == "data-only" and any(r.new_with_args for r in u.recs):
        use = f"called ({u.called - new} times; cls.__new__ with arguments constructs a type tag)"
    cx.ctx.add(
        "PICKLE-CONSTRAINT-VIOLATION",
        f"{first.dotted} is allowed only {kind} but is {use}: {why[:200]}{cx.vnote}",
        offset=first.offset,
        opcode_index=first.index,
        evidence={**ev, "constraint": kind},
    )


def _check_kept(u: ImportUse, ev: dict[str, Any], cx: CheckContext, why: str, unknown: bool) -> None:
    """A newobj-only class kept as a value (BUILD state, a constructor's or container's argument, the pickle's
    result): the object's library may call it later (``FunctionTransformer.func``, a vectorizer's ``analyzer``, a
    forward hook), which runs the ``__init__`` the constraint keeps from running. Allowed only under the attribute
    names real libraries keep such a class under (gadgets.yaml ``kept_values``)."""
    first = u.first
    allowed = kept_slots(cx.constraints, first.path) if any(r.slots for r in u.recs) else frozenset()
    stored = sum(r.stored for r in u.recs)
    slots = sorted({k for r in u.recs for k in r.slots or () if k not in allowed})
    if not (stored or slots or unknown):
        return
    where = f" under {', '.join(map(repr, slots[:4]))}" if slots else ""
    seen = (
        f"kept as a value{where}" if stored or slots else "possibly kept as a value (past the walk's budget)"
    )
    cx.ctx.add(
        "PICKLE-CONSTRAINT-VIOLATION",
        f"{first.dotted} is allowed only newobj-only but is {seen}, where the library that gets it may call it "
        f"later (its __init__ then runs): {why[:200]}{cx.vnote}",
        offset=first.offset,
        opcode_index=first.index,
        evidence={**ev, "constraint": "newobj-only", "kept": stored + len(slots), "attributes": slots[:8]},
    )


def check_dynamic_imports(res: WalkResult, cx: CheckContext) -> None:
    """Imports whose target is computed (STACK_GLOBAL on non-literals, dotted names, EXT codes, getattr chains)
    and not allowlisted by exact path: the scanner cannot know what the loader gets."""
    for u in import_uses(res, cx.classifier):
        if u.verdict.rule is not None or not u.unresolved:
            continue
        first = u.first
        ev = u.evidence(cx.view)
        ev["reason"] = first.dynamic
        cx.ctx.add(
            "PICKLE-DYNAMIC-IMPORT",
            f"import that cannot be resolved statically ({first.dynamic}): {first.dotted}{cx.vnote}",
            offset=first.offset,
            opcode_index=first.index,
            evidence=ev,
        )


# --------------------------------------------------------------------------- calls


def check_untraced_calls(res: WalkResult, cx: CheckContext) -> None:
    """Calls (by opcode or object-protocol path) on values that do not trace to an import: no allowlist can
    vouch for them."""
    for i, u in enumerate(res.untraced):
        if i >= MAX_FINDINGS:
            cx.ctx.add(
                "PICKLE-UNTRACED-CALL",
                f"{len(res.untraced) - i} more calls on values that do not trace to an import",
                offset=u.offset,
                evidence={"count": len(res.untraced) - i},
            )
            break
        ev: dict[str, Any] = {"callable": u.callable, "args": u.args, "opcode": u.opcode}
        if cx.view:
            ev["view"] = cx.view
        cx.ctx.add(
            "PICKLE-UNTRACED-CALL",
            f"{u.opcode} calls {u.callable}, which does not trace to an import{cx.vnote}",
            offset=u.offset,
            opcode_index=u.index,
            evidence=ev,
        )


def _anomalies(
    res: WalkResult, cx: CheckContext, kinds: tuple[AnomalyKind, ...], rules: dict[str, str]
) -> None:
    """Report anomalies of ``kinds`` among the first MAX_FINDINGS of the walk (the cap is shared by all kinds)."""
    for a in res.anomalies[:MAX_FINDINGS]:
        if a.kind in kinds:
            _report_anomaly(a, rules[a.kind], cx)


def _report_anomaly(a: Anomaly, rule: str, cx: CheckContext) -> None:
    ev = dict(a.evidence)
    if cx.view:
        ev["view"] = cx.view
    cx.ctx.add(rule, a.message + cx.vnote, offset=a.offset, opcode_index=a.index, evidence=ev)


def check_object_protocol(res: WalkResult, cx: CheckContext) -> None:
    """Hooks planted on instances (``__setstate__``, ``append``/``extend``/``add``, ``__class__``) that BUILD,
    APPEND(S) or ADDITEMS, or later code, will call. The calls themselves are judged by the import and
    untraced-call checks (the walker counts them as calls of what they reach)."""
    _anomalies(res, cx, ("hook-planted",), {"hook-planted": "PICKLE-HOOK-PLANTED"})


def check_helper_arguments(res: WalkResult, cx: CheckContext) -> None:
    """Allowlisted factories and apply helpers (gadgets.yaml) given arguments they must not get: classes or
    callables outside their accepted set, or sizes that exhaust memory at load time."""
    _anomalies(
        res,
        cx,
        ("gadget-argument", "allocation"),
        {"gadget-argument": "PICKLE-GADGET-ARGUMENT", "allocation": "PICKLE-ALLOCATION-SIZE"},
    )


def check_aliased_imports(res: WalkResult, cx: CheckContext) -> None:
    """The plain-unpickler view of a joblib object array ended at an import assembled from memo aliasing (outer
    stream entries fetched by the array pickle's GETs) that is neither allowlisted nor denylisted: on record, low."""
    _anomalies(res, cx, ("aliased-import",), {"aliased-import": "PICKLE-ALIASED-IMPORT"})


def check_state_mutation(res: WalkResult, cx: CheckContext) -> None:
    """BUILD/APPEND/SETITEM(S)/ADDITEMS on an imported object itself: attribute or state planting on a class
    or module function, which changes what later code runs."""
    for m in res.mutations[:MAX_FINDINGS]:
        cx.ctx.add(
            "PICKLE-BUILD-ON-CALLABLE",
            f"{m.opcode} changes the imported object {m.target.dotted} itself (attribute/state planting){cx.vnote}",
            offset=m.offset,
            opcode_index=m.index,
            evidence={"global": m.target.path, "opcode": m.opcode, "state": m.state},
        )


def check_lenient_opcodes(res: WalkResult, cx: CheckContext) -> None:
    """Opcode arguments no pickler writes that the C unpickler still accepts (hex ints, padding): a sign of
    a hand-made stream aimed at scanners that stop there."""
    _anomalies(res, cx, ("lenient-opcode",), {"lenient-opcode": "PICKLE-LENIENT-OPCODE"})


# --------------------------------------------------------------------------- nested payloads


def check_nested_payloads(res: WalkResult, cx: CheckContext) -> None:
    """Pickles inside the pickle: literal arguments of loader calls (pickle.loads(b"...")) and base64/hex/zlib
    literals that decode to a pickle. Each is analyzed as a pickle of its own with every check."""
    analyze = cx.analyze_nested
    if analyze is None:
        return
    ctx = cx.ctx
    loaded: set[bytes] = set()
    for lc in res.loader_calls:
        data = static_bytes(lc.first_arg) if lc.first_arg is not None else None
        if data is not None:
            loaded.add(data)
            analyze(data, lc.offset, f"argument of {lc.rec.dotted}", lc.allowed)
    for lit in res.literals:
        try:
            found = decode_candidate(lit.value, MAX_DECODED)
        except Exception:  # decoding a literal must never stop the scan
            log.debug("literal decode failed", exc_info=True)
            found = None
        if found is None:
            found = _raw_pickle(lit.value)
        if found is None:
            continue
        encoding, data = found
        try:
            ctx.state.charge(len(data))
        except BudgetExceeded as exc:
            ctx.limit_hit("max_total_uncompressed", str(exc), offset=lit.offset)
            return
        try:
            cx.budget.charge(len(data))  # decoded bytes live while the inner pickle is walked
        except LimitHit as exc:
            ctx.limit_hit(exc.what, str(exc), offset=lit.offset)
            return
        if encoding == "raw" and data in loaded:
            continue  # analyzed above as a loader call's argument
        if encoding == "raw":
            # a plain pickle in a literal is judged by what it does, like a loader call's argument: nothing
            # decodes it, so it hides nothing from a reader, and benign objects do keep pickled blobs
            analyze(data, lit.offset, "raw pickle literal", None)
            continue
        ctx.add(
            "PICKLE-ENCODED-PAYLOAD",
            f"a {encoding}-encoded pickle ({len(data)} bytes) is hidden in a string literal",
            offset=lit.offset,
            evidence={"encoding": encoding, "decoded_bytes": len(data)},
        )
        analyze(data, lit.offset, f"{encoding} literal", None)


def _raw_pickle(value: str | bytes) -> tuple[str, bytes] | None:
    """A literal that is itself a pickle (``b"\\x80\\x04..."``, or the same bytes as a latin-1 string): one
    ``pickle.loads`` away from running, like an encoded one. Claimed only when a walk of it imports a name made
    of identifiers (or reaches STOP having called something), so array bytes or text that happen to start like a
    pickle are not analyzed as one."""
    if isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    else:
        raw = bytes(value)
    header = len(raw) >= 2 and raw[0] == 0x80 and 2 <= raw[1] <= 5
    res = Machine(
        Cursor(BytesReader(raw, "<literal>")),
        _RAW_LIMITS,
        Budget(_RAW_LIMITS.max_pickle_opcodes),
        out_of_time=lambda: False,
        joblib=False,
    ).run()
    # With a protocol header, a broken tail still runs what came before it (pickle.loads raises after the
    # REDUCE): an import of identifiers counts either way. Without one (protocols 0/1) text can read as
    # opcodes ("cat\ndog\n" is GLOBAL at.dog): only a stream that reaches STOP counts.
    named = any(_dotted(r.module) and _dotted(r.name) for r in res.imports)
    if header and named:
        return "raw", raw
    if res.end >= 0 and (named or res.untraced or res.persistent_ids):
        return "raw", raw
    return None


def _dotted(s: str) -> bool:
    return bool(s) and all(p.isidentifier() for p in s.split("."))


#: every check of one walk, in reporting order
CHECKS: list[Check] = [
    check_imports,
    check_dynamic_imports,
    check_untraced_calls,
    check_object_protocol,
    check_helper_arguments,
    check_aliased_imports,
    check_state_mutation,
    check_lenient_opcodes,
    check_nested_payloads,
]


def run_checks(res: WalkResult, cx: CheckContext, checks: list[Check] = CHECKS) -> None:
    for check in checks:
        check(res, cx)


# --------------------------------------------------------------------------- whole streams


def check_persistent_ids(persistent_ids: list[Any], ctx: InspectContext) -> None:
    """Persistent ids in a plain pickle file: only a custom loader (torch's) resolves them, so a file that is
    not inside such a container either fails to load or relies on code the scanner does not see."""
    if not persistent_ids:
        return
    shown = [str(p)[:120] for p in persistent_ids[:5]]
    ctx.add(
        "PICKLE-PERSISTENT-ID",
        f"{len(persistent_ids)} persistent ids in a plain pickle (only a custom loader resolves them)",
        evidence={"count": len(persistent_ids), "first": shown},
    )
