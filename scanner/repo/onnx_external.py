"""ONNX external data against the files of the snapshot.

The ONNX inspector checks each location's syntax and summarizes, per file,
how far into it the tensors reach (finding ONNX-EXTERNAL-DATA). Here those
files are looked up among the snapshot's artifacts (remote snapshots list
them without reading them), their sizes compared with the ranges, links that
leave the model folder reported, and the raw weight files themselves -- which
no sniffer recognizes -- identified instead of failing as unknown formats.
"""

from __future__ import annotations

import os
from typing import Any

from ..findings import Coverage, FileResult, Severity
from ..limits import Limits
from ..rules import RuleDB
from ..sources.base import Snapshot
from .results import with_rule
from .safetensors_index import find_sibling, local_file_path, resolve_relative

SUMMARY_RULE = "ONNX-EXTERNAL-DATA"


def _within(child: str, root: str) -> bool:
    return child == root or child.startswith(root.rstrip(os.sep) + os.sep)


def _hf_blobs(model_dir_unresolved: str) -> str | None:
    """In a Hugging Face cache snapshot, files are links into the repo's blobs/ folder: that is inside too."""
    parts = os.path.abspath(model_dir_unresolved).split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "snapshots" and parts[i - 1].startswith(("models--", "datasets--", "spaces--")):
            return os.path.realpath(os.sep.join(parts[:i] + ["blobs"]))
    return None


def _link_escape(snapshot: Snapshot, model_path: str, data_path: str) -> str | None:
    data_unres = local_file_path(snapshot, data_path)
    model_unres = local_file_path(snapshot, model_path)
    if data_unres is None or model_unres is None or not os.path.lexists(data_unres):
        return None
    real = os.path.realpath(data_unres)
    model_dir = os.path.dirname(model_unres)
    allowed = [os.path.realpath(model_dir)]
    blobs = _hf_blobs(model_dir)
    if blobs:
        allowed.append(blobs)
    if any(_within(real, a) for a in allowed):
        return None
    return real


# what the msgpack inspector says of bytes that are not msgpack: a tensor's raw bytes may happen to start like a
# msgpack map or array (the sniffer claims name-keyed maps and whole-file parses), and the ONNX loader reads them as data
_MSGPACK_MISREAD = {"MSGPACK-INVALID", "MSGPACK-TRAILING-DATA", "FORMAT-UNKNOWN", "FORMAT-NAME-MISMATCH"}


def _vouch(fr: FileResult, model_path: str, rules: RuleDB) -> None:
    """A weight file that matched no format is raw tensor bytes the ONNX loader reads as data; say so.

    So is one the msgpack sniffer claimed when all it found is that the bytes are not well-formed msgpack:
    anything else found in it (a pickle after the "document", a limit) stands.
    """
    if fr.format == "msgpack":
        if not fr.findings or any(f.rule_id not in _MSGPACK_MISREAD for f in fr.findings):
            return
        misread_notes = {"msgpack malformed", "unknown format", *(f"{m}: unknown format" for m in fr.members)}
        fr.findings = []
        fr.coverage_notes = [n for n in fr.coverage_notes if n not in misread_notes]
    elif fr.format == "unknown":
        fr.findings = [f for f in fr.findings if f.rule_id != "FORMAT-UNKNOWN"]
        fr.coverage_notes = [n for n in fr.coverage_notes if n != "unknown format"]
    else:
        return
    if not fr.coverage_notes:
        fr.coverage = Coverage.FULL
    fr.format = "onnx-external-data"
    fr.findings.append(
        rules.finding(SUMMARY_RULE, f"raw tensor data read by {model_path} (never parsed as code)", fr.path)
    )


def check_external_data(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, limits: Limits
) -> list[FileResult]:
    for fr in with_rule(results, SUMMARY_RULE):  # every value that may carry one, not every result
        for f in list(fr.findings):
            if (
                f.rule_id != SUMMARY_RULE
                or f.path != fr.path
                or not isinstance(f.evidence.get("files"), list)
            ):
                continue
            for rec in f.evidence["files"]:
                _check_file(snapshot, results, rules, fr, rec)
    return []


def _check_file(
    snapshot: Snapshot, results: dict[str, FileResult], rules: RuleDB, fr: FileResult, rec: dict[str, Any]
) -> None:
    loc = str(rec.get("location", ""))
    path = resolve_relative(fr.path, loc)

    def add(rule: str, message: str, severity: Severity | None = None, **ev: Any) -> None:
        fr.findings.append(
            rules.finding(rule, message, fr.path, severity=severity, evidence={"location": loc[:300], **ev})
        )

    sib = find_sibling(snapshot, path)
    if sib is None:
        add("ONNX-EXTERNAL-DATA-MISSING", f"external data file {loc[:200]!r} is not in the scanned set")
        return
    escaped = _link_escape(snapshot, fr.path, path)
    if escaped:
        add(
            "ONNX-EXTERNAL-DATA-PATH",
            f"external data file {loc[:200]!r} is a link to {escaped[:200]}, outside the model folder",
            target=escaped[:300],
        )
    end = rec.get("max_end")
    if isinstance(end, int) and end > sib.size:
        add(
            "ONNX-EXTERNAL-DATA-RANGE",
            f"tensors read up to byte {end} of {loc[:200]!r}, which has {sib.size} bytes",
            max_end=end,
            size=sib.size,
        )
    data_fr = results.get(path)
    if data_fr is not None and data_fr is not fr:
        _vouch(data_fr, fr.path, rules)


REPO_CHECKS = [check_external_data]
