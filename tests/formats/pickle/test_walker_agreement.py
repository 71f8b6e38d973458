"""The walker's fast loop and its plain per-opcode handlers produce the same walk result.

The fast loop decodes hot opcodes in place from the cursor's buffer; the plain
loop (``Machine(fast=False)``) runs every opcode through its ``op_*`` handler.
Both must agree on every record of the typed walk result, on the fixture pickles,
the test pickles and fixed-seed truncations, bit flips and splices of them, with
the cursor's buffer both large and tiny (so hot opcodes straddle refills).
"""

from __future__ import annotations

import dataclasses
import io
import random
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from scanner.formats.pickle import cursor as cursor_mod
from scanner.formats.pickle.cursor import Cursor
from scanner.formats.pickle.gadgets import load_gadgets
from scanner.formats.pickle.nested import LOADERS
from scanner.formats.pickle.records import ImportRec
from scanner.formats.pickle.values import render
from scanner.formats.pickle.walker import Budget, Machine, WalkResult
from scanner.io.reader import BytesReader
from scanner.limits import Limits
from scanner.rules import get_rule_db
from tests.harness import REPO

from .assembler import DATA, Evil

LIMITS = Limits()
GADGETS = load_gadgets(get_rule_db().root)


def _pickles(path: Path) -> list[tuple[str, bytes]]:
    data = path.read_bytes()
    out = []
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for n in [n for n in z.namelist() if n.endswith(".pkl")][:4]:
                try:
                    out.append((f"{path.name}!{n}", z.read(n)))
                except (zipfile.BadZipFile, NotImplementedError, OSError):
                    continue  # hostile archives: their raw bytes below still count
    return out or [(path.name, data)]


def _corpus() -> list[tuple[str, bytes]]:
    paths = [
        p
        for root in (REPO / "fixtures" / "pickle", REPO / "fixtures" / "pickle-loader", DATA)
        if root.is_dir()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in (".json", ".md", ".txt", ".py") and p.stat().st_size <= 1 << 20
    ]
    out = [item for p in paths for item in _pickles(p)]
    import pickle

    out.append(("evil_p0", pickle.dumps(Evil(), protocol=0)))
    out.append(("evil_p5", pickle.dumps({"x": [Evil(), "a" * 40, ("é" * 9, 2**40)]}, protocol=5)))
    return out


def _variants(name: str, data: bytes) -> list[bytes]:
    """Fixed-seed mutations: truncations, bit flips and a splice of the stream into itself."""
    rnd = random.Random(zlib.crc32(name.encode()))
    out = [data]
    if len(data) < 2:
        return out
    for _ in range(3):
        out.append(data[: rnd.randrange(1, len(data))])
    for _ in range(6):
        b = bytearray(data)
        i = rnd.randrange(len(b))
        b[i] ^= 1 << rnd.randrange(8)
        out.append(bytes(b))
    i, j = sorted(rnd.randrange(len(data)) for _ in range(2))
    out.append(data[:j] + data[i:])
    return out


CORPUS = _corpus()


def _walk(data: bytes, fast: bool) -> WalkResult:
    m = Machine(
        Cursor(BytesReader(data, "x")),
        LIMITS,
        Budget(200_000, weight=32 << 20),
        out_of_time=lambda: False,
        loader_names=LOADERS,
        collect_literals=True,
        gadgets=GADGETS,
        fast=fast,
    )
    return m.run()


def _imp(r: ImportRec) -> tuple[Any, ...]:
    fc = dataclasses.astuple(r.first_call) if r.first_call else None
    return (r.path, r.opcode, r.offset, r.index, r.dynamic, r.called, r.passed, r.static_calls,
            r.new_calls, r.helper_calls, fc, r.raw)  # fmt: skip


def canonical(res: WalkResult) -> dict[str, Any]:
    """Every record of a walk result as plain comparable data."""
    return {
        "where": (res.start, res.end, res.proto, res.opcodes),
        "imports": [_imp(r) for r in res.imports],
        "untraced": [dataclasses.astuple(u) for u in res.untraced],
        "mutations": [(m.target.path, m.opcode, m.offset, m.index, m.state) for m in res.mutations],
        "persistent_ids": res.persistent_ids,
        "loader_calls": [(c.rec.path, c.offset, render(c.first_arg)) for c in res.loader_calls],
        "literals": [(c.offset, c.value) for c in res.literals],
        "anomalies": [(a.kind, a.message, a.offset, a.index, repr(a.evidence)) for a in res.anomalies],
        "joblib": (res.joblib_arrays, res.joblib_skipped),
        "value": repr(res.value),
        "error": (
            res.error,
            res.error_offset,
            res.error_index,
            res.limit and (res.limit.what, str(res.limit)),
        ),
    }


def test_corpus_is_not_trivial() -> None:
    walks = [_walk(d, fast=False) for _, d in CORPUS]
    assert len(CORPUS) >= 150
    assert sum(1 for w in walks if w.imports and w.end >= 0) >= 100  # real pickles, walked to STOP
    assert (
        any(w.untraced for w in walks)
        and any(w.anomalies for w in walks)
        and any(w.persistent_ids for w in walks)
    )


@pytest.mark.parametrize("chunk", [cursor_mod.CHUNK, 7])
def test_fast_loop_agrees_with_plain_handlers(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cursor_mod, "CHUNK", chunk)
    checked = 0
    for name, data in CORPUS:
        for i, variant in enumerate(_variants(name, data)):
            fast, plain = canonical(_walk(variant, True)), canonical(_walk(variant, False))
            for key in fast:
                assert fast[key] == plain[key], f"{name} variant {i}: {key} differs"
            checked += 1
    assert checked >= 1500
