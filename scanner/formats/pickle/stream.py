"""Analysis of a byte range holding one or more pickles: walk each, run the checks, report.

This is the public entry point for every inspector that meets a pickle (plain
files, torch zip ``data.pkl``, torch legacy stacks, numpy object arrays,
joblib). Every pickle in the range is walked: loaders that read several
pickles (torch legacy, custom loops) run them all. Where joblib framing
consumed bytes, the same stream is walked again as pickle.load/torch.load read
it (array bytes as opcodes, same stack and memo), and both views are reported.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ...findings import Finding, Severity
from ...io.reader import BytesReader, Reader
from ..interface import InspectContext
from .checks import CHECKS, CheckContext, check_nested_payloads, run_checks
from .classify import Classifier
from .constraints import load_constraints
from .cursor import Cursor
from .evidence import decompile
from .gadgets import Gadget, load_gadgets
from .nested import LOADERS
from .records import NOT_LITERAL
from .walker import Budget, Machine, WalkResult

log = logging.getLogger(__name__)

#: the plain-unpickler view re-reads literals the primary walk already decoded: every check but nested payloads
VIEW_CHECKS = [c for c in CHECKS if c is not check_nested_payloads]


V = TypeVar("V")


class LazyTable(Mapping[str, V]):
    """A rule table built on its first lookup: a pickle that imports nothing (plain data) never looks up a
    gadget or constraint, and building the tables is a tenth of a one-file scan (issue #13). A table that
    cannot be built raises on that first lookup, inside the walk, which fails closed as before."""

    def __init__(self, load: Callable[[Path], dict[str, V]], root: Path) -> None:
        self._load, self._root = load, root
        self._table: dict[str, V] | None = None

    def _built(self) -> dict[str, V]:
        if self._table is None:
            self._table = self._load(self._root)
        return self._table

    def __getitem__(self, key: str) -> V:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __bool__(self) -> bool:
        return True  # ``table or {}`` keeps the lazy table (an empty one behaves as {} anyway)


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
    # what each pickle walked to STOP returned, when a plain literal (ints, strings, lists, tuples), else NOT_LITERAL
    values: list[Any] = field(default_factory=list)
    # per pickle walked to STOP: a small returned tuple with imports as 'module:name' (walker.WalkResult.shape)
    shapes: list[Any] = field(default_factory=list)


@dataclass
class _Run:
    """State shared by one top-level call and its nested analyses."""

    ctx: InspectContext
    classifier: Classifier
    budget: Budget
    nesting: int
    gadgets: Mapping[str, Gadget] = field(default_factory=dict)
    constraints: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def kept_watch(self, path: str) -> bool:
        """An import whose uses as a kept value are judged (a newobj-only class: checks._check_kept)."""
        rule = self.constraints.get(path)
        return rule is not None and rule[0] == "newobj-only"

    def checks(self, view: str | None = None) -> CheckContext:
        def nested(data: bytes, offset: int, how: str, allowed: frozenset[str] | None) -> None:
            _analyze_nested(self, data, offset, how, allowed)

        return CheckContext(
            self.ctx,
            self.classifier,
            self.constraints,
            self.budget,
            analyze_nested=None if view else nested,
            view=view,
        )


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
    gadgets = LazyTable(load_gadgets, st.rules.root)
    budget = Budget(ctx.limits.max_pickle_opcodes, ctx.limits.max_pickle_memory)
    run = _Run(ctx, classifier, budget, 0, gadgets, LazyTable(load_constraints, st.rules.root))
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

        def on_inline(c: Cursor) -> bool:
            return _inline_pickle(run, reader, c)

        machine = Machine(
            cur,
            ctx.limits,
            run.budget,
            out_of_time=ctx.state.out_of_time,
            loader_names=LOADERS,
            collect_literals=True,
            on_inline_pickle=on_inline,
            gadgets=run.gadgets,
            kept_watch=run.kept_watch,
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
        run_checks(res, run.checks())
        if res.joblib_skipped >= 0:
            _plain_view(run, reader, res.start, cur.end, res.joblib_skipped, res.joblib_inline)
        if res.end >= 0:
            summary.pickle_count += 1
            summary.end_offset = res.end
            summary.values.append(res.value)
            summary.shapes.append(res.shape)
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


def read_literal(reader: Reader, ctx: InspectContext, start: int, end: int) -> Any:
    """The plain value the pickle at ``reader[start:end]`` loads to (a count, a key list), else NOT_LITERAL.

    The same walker as the analysis, with lists kept whole, and no findings: callers
    (legacy torch) analyze the same bytes with :func:`analyze_pickle_stream` first.
    """
    machine = Machine(
        Cursor(reader, start, end),
        ctx.limits,
        Budget(ctx.limits.max_pickle_opcodes, ctx.limits.max_pickle_memory),
        out_of_time=ctx.state.out_of_time,
        joblib=False,
        whole_lists=True,
    )
    res = machine.run()
    return res.value if res.complete else NOT_LITERAL


def _did_something(res: WalkResult) -> bool:
    return bool(res.imports or res.untraced or res.mutations or res.persistent_ids)


def _analyze_nested(
    run: _Run, data: bytes, offset: int, how: str, allowed: frozenset[str] | None = None
) -> None:
    ctx = run.ctx
    if run.nesting + 1 > ctx.limits.max_pickle_nesting:
        ctx.limit_hit(
            "max_pickle_nesting",
            f"pickle nested deeper than {ctx.limits.max_pickle_nesting} levels",
            offset=offset,
        )
        return
    member = f"<nested@{offset}>"
    child = InspectContext(
        ctx.state, ctx.child_path(member), ctx.depth + 1, member_name=member, dispatch=ctx.dispatch
    )
    ctx.add(
        "PICKLE-NESTED",
        f"nested pickle ({len(data)} bytes, {how}) analyzed as {child.path}",
        offset=offset,
        evidence={"bytes": len(data), "source": how},
    )
    classifier = run.classifier
    if allowed:
        # a gadget rule's pickled: entries, allowed in this nested pickle only (the denylist still applies)
        classifier = copy.copy(classifier)
        classifier.extra = classifier.extra | {(m, n) for m, _, n in (a.partition(":") for a in allowed)}
        classifier._cache = {}
    sub = _Run(child, classifier, run.budget, run.nesting + 1, run.gadgets, run.constraints)
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


def _plain_view(
    run: _Run, reader: Reader, start: int, end: int, diverged: int, inline: list[tuple[int, int]]
) -> None:
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
        alias_from=diverged,
        alias_ranges=inline,
        on_aliased_import=lambda module, name: _judged(run.classifier, module, name),
        kept_watch=run.kept_watch,
    )
    res = machine.run()
    machine.release()
    del machine
    res.imports = [r for r in res.imports if r.offset >= diverged]
    res.untraced = [u for u in res.untraced if u.offset >= diverged]
    res.mutations = [m for m in res.mutations if m.offset >= diverged]
    res.anomalies = [a for a in res.anomalies if a.offset >= diverged]
    view = "plain unpickler (pickle.load/torch.load: joblib array bytes run as opcodes)"
    run_checks(res, run.checks(view), VIEW_CHECKS)
    if res.limit is not None:
        ctx.limit_hit(
            res.limit.what, f"plain-unpickler view of joblib data: {res.limit}", offset=res.error_offset
        )


def _judged(classifier: Classifier, module: str, name: str) -> bool:
    """Whether the plain view judges an import assembled from aliased memo entries (allowlisted: it goes on;
    denylisted under any spelling: it is reported as such) rather than ending there (walker._aliased_import_ends_view)."""
    v = classifier.classify(module, name)
    return v.allowed or v.rule is not None


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
