"""JSON report: the ScanReport model itself, schema-versioned (see docs/report.schema.json).

Written as a stream: the report's head as pydantic writes it, with its ``files``, ``verdict.reasons`` and
``verdict.file_decisions`` filled in one item at a time. The text is the same as ``model_dump_json(indent=2)``
of the whole report, without the whole report (or its text) ever being in memory.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import TextIO

from ..findings import ScanReport, _adapter
from .view import MemoryView, ReportView

# a head's empty members as pydantic indents them; each is unique (quotes inside strings are escaped)
_FILES = '\n  "files": [],'
_REASONS = '\n    "reasons": [],'
_DECISIONS = '\n    "file_decisions": {}'


def write_list(out: TextIO, items: Iterable[str], indent: str, brackets: str = "[]") -> None:
    """A JSON array (or object, ``brackets="{}"``) of already-indented texts, nested at ``indent``, laid out
    as ``json.dumps``/pydantic lay it out with ``indent=2``: ``[]`` when empty."""
    out.write(brackets[0])
    first = True
    for text in items:
        out.write(("\n" if first else ",\n") + indent + text.replace("\n", "\n" + indent))
        first = False
    out.write(brackets[1] if first else "\n" + indent[:-2] + brackets[1])


def write_json(view: ReportView, out: TextIO, tail: Callable[[TextIO], None] | None = None) -> None:
    """The report's JSON; ``tail`` writes more members before the closing brace (``,\\n  "audit": ...``)."""
    before, rest = view.head.json_bytes(indent=2).decode().split(_FILES, 1)
    out.write(before + '\n  "files": ')
    write_list(out, (fr.json_bytes(indent=2).decode() for fr, _d in view.files()), "    ")
    out.write(",")
    if view.head.verdict is not None:
        middle, rest = rest.split(_REASONS, 1)
        out.write(middle + '\n    "reasons": ')
        write_list(out, (r.json_bytes(indent=2).decode() for r in view.reasons()), "      ")
        out.write(",")
        middle, rest = rest.split(_DECISIONS, 1)
        out.write(middle + '\n    "file_decisions": ')
        key = _adapter(str)
        entries = (f"{key.dump_json(p).decode()}: {json.dumps(d.value)}" for p, d in view.decisions())
        write_list(out, entries, "      ", "{}")
    if tail is None:
        out.write(rest + "\n")
        return
    out.write(rest[: rest.rindex("}")].rstrip(" \n"))
    tail(out)
    out.write("\n}\n")


def render_json(report: ScanReport) -> str:
    buf = io.StringIO()
    write_json(MemoryView(report), buf)
    return buf.getvalue()


def report_json_schema() -> str:
    schema = ScanReport.model_json_schema()
    schema["$id"] = "https://modelward.dev/schemas/report-1.json"
    schema["title"] = "modelward scan report"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
