"""Coverage-guided fuzzing of one target with atheris (libFuzzer): ``python -m tests.fuzz.run TARGET [args]``.

TARGET is a name from ``tests.fuzz.targets.TARGETS`` or ``all`` (the first byte picks the parser).
Options before libFuzzer's: ``--strict`` (an INSPECTOR-ERROR finding counts as a crash),
``--corpus DIR`` (where the seeds go and new coverage accumulates; default a temporary folder) and
``--seeds N`` (only the N smallest seeds per target: quick runs start fuzzing sooner).
Every other argument goes to libFuzzer, e.g. ``-max_total_time=60 -rss_limit_mb=512 -timeout=15
-artifact_prefix=tests/fuzz/regressions/pickle/``. A crash input is written there by libFuzzer;
keep it under ``tests/fuzz/regressions/<target>/`` so ``test_regressions`` replays it forever.

Exit status: 0 when the run ended without a crash, libFuzzer's non-zero status otherwise, 3 when
atheris is not installed (``pip install atheris``; wheels exist for CPython 3.8-3.12 on Linux x86-64).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path


def _parse(argv: list[str]) -> tuple[str, bool, Path | None, int | None, list[str]]:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    target, rest = argv[0], argv[1:]
    strict, corpus, nseeds, passthrough = False, None, None, []
    it = iter(rest)
    for arg in it:
        if arg == "--strict":
            strict = True
        elif arg == "--corpus":
            corpus = Path(next(it))
        elif arg == "--seeds":
            nseeds = int(next(it))
        else:
            passthrough.append(arg)
    return target, strict, corpus, nseeds, passthrough


PARSING = (
    "scanner.formats",
    "scanner.analysis",
    "scanner.repo",
    "scanner.engine",
    "scanner.io.reader",
    "scanner.io.spool",
)


def _import_all_scanner_modules() -> None:
    import importlib
    import pkgutil

    import scanner

    for mod in pkgutil.walk_packages(scanner.__path__, "scanner."):
        if not mod.name.startswith(PARSING):
            continue  # reports, signing, network sources: not reached by the targets, not worth instrumenting
        try:
            importlib.import_module(mod.name)
        except Exception:  # noqa: BLE001, S110 - an optional extra missing: that module is just not instrumented
            pass


def main(argv: list[str] | None = None) -> int:
    target, strict, corpus, nseeds, passthrough = _parse(list(sys.argv[1:] if argv is None else argv))
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 3
    with atheris.instrument_imports(include=["scanner"]):
        _import_all_scanner_modules()  # lazily imported parsers would otherwise run uninstrumented
        from tests.fuzz import targets as t
    if target != "all" and target not in t.TARGETS:
        print(f"unknown target {target!r}; choose from: all, {', '.join(sorted(t.TARGETS))}", file=sys.stderr)
        return 2
    for arg in passthrough:
        if arg.startswith("-artifact_prefix=") and arg.endswith("/"):
            Path(arg.split("=", 1)[1]).mkdir(parents=True, exist_ok=True)
    inputs = [a for a in passthrough if not a.startswith("-")]
    if not inputs:  # fuzz from the seeds; with input files given, libFuzzer just runs those (reproduce)
        corpus_dir = corpus or Path(tempfile.mkdtemp(prefix=f"modelward-fuzz-{target}-"))
        corpus_dir.mkdir(parents=True, exist_ok=True)
        seeds = t.all_seeds(nseeds) if target == "all" else t.seeds(target, nseeds)
        for i, s in enumerate(seeds):
            (corpus_dir / f"seed-{i:04d}").write_bytes(s)
        passthrough.append(str(corpus_dir))
    from scanner.rules import get_rule_db

    get_rule_db()  # load rules once, outside the per-input budget

    def one_input(data: bytes) -> None:
        t.replay(target, data, strict=strict)

    atheris.Setup([sys.argv[0], *passthrough], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
