"""Analysis of a byte range holding one or more pickles: walk, classify, report.

This is the public entry point for every inspector that meets a pickle (plain
files, torch zip ``data.pkl``, torch legacy stacks, numpy object arrays,
joblib). Every pickle in the range is walked: loaders that read several
pickles (torch legacy, custom loops) run them all. Where joblib framing
consumed bytes, the same stream is walked again as pickle.load/torch.load read
it (array bytes as opcodes, same stack and memo), and both views are reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ...findings import Finding, Severity
from ...io.reader import BytesReader, Reader
from ..base import BudgetExceeded, InspectContext
from .classify import Classifier
from .constraints import load_constraints
from .cursor import Cursor
from .evidence import decompile
from .gadgets import Gadget, load_gadgets
from .nested import LOADERS, decode_candidate, first_arg, static_bytes
from .values import ImportRec
from .walker import Budget, LimitHit, Machine, WalkResult

log = logging.getLogger(__name__)

MAX_CANDIDATES = 32
MAX_LITERAL_CHECK = 8 << 20
MAX_DECODED = 64 << 20
MAX_UNTRACED_FINDINGS = 20


@dataclass
class PickleStreamSummary:
    """What callers (torch, numpy, joblib inspectors) need after the walk."""

    start: int
    end_offset: int  # just after the last STOP reached (== start when none)
    pickle_count: int = 0
    persistent_ids: list[Any] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)  # 'module:name' in first-seen order
    complete: bool = True  # every pickle walked to STOP, no error, no limit
    joblib_arrays: int = 0
    max_severity: Severity | None = None


@dataclass
class _Run:
    """State shared by one top-level call and its nested analyses."""

    ctx: InspectContext
    classifier: Classifier
    budget: Budget
    nesting: int
    gadgets: dict[str, Gadget] = field(default_factory=dict)
    constraints: dict[str, tuple[str, str]] = field(default_factory=dict)


def analyze_pickle_stream(
    reader: Reader,
    ctx: InspectContext,
    *,
    start: int = 0,
    end: int | None = None,
    max_pickles: int | None = None,
) -> PickleStreamSummary:
    """Walk every pickle in ``reader[start:end]`` and add findings to ``ctx``.

    ``max_pickles`` stops after that many pickles (torch legacy reads 5 and then
    raw storage bytes); without it, bytes after the last STOP are checked and
    reported. Never raises for content problems.
    """
    st = ctx.state
    classifier = Classifier(st.rules, st.allowed_profiles, st.extra_allowed_globals)
    gadgets = load_gadgets(st.rules.root)
    budget = Budget(ctx.limits.max_pickle_opcodes, ctx.limits.max_pickle_memory)
    run = _Run(ctx, classifier, budget, 0, gadgets, load_constraints(st.rules.root))
    return _analyze(run, reader, start, end, max_pickles)


def _analyze(
    run: _Run, reader: Reader, start: int, end: int | None, max_pickles: int | None
) -> PickleStreamSummary:
    ctx = run.ctx
    cur = Cursor(reader, start, end)
    summary = PickleStreamSummary(start=start, end_offset=start)
    seen_globals: dict[str, None] = {}
    while cur.remaining > 0 and (max_pickles is None or summary.pickle_count < max_pickles):
        trailing = summary.pickle_count > 0 and max_pickles is None
        candidates: list[tuple[int, str | bytes]] = []

        def on_literal(
            value: str | bytes, offset: int, _c: list[tuple[int, str | bytes]] = candidates
        ) -> None:
            if len(_c) < MAX_CANDIDATES and len(value) <= MAX_LITERAL_CHECK:
                _c.append((offset, value))

        def on_inline(c: Cursor) -> bool:
            return _inline_pickle(run, reader, c)

        machine = Machine(
            cur,
            ctx.limits,
            run.budget,
            out_of_time=ctx.state.out_of_time,
            loader_names=LOADERS,
            on_literal=on_literal,
            on_inline_pickle=on_inline,
            gadgets=run.gadgets,
        )
        res = machine.run()
        machine.release()  # the memo can be large; nested analyses below must not stack on it
        del machine
        for rec in res.imports:
            seen_globals.setdefault(rec.path, None)
        summary.persistent_ids.extend(res.persistent_ids)
        summary.joblib_arrays += res.joblib_arrays
        if trailing and res.end < 0 and res.limit is None and not _did_something(res):
            # junk after the last pickle: no loader reaches it as a pickle
            ctx.add(
                "PICKLE-TRAILING-DATA",
                f"{cur.end - res.start} bytes after the last pickle do not form a pickle",
                offset=res.start,
                evidence={"bytes": cur.end - res.start},
            )
            break
        before = len(ctx.state.result.findings)
        _report(run, reader, res)
        _nested(run, res, candidates)
        if res.joblib_skipped >= 0:
            _plain_view(run, reader, res.start, cur.end, res.joblib_skipped)
        if res.end >= 0:
            summary.pickle_count += 1
            summary.end_offset = res.end
        new = ctx.state.result.findings[before:]
        _attach_decompiled(run, reader, res, new)
        if res.limit is not None:
            ctx.limit_hit(res.limit.what, str(res.limit), offset=res.error_offset)
            summary.complete = False
            break
        if res.error is not None:
            summary.complete = False
            if trailing:
                ctx.add(
                    "PICKLE-TRAILING-DATA",
                    f"bytes after the last complete pickle start another pickle that breaks: {res.error}",
                    offset=res.start,
                    evidence={"bytes": cur.end - res.start, "error": res.error},
                )
            else:
                ctx.add(
                    "PICKLE-MALFORMED",
                    f"pickle is malformed: {res.error}; opcodes before this point still run when loaded",
                    offset=res.error_offset,
                    opcode_index=res.error_index,
                    evidence={"error": res.error},
                )
                ctx.partial(f"pickle malformed at offset {res.error_offset}: {res.error}")
            break
    if summary.pickle_count == 0 and summary.complete and cur.remaining == 0 and max_pickles != 0:
        ctx.add("PICKLE-MALFORMED", "no pickle data (empty range)", offset=start)
        ctx.partial("empty pickle range")
        summary.complete = False
    if summary.pickle_count > 1 and max_pickles is None:
        ctx.add(
            "PICKLE-MULTIPLE-STREAMS",
            f"{summary.pickle_count} pickles back to back; loaders that read more than one run them all",
            evidence={"count": summary.pickle_count},
        )
    summary.globals = list(seen_globals)
    summary.max_severity = max(
        (
            f.severity
            for f in ctx.state.result.findings
            if f.path == ctx.path or f.path.startswith(ctx.path + "!")
        ),
        default=None,
        key=lambda s: s.rank,
    )
    return summary


def _did_something(res: WalkResult) -> bool:
    return bool(res.imports or res.untraced or res.mutations or res.persistent_ids)


def _dotted(rec: ImportRec) -> str:
    return f"{rec.module}.{rec.name}"


_ALLOWANCE_HINT = (
    "; if this is your own class, allow it with a scoped policy allowance (pickle.extra_allowed with sources)"
)


def _report(run: _Run, reader: Reader, res: WalkResult, view: str | None = None) -> None:
    ctx, cls = run.ctx, run.classifier
    vnote = f" [{view}]" if view else ""
    groups: dict[tuple[str, str, str | None], list[ImportRec]] = {}
    for rec in res.imports:
        groups.setdefault((rec.module, rec.name, rec.dynamic), []).append(rec)
    for (module, name, dynamic), recs in groups.items():
        first = recs[0]
        called = sum(r.called - r.static_calls for r in recs)
        passed = sum(r.passed for r in recs)
        if not called and not passed and any(r.static_calls for r in recs):
            continue  # only used as getattr(<import>, 'name'): the fetched attributes are judged as imports
        call = next((r.first_call for r in recs if r.first_call), None)
        ev: dict[str, Any] = {"global": first.path, "opcode": first.opcode, "occurrences": len(recs)}
        if view:
            ev["view"] = view
        if first.raw:
            ev["as_written"] = first.raw
        if called:
            ev["called"] = called
        if call:
            ev["callable"] = _dotted(first)
            ev["args"] = call["args"]
            if "kwargs" in call:
                ev["kwargs"] = call["kwargs"]
        verdict = cls.classify(module, name, first.raw)
        use = "called" if called else ("passed to a call" if passed else "imported")
        if verdict.rule is not None:
            ev["category"] = verdict.deny.category if verdict.deny else None
            if verdict.via:
                ev["reaches"] = verdict.via
            ctx.add(
                verdict.rule,
                f"{_dotted(first)} ({ev['category']}) is {use}{vnote}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )
            continue
        if dynamic is not None and not (first.opcode != "EXT" and verdict.allowed):
            ev["reason"] = dynamic
            ctx.add(
                "PICKLE-DYNAMIC-IMPORT",
                f"import that cannot be resolved statically ({dynamic}): {_dotted(first)}{vnote}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )
            continue
        if verdict.allowed:
            _check_constraint(run, first, recs, called, ev, vnote)
            continue
        if called or passed:
            ctx.add(
                "PICKLE-CALL-UNLISTED",
                f"{_dotted(first)} is not in the allowed profiles and is {use}{vnote}{_ALLOWANCE_HINT}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )
        else:
            ctx.add(
                "PICKLE-IMPORT-UNLISTED",
                f"{_dotted(first)} is imported but not in the allowed profiles{vnote}{_ALLOWANCE_HINT}",
                offset=first.offset,
                opcode_index=first.index,
                evidence=ev,
            )
    for i, u in enumerate(res.untraced):
        if i >= MAX_UNTRACED_FINDINGS:
            ctx.add(
                "PICKLE-UNTRACED-CALL",
                f"{len(res.untraced) - i} more calls on values that do not trace to an import",
                offset=u["offset"],
                evidence={"count": len(res.untraced) - i},
            )
            break
        ctx.add(
            "PICKLE-UNTRACED-CALL",
            f"{u['opcode']} calls {u['callable']}, which does not trace to an import{vnote}",
            offset=u["offset"],
            opcode_index=u["index"],
            evidence={
                "callable": u["callable"],
                "args": u["args"],
                "opcode": u["opcode"],
                **({"view": view} if view else {}),
            },
        )
    for m in res.mutations[:MAX_UNTRACED_FINDINGS]:
        target: ImportRec = m["rec"]
        ctx.add(
            "PICKLE-BUILD-ON-CALLABLE",
            f"{m['opcode']} changes the imported object {_dotted(target)} itself (attribute/state planting){vnote}",
            offset=m["offset"],
            opcode_index=m["index"],
            evidence={"global": target.path, "opcode": m["opcode"], "state": m["state"]},
        )
    _report_issues(ctx, res, view)


def _check_constraint(
    run: _Run, first: ImportRec, recs: list[ImportRec], called: int, ev: dict[str, Any], vnote: str
) -> None:
    """An allowlisted global used outside the shape its audit allows (signatures/pickle/audit)."""
    rule = run.constraints.get(first.path)
    if rule is None or not called:
        return
    kind, why = rule
    new = sum(r.new_calls for r in recs)
    # data-only: the unpickler must not call it; helpers that use it later are judged by gadgets.yaml
    if kind == "data-only":
        new += sum(r.helper_calls for r in recs)
    if called <= new:
        return  # only instantiated with cls.__new__ (NEWOBJ, or as the class argument of an audited rebuild helper)
    use = f"called other than by cls.__new__ ({called - new} times)"
    run.ctx.add(
        "PICKLE-CONSTRAINT-VIOLATION",
        f"{_dotted(first)} is allowed only {kind} but is {use}: {why[:200]}{vnote}",
        offset=first.offset,
        opcode_index=first.index,
        evidence={**ev, "constraint": kind},
    )


def _report_issues(ctx: InspectContext, res: WalkResult, view: str | None) -> None:
    """Gadget-argument, planted-hook and allocation findings the walker tagged with their rule."""
    for i, issue in enumerate(res.issues):
        if i >= MAX_UNTRACED_FINDINGS:
            break
        ev = dict(issue["evidence"])
        if view:
            ev["view"] = view
        ctx.add(
            issue["rule"],
            issue["message"] + (f" [{view}]" if view else ""),
            offset=issue["offset"],
            opcode_index=issue["index"],
            evidence=ev,
        )


def _nested(run: _Run, res: WalkResult, candidates: list[tuple[int, str | bytes]]) -> None:
    ctx = run.ctx
    for rec, call in res.loader_calls:
        arg = first_arg(call)
        data = static_bytes(arg) if arg is not None else None
        if data is None:
            continue
        _analyze_nested(run, data, call.offset, f"argument of {_dotted(rec)}")
    for offset, value in candidates:
        try:
            found = decode_candidate(value, MAX_DECODED)
        except Exception:  # decoding a literal must never stop the scan
            log.debug("literal decode failed", exc_info=True)
            found = None
        if found is None:
            continue
        encoding, data = found
        try:
            ctx.state.charge(len(data))
        except BudgetExceeded as exc:
            ctx.limit_hit("max_total_uncompressed", str(exc), offset=offset)
            return
        try:
            run.budget.charge(len(data))  # decoded bytes live while the inner pickle is walked
        except LimitHit as exc:
            ctx.limit_hit(exc.what, str(exc), offset=offset)
            return
        ctx.add(
            "PICKLE-ENCODED-PAYLOAD",
            f"a {encoding}-encoded pickle ({len(data)} bytes) is hidden in a string literal",
            offset=offset,
            evidence={"encoding": encoding, "decoded_bytes": len(data)},
        )
        _analyze_nested(run, data, offset, f"{encoding} literal")


def _analyze_nested(run: _Run, data: bytes, offset: int, how: str) -> None:
    ctx = run.ctx
    if run.nesting + 1 > ctx.limits.max_pickle_nesting:
        ctx.limit_hit(
            "max_pickle_nesting",
            f"pickle nested deeper than {ctx.limits.max_pickle_nesting} levels",
            offset=offset,
        )
        return
    member = f"<nested@{offset}>"
    child = InspectContext(ctx.state, ctx.child_path(member), ctx.depth + 1, member_name=member)
    ctx.add(
        "PICKLE-NESTED",
        f"nested pickle ({len(data)} bytes, {how}) analyzed as {child.path}",
        offset=offset,
        evidence={"bytes": len(data), "source": how},
    )
    sub = _Run(child, run.classifier, run.budget, run.nesting + 1, run.gadgets, run.constraints)
    _analyze(sub, BytesReader(data, child.path), 0, None, None)


def _inline_pickle(run: _Run, reader: Reader, cur: Cursor) -> bool:
    """A joblib object array: one plain pickle right here in the stream; walk it and resume after it."""
    if run.nesting + 1 > run.ctx.limits.max_pickle_nesting:
        run.ctx.limit_hit("max_pickle_nesting", "joblib object arrays nested too deep", offset=cur.pos)
        return False
    sub = _Run(run.ctx, run.classifier, run.budget, run.nesting + 1, run.gadgets, run.constraints)
    summary = _analyze(sub, reader, cur.pos, cur.end, 1)
    if summary.pickle_count != 1 or not summary.complete:
        return False
    cur.pos = summary.end_offset
    return True


def _plain_view(run: _Run, reader: Reader, start: int, end: int, diverged: int) -> None:
    """The same stream as pickle.load / torch.load read it: no joblib framing, so array bytes run as opcodes.

    One full walk from the pickle's start with the state the plain unpickler
    has (stack, memo, marks), reported like any walk. Records before
    ``diverged`` (where joblib framing first consumed bytes) are the same in both
    views and were reported already. Only run when framing actually skipped bytes.
    """
    ctx = run.ctx
    machine = Machine(
        Cursor(reader, start, end),
        ctx.limits,
        run.budget,
        out_of_time=ctx.state.out_of_time,
        loader_names=LOADERS,
        joblib=False,
        gadgets=run.gadgets,
        strict_calls=True,
    )
    res = machine.run()
    machine.release()
    del machine
    res.imports = [r for r in res.imports if r.offset >= diverged]
    res.untraced = [u for u in res.untraced if u["offset"] >= diverged]
    res.mutations = [m for m in res.mutations if m["offset"] >= diverged]
    res.issues = [i for i in res.issues if i["offset"] >= diverged]
    _report(
        run, reader, res, view="plain unpickler (pickle.load/torch.load: joblib array bytes run as opcodes)"
    )
    if res.limit is not None:
        ctx.limit_hit(
            res.limit.what, f"plain-unpickler view of joblib data: {res.limit}", offset=res.error_offset
        )


def _attach_decompiled(run: _Run, reader: Reader, res: WalkResult, new: list[Finding]) -> None:
    own = [
        f
        for f in new
        if f.path == run.ctx.path and f.severity >= Severity.HIGH and f.rule_id != "PICKLE-MALFORMED"
    ]
    if not own:
        return
    stop = res.end if res.end >= 0 else (res.error_offset or res.start)
    length = stop - res.start
    if length <= 0:
        return
    if length > (1 << 20):
        return
    data = reader.read(res.start, length)
    if res.end < 0:
        data += b"."  # let fickling show the payload of a pickle with a broken tail
    text = decompile(data, seconds=run.ctx.limits.fickling_seconds, max_chars=run.ctx.limits.evidence_chars)
    if text is None:
        return
    worst = max(own, key=lambda f: f.severity.rank)
    worst.evidence["decompiled"] = text
