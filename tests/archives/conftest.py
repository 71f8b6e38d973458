"""Helpers for archive/compression tests: build payloads in memory and scan bytes through detection."""

from __future__ import annotations

import os
import pickle
import time

import pytest

from scanner.findings import FileResult
from scanner.formats.base import InspectContext, ScanState
from scanner.formats.detect import inspect_with_detection
from scanner.io.reader import BytesReader, Reader
from scanner.limits import DEFAULT_LIMITS, Limits
from scanner.rules import get_rule_db

CANARY_CMD = "touch /tmp/modelward-canary"


class _Canary:
    def __reduce__(self):  # noqa: D105 - pickled, never loaded
        return (os.system, (CANARY_CMD,))


def evil_pickle(protocol: int = 4) -> bytes:
    """pickle.dumps of a reduce to os.system; dumps does not call it, and nothing here loads it."""
    return pickle.dumps(_Canary(), protocol=protocol)


def benign_pickle() -> bytes:
    return pickle.dumps({"weights": [1.0, 2.0, 3.0], "name": "layer"}, protocol=4)


def scan_reader(reader: Reader, name: str = "sample.bin", limits: Limits = DEFAULT_LIMITS) -> FileResult:
    result = FileResult(path=name, size=reader.size, format="unknown")
    state = ScanState(rules=get_rule_db(), limits=limits, result=result,
                      budget_left=limits.max_total_uncompressed, deadline=time.monotonic() + limits.file_seconds)
    inspect_with_detection(reader, InspectContext(state, name))
    return result


def scan_bytes(data: bytes, name: str = "sample.bin", limits: Limits = DEFAULT_LIMITS) -> FileResult:
    return scan_reader(BytesReader(data, name), name, limits)


def rule_ids(result: FileResult) -> set[str]:
    return {f.rule_id for f in result.findings}


def findings_for(result: FileResult, rule_id: str) -> list:
    return [f for f in result.findings if f.rule_id == rule_id]


@pytest.fixture
def evil() -> bytes:
    return evil_pickle()


def pickle_analyzer_present() -> bool:
    from scanner.formats.registry import handlers

    return any(h.name == "pickle" for h in handlers())


MY_HANDLERS = {"gzip", "bzip2", "xz", "lzma-alone", "zlib", "zstd", "lz4-frame", "joblib-zfile", "tar-archive",
               "7z-archive"}


def crashed_here(result: FileResult) -> list:
    """INSPECTOR-ERROR findings raised by this package's handlers (inner formats are not ours to judge)."""
    return [f for f in result.findings if f.rule_id == "INSPECTOR-ERROR" and f.message.split(" ")[0] in MY_HANDLERS]
