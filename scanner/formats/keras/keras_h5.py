"""HDF5 files (legacy Keras ``.h5`` models, Keras 3 ``model.weights.h5``): config, structure, polyglot bytes.

The model config is read from root attributes through h5py opened read-only on
the scanner's Reader (nothing is loaded as a model, no dataset data is read).
Bytes HDF5 ignores (a user block before the superblock, data past the recorded
end of file) are inspected as nested members because another loader may read
them. Dataset shapes are checked against the bytes actually stored
(CVE-2026-0897) and links to other files are reported.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...io.reader import BytesReader, FileReader, Reader, SliceReader
from ..interface import FormatHandler, InspectContext
from ..sniff_gates import find_superblock
from ..sniff_gates import keras_h5 as _sniff  # split out so sniffing imports no HDF5 inspector (issue #13)

if TYPE_CHECKING:
    from ...analysis.keras_config import KerasAnalysis

log = logging.getLogger(__name__)

MAX_ATTR_BYTES = 64 << 20
MAX_OBJECTS = 200_000
SIZE_SLACK = 1 << 20  # declared-vs-stored differences below this are never reported
ABS_DECLARED_FLOOR = 64 << 20
CONFIG_ATTRS = ("model_config", "training_config")


def _eof_address(reader: Reader, sb: int) -> int | None:
    """Absolute end of the HDF5 data from the superblock (None when the superblock cannot be read)."""
    h = reader.read(sb, 128)
    if len(h) < 16:
        return None
    ver = h[8]
    if ver in (0, 1):
        so = h[13]
        pos = 24 + (4 if ver == 1 else 0)
    elif ver in (2, 3):
        so = h[9]
        pos = 12
    else:
        return None
    if so not in (2, 4, 8) or pos + 4 * so > len(h):
        return None
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[so]
    base = struct.unpack(fmt, h[pos : pos + so])[0]
    eof_field = pos + (2 * so if ver in (0, 1) else 2 * so)
    eof = struct.unpack(fmt, h[eof_field : eof_field + so])[0]
    if base > reader.size or eof > (1 << 62):
        return None
    return base + eof


def _trim_zeros(reader: Reader, start: int, end: int) -> int:
    """End of the last non-zero byte in [start, end): zero padding is not content."""
    pos = end
    while pos > start:
        n = min(1 << 16, pos - start)
        chunk = reader.read(pos - n, n)
        stripped = chunk.rstrip(b"\x00")
        if stripped:
            return pos - n + len(stripped)
        pos -= n
    return start


def _inspect_outside(reader: Reader, ctx: InspectContext, sb: int) -> None:
    if sb > 0:
        end = _trim_zeros(reader, 0, sb)
        if end > 0:
            ctx.add(
                "KERAS-HDF5-USERBLOCK",
                f"{sb}-byte HDF5 user block holds {end} bytes of data; inspected as a member",
                offset=0,
                evidence={"userblock_size": sb, "data_bytes": end},
            )
            ctx.inspect_member(SliceReader(reader, 0, end, f"{ctx.path}!<userblock>"), "<userblock>")
    eof = _eof_address(reader, sb)
    if eof is not None and eof < reader.size:
        end = _trim_zeros(reader, eof, reader.size)
        if end > eof:
            ctx.add(
                "KERAS-HDF5-USERBLOCK",
                f"{reader.size - eof} bytes after the HDF5 end of file; inspected as a member",
                offset=eof,
                evidence={"eof_address": eof, "trailing_bytes": reader.size - eof},
            )
            ctx.inspect_member(SliceReader(reader, eof, end - eof, f"{ctx.path}!<trailing>"), "<trailing>")


def report_keras(ctx: InspectContext, analysis: KerasAnalysis, source: str) -> None:
    """Findings for one analyzed config; embedded payloads (TorchModuleWrapper) become nested members."""
    for i in analysis.issues:
        ev = dict(i.evidence)
        ev["source"] = source
        ctx.add(i.rule_id, f"{source}: {i.message}"[:600], severity=i.severity, evidence=ev)
    for label, blob in analysis.blobs:
        ctx.inspect_member(BytesReader(blob, f"{ctx.path}!{label}"), label, charge=True)
    if analysis.truncated:
        ctx.limit_hit(
            "keras_config", f"{source}: {analysis.truncated}; the rest of the config was not analyzed"
        )


def analyze_config_text(ctx: InspectContext, raw: bytes | str, source: str) -> Any:
    """Parse and analyze one Keras JSON config; returns the parsed object (None on error, reported)."""
    from ...analysis.keras_config import analyze_keras_config, parse_config_json

    obj, err = parse_config_json(raw, ctx.limits.max_json_bytes)
    if err:
        ctx.add("KERAS-CONFIG-INVALID", f"{source}: {err}", evidence={"source": source})
        ctx.partial(f"{source} not analyzed")
        return None
    report_keras(ctx, analyze_keras_config(obj, max_nodes=ctx.limits.max_nodes), source)
    return obj


# ---------------------------------------------------------------------------- the h5py probe (child process)
#
# The HDF5 C library can hang or crash on hostile files (seen while fuzzing: an
# attribute read that never returns). Everything that touches h5py therefore
# runs in a child process with a CPU, memory and wall-clock limit; the parent
# only judges the JSON facts the child reports.


def _probe(path: str, max_attr: int, max_objects: int) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {"attrs": {}, "datasets": [], "external_links": [], "errors": [], "stopped": None}
    with h5py.File(path, "r") as f:
        for name in (*CONFIG_ATTRS, "keras_version"):
            try:
                if name not in f.attrs:
                    continue
                size = f.attrs.get_id(name).get_storage_size()
                if size > max_attr:
                    out["attrs"][name] = {"oversize": size}
                    continue
                out["attrs"][name] = {"text": _as_text(f.attrs[name])}
            except Exception as exc:
                out["errors"].append(f"attribute {name}: {type(exc).__name__}: {exc}"[:300])
        count = 0

        def visit(name: str, link: Any) -> Any:
            nonlocal count
            count += 1
            if count > max_objects:
                out["stopped"] = f"more than {max_objects} HDF5 objects"
                return True
            if isinstance(link, h5py.ExternalLink):
                out["external_links"].append([name[:300], str(link.filename)[:300], str(link.path)[:300]])
            elif isinstance(link, h5py.HardLink):
                try:
                    obj = f.get(name)
                    if isinstance(obj, h5py.Dataset):
                        out["datasets"].append(_dataset_facts(name, obj))
                except Exception as exc:
                    out["errors"].append(f"object {name[:200]}: {type(exc).__name__}: {exc}"[:300])
            return None

        f.visititems_links(visit)
    return out


def _as_text(v: Any) -> str | None:
    if hasattr(v, "shape") and getattr(v, "shape", ()) not in ((), (1,)):
        return None
    if getattr(v, "shape", ()) == (1,):
        v = v[0]
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "tobytes") and not isinstance(v, str):
        try:
            return bytes(v).decode("utf-8", "replace")
        except (TypeError, ValueError):
            return str(v)
    return str(v)


def _dataset_facts(name: str, ds: Any) -> dict[str, Any]:
    import h5py

    shape = ds.shape
    itemsize = ds.dtype.itemsize or 1
    dcpl = ds.id.get_create_plist()
    ext = dcpl.get_external_count()
    return {
        "name": name[:300],
        "shape": list(shape) if shape is not None else None,
        "dtype": str(ds.dtype)[:60],
        "itemsize": itemsize,
        "stored": ds.id.get_storage_size(),
        "contiguous": dcpl.get_layout() == h5py.h5d.CONTIGUOUS,
        "virtual": dcpl.get_layout() == h5py.h5d.VIRTUAL,
        "filters": dcpl.get_nfilters(),
        "external": [dcpl.get_external(i)[0].decode("utf-8", "replace")[:300] for i in range(min(ext, 5))],
    }


def _child_main(argv: list[str]) -> None:
    import json
    import resource

    path, max_attr, max_objects, mem = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    for limit, value in ((resource.RLIMIT_AS, mem), (resource.RLIMIT_CPU, int(PROBE_SECONDS) + 5)):
        try:
            resource.setrlimit(limit, (value, value))
        except (ValueError, OSError):
            pass
    try:
        result = _probe(path, max_attr, max_objects)
    except Exception as exc:  # reported to the parent as a fact, not a crash
        result = {"open_error": f"{type(exc).__name__}: {exc}"[:400]}
    sys.stdout.write(json.dumps(result))


PROBE_SECONDS = 30.0
PROBE_MEMORY = 4 << 30


def run_probe(reader: Reader, ctx: InspectContext) -> dict[str, Any] | None:
    """Facts from h5py in a child process; None (reported) when it hangs, crashes or cannot start."""
    import json
    import subprocess
    import tempfile

    max_attr = min(MAX_ATTR_BYTES, ctx.limits.max_json_bytes)
    max_objects = min(MAX_OBJECTS, ctx.limits.max_nodes)
    timeout = max(1.0, min(PROBE_SECONDS, ctx.state.deadline - time.monotonic()))
    tmp = None
    path = getattr(reader, "path", None) if isinstance(reader, FileReader) else None
    try:
        if path is None:
            tmp = tempfile.NamedTemporaryFile(prefix="modelward-h5-", suffix=".h5", delete=False)  # noqa: SIM115
            with tmp:
                for chunk in reader.stream():
                    tmp.write(chunk)
            path = tmp.name
        cmd = [
            sys.executable,
            "-c",
            "import sys; from scanner.formats.keras.keras_h5 import _child_main; _child_main(sys.argv[1:])",
            path,
            str(max_attr),
            str(max_objects),
            str(PROBE_MEMORY),
        ]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
        root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
        env["HDF5_USE_FILE_LOCKING"] = "FALSE"
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env, check=False)  # noqa: S603
        except subprocess.TimeoutExpired:
            ctx.add(
                "KERAS-HDF5-UNREADABLE",
                f"the HDF5 library did not finish reading the file within {timeout:.0f}s (hostile structure)",
                evidence={"timeout_seconds": round(timeout, 1)},
            )
            ctx.partial("HDF5 probe timed out")
            return None
        try:
            facts = json.loads(proc.stdout or b"null")
        except ValueError:
            facts = None
        if not facts:
            _probe_failed(ctx, proc)
            return None
        return facts
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp.name)
            except OSError:
                pass


def _probe_failed(ctx: InspectContext, proc: Any) -> None:
    err = (proc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
    ctx.add(
        "KERAS-HDF5-UNREADABLE",
        f"the HDF5 library crashed on this file (exit {proc.returncode})",
        evidence={"exit_code": proc.returncode, "stderr": err[-1][:300] if err else ""},
    )
    ctx.partial("HDF5 probe crashed")
    return None


def _judge_datasets(ctx: InspectContext, facts: dict[str, Any], file_size: int) -> None:
    for ds in facts.get("datasets", []):
        name = ds["name"]
        if ds["external"]:
            ctx.add(
                "KERAS-HDF5-EXTERNAL",
                f"dataset {name!r} stores its data in external file(s)",
                evidence={"dataset": name, "external_files": ds["external"]},
            )
        if ds["virtual"]:
            ctx.add(
                "KERAS-HDF5-EXTERNAL",
                f"dataset {name!r} is a virtual dataset mapping other files",
                evidence={"dataset": name},
            )
        if ds["shape"] is None:
            continue
        declared = math.prod(ds["shape"]) * ds["itemsize"]
        stored = ds["stored"]
        huge = declared > max(file_size * ctx.limits.max_ratio, ABS_DECLARED_FLOOR)
        unbacked = (
            ds["contiguous"] and not ds["filters"] and not ds["external"] and declared - stored > SIZE_SLACK
        )
        if huge or unbacked:
            ctx.add(
                "KERAS-DATASET-SIZE",
                f"dataset {name!r} declares {declared} bytes but the file stores {stored}: loading allocates the declared size",
                evidence={
                    "dataset": name,
                    "shape": ds["shape"][:16],
                    "dtype": ds["dtype"],
                    "declared_bytes": declared,
                    "stored_bytes": stored,
                },
            )
    for name, fname, target in facts.get("external_links", []):
        ctx.add(
            "KERAS-HDF5-EXTERNAL",
            f"external link {name!r} -> {fname}:{target}",
            evidence={"link": name, "file": fname, "path": target},
        )


def inspect_hdf5(reader: Reader, ctx: InspectContext) -> None:
    sb = find_superblock(reader.head(4096), reader)
    if sb is None:
        ctx.add("KERAS-HDF5-UNREADABLE", "no HDF5 signature found")
        ctx.unanalyzable("not HDF5")
        return
    _inspect_outside(reader, ctx, sb)
    facts = run_probe(reader, ctx)
    if facts is None:
        return
    if "open_error" in facts:
        ctx.add("KERAS-HDF5-UNREADABLE", f"HDF5 library could not open the file: {facts['open_error']}"[:400])
        ctx.unanalyzable("HDF5 structure unreadable")
        return
    attrs = facts.get("attrs", {})
    version = (attrs.get("keras_version") or {}).get("text")
    for name in CONFIG_ATTRS:
        a = attrs.get(name)
        if not a:
            continue
        if "oversize" in a:
            ctx.limit_hit("max_json_bytes", f"HDF5 attribute {name!r} of {a['oversize']} bytes not read")
        elif a.get("text") is not None:
            analyze_config_text(
                ctx,
                a["text"],
                f"HDF5 attribute {name}" + (f" (keras {str(version)[:40]})" if version else ""),
            )
    _judge_datasets(ctx, facts, reader.size)
    if facts.get("stopped"):
        ctx.limit_hit("hdf5_objects", f"HDF5 walk stopped: {facts['stopped']}")
    if facts.get("errors"):
        ctx.add(
            "KERAS-HDF5-UNREADABLE",
            f"parts of the HDF5 structure could not be read: {facts['errors'][0]}"[:400],
            evidence={"errors": facts["errors"][:5]},
        )
        ctx.partial("HDF5 structure partly unreadable")


KERAS_H5 = FormatHandler(
    "keras-h5", _sniff, inspect_hdf5, family="keras", claims=(".h5", ".hdf5", ".keras"), can_carry_code=True
)
