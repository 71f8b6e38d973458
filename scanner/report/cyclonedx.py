"""CycloneDX 1.6 ML-BOM: one component per model file, with hashes, source references and the verdict.

Security teams feed BOMs to their inventory and dependency-tracking tools; the verdict, coverage and
findings ride along as ``modelward:*`` properties so a BOM consumer sees what the scan concluded.
"""

from __future__ import annotations

import io
import json
import secrets
import uuid
from typing import Any, TextIO
from urllib.parse import quote

from ..findings import Decision, FileResult, ScanReport
from .json_report import write_list
from .view import MemoryView, ReportView

MODEL_FORMATS = {
    "pickle",
    "pytorch-zip",
    "pytorch-legacy",
    "torchscript",
    "numpy-npy",
    "numpy-npz",
    "joblib",
    "onnx",
    "safetensors",
    "gguf",
    "keras-h5",
    "keras-zip",
    "tf-savedmodel",
    "tflite",
    "coreml",
    "openvino",
    "msgpack",
}
MODEL_SUFFIXES = (
    ".pt",
    ".pth",
    ".bin",
    ".ckpt",
    ".pkl",
    ".joblib",
    ".onnx",
    ".safetensors",
    ".gguf",
    ".h5",
    ".keras",
    ".pb",
    ".tflite",
    ".mlmodel",
    ".npz",
    ".msgpack",
    ".nemo",
    ".mar",
    ".pt2",
)


def _component_type(fr: FileResult) -> str:
    if (
        fr.format in MODEL_FORMATS
        or any(fmt in MODEL_FORMATS for fmt in fr.formats)
        or fr.path.lower().endswith(MODEL_SUFFIXES)
    ):
        return "machine-learning-model"
    if fr.format in ("json", "yaml", "text", "sentencepiece", "csv"):
        return "data"
    return "file"


def _purl(fr: FileResult) -> str | None:
    """pkg:huggingface/ORG/NAME@REV for Hub files (the purl type the Hub ecosystem uses)."""
    src = fr.source or ""
    if not src.startswith("hf://"):
        return None
    repo, _, rev = src[len("hf://") :].partition("@")
    if repo.count("/") != 1:
        return None
    org, name = repo.split("/")
    purl = f"pkg:huggingface/{quote(org)}/{quote(name)}"
    return purl + (f"@{quote(rev)}" if rev else "")


def _component(fr: FileResult, decision: Decision | None, index: int) -> dict[str, Any]:
    kind = _component_type(fr)
    comp: dict[str, Any] = {
        "type": kind,
        "bom-ref": f"file-{index}",
        "name": fr.path,
        "properties": [
            {"name": "modelward:format", "value": fr.format},
            {"name": "modelward:coverage", "value": fr.coverage.value},
            {"name": "modelward:size", "value": str(fr.size)},
        ],
    }
    if kind == "data":
        comp["data"] = [{"type": "other", "name": fr.path.rsplit("/", 1)[-1]}]
    if decision is not None:
        comp["properties"].append({"name": "modelward:verdict", "value": decision.value})
    if fr.signature:
        comp["properties"].append({"name": "modelward:signature", "value": fr.signature})
    for f in fr.findings:
        comp["properties"].append(
            {"name": "modelward:finding", "value": f"{f.severity.value} {f.rule_id}: {f.message}"[:2000]}
        )
    if fr.sha256:
        comp["hashes"] = [{"alg": "SHA-256", "content": fr.sha256}]
    purl = _purl(fr)
    if purl:
        comp["purl"] = purl
    if fr.source and "://" in fr.source and not fr.source.startswith("file://"):
        comp["externalReferences"] = [{"type": "distribution", "url": fr.source}]
    return comp


def render_cyclonedx(report: ScanReport) -> str:
    buf = io.StringIO()
    write_cyclonedx(MemoryView(report), buf)
    return buf.getvalue()


def write_cyclonedx(view: ReportView, out: TextIO) -> None:
    """The BOM, its components written one at a time."""
    report = view.head
    slot = f"\0{secrets.token_hex(8)}components"
    bom: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": report.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [
                    {"type": "application", "name": "modelward", "version": report.scanner_version}
                ]
            },
            "properties": [
                {"name": "modelward:rules-version", "value": report.rules_version},
                {
                    "name": "modelward:verdict",
                    "value": report.verdict.decision.value if report.verdict else "none",
                },
                *[{"name": "modelward:target", "value": t} for t in report.targets],
            ],
        },
        "components": slot,
    }
    before, after = json.dumps(bom, indent=2).split(json.dumps(slot), 1)
    out.write(before)
    components = (
        json.dumps(_component(fr, decision, i), indent=2) for i, (fr, decision) in enumerate(view.files())
    )
    write_list(out, components, "    ")
    out.write(after + "\n")
