"""JSON report: the ScanReport model itself, schema-versioned (see docs/report.schema.json)."""

from __future__ import annotations

import json

from ..findings import ScanReport


def render_json(report: ScanReport) -> str:
    return report.model_dump_json(indent=2) + "\n"


def report_json_schema() -> str:
    schema = ScanReport.model_json_schema()
    schema["$id"] = "https://modelward.dev/schemas/report-1.json"
    schema["title"] = "modelward scan report"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
