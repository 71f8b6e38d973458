"""Content a sniffer ahead of the pickle one claims is also analysed as a pickle when a pickle loader would import
code from it (``formats/detect.py``): the class behind the GGUF, ONNX, TFLite and Core ML polyglots, and tars."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile

import pytest

from scanner.findings import Severity
from tests.harness import REPO, inspect_bytes, rule_ids

# pickle.loads of a tar whose first member is named so runs os.system (checked with CPython 3.11: the marker
# file was created); tarfile lists the member normally
PAYLOAD = b"cposix\nsystem\n(S'touch /tmp/x'\ntR."


def _tar(first_name: bytes, fmt: int = tarfile.GNU_FORMAT, first_data: bytes = b"weights") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in ((first_name.decode("latin-1"), first_data), ("config.json", b"{}")):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("name", ["model.tar", "model.pkl", "model.joblib", "pytorch_model.bin"])
@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_a_tar_whose_first_member_name_is_a_pickle_is_judged_as_one(name: str, fmt: int) -> None:
    fr = inspect_bytes(_tar(PAYLOAD, fmt), name)
    assert fr.format == "tar-archive"
    assert {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= rule_ids(fr)
    assert fr.max_severity is Severity.CRITICAL


def test_the_view_applies_to_members_too() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/model.tar", _tar(PAYLOAD))
    fr = inspect_bytes(buf.getvalue(), "bundle.zip")
    assert {"FORMAT-PICKLE-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= rule_ids(fr)


@pytest.mark.parametrize(
    "first",
    [
        b"N.",  # pickle.load returns None: nothing imported
        b"(lp0\nI1\naI2\na.",  # a list of literals
        b"weights/layer0.bin",  # an ordinary name
    ],
)
def test_a_tar_whose_first_name_imports_nothing_is_only_a_tar(first: bytes) -> None:
    fr = inspect_bytes(_tar(first), "model.tar")
    assert fr.format == "tar-archive" and "FORMAT-PICKLE-POLYGLOT" not in rule_ids(fr)


@pytest.mark.parametrize(
    "first", [b"config.json", b"checkpoint/index.json", b"inst.py", b"pytorch_model.bin"]
)
def test_a_first_name_read_as_a_global_line_resolves_nothing(first: bytes) -> None:
    """'c' (GLOBAL), 'i' (INST), 'p' (PUT) read the tar header and the member's text as lines: the module
    "onfig.json<NUL>...0000644<NUL>...ustar..." is no importable name, so no loader imports anything."""
    data = b'{\n  "architectures": ["BertModel"],\n  "hidden_size": 8\n}\n'
    fr = inspect_bytes(_tar(first, first_data=data), "model.tar")
    assert fr.format == "tar-archive" and "FORMAT-PICKLE-POLYGLOT" not in rule_ids(fr), rule_ids(fr)


def test_a_zip_is_never_a_pickle_view() -> None:
    """Every zip starts with "PK": PERSID first, which raises in every loader reading from offset 0."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("n" * 60_000, b"\0" * 100_000)  # no newline for the PERSID line to end at
    fr = inspect_bytes(buf.getvalue(), "weights.zip")
    assert "FORMAT-PICKLE-POLYGLOT" not in rule_ids(fr) and "LIMIT-EXCEEDED" not in rule_ids(fr)


def _safetensors(header_len: int) -> bytes:
    meta = {"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    text = json.dumps(meta).encode()
    text += b" " * (header_len - len(text))
    return struct.pack("<Q", header_len) + text + b"\x00" * 4


@pytest.mark.parametrize("header_len", [0x0280, 0x0380, 0x0480, 0x0580, 0x2E4E])
def test_a_header_that_starts_like_a_pickle_protocol_is_not_a_polyglot(header_len: int) -> None:
    """80 02 (PROTO 2) or 4E 2E ("N.") as a safetensors header length: a pickle loader stops without importing."""
    fr = inspect_bytes(_safetensors(header_len), "model.safetensors")
    assert fr.format == "safetensors" and "FORMAT-PICKLE-POLYGLOT" not in rule_ids(fr), rule_ids(fr)


def test_no_benign_fixture_reads_as_a_pickle_polyglot() -> None:
    real = [REPO / "tests" / "formats" / d / "samples" for d in ("keras", "tensorflow", ".")]
    benign = [
        p for p in (REPO / "fixtures").rglob("*") if p.is_file() and "benign" in str(p.relative_to(REPO))
    ]
    benign += [p for d in real if d.is_dir() for p in d.rglob("*") if p.is_file()]
    assert len(benign) > 60
    for path in benign:
        fr = inspect_bytes(path.read_bytes(), path.name)
        assert "FORMAT-PICKLE-POLYGLOT" not in rule_ids(fr), path


def test_a_number_line_no_loader_parses_is_not_followed(tmp_path) -> None:  # noqa: ANN001
    """Header length 0x4C ("L", LONG) then zero-filled tensors: one text line of megabytes, which int() refuses
    (4,300 digits at most), so the view stops after 64 KiB without reading the file."""
    from tests.harness import scan_file

    n = 100 << 20
    meta = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    meta += b" " * (0x4C - len(meta))
    path = tmp_path / "sparse.safetensors"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(meta)) + meta)
        fh.truncate(8 + len(meta) + n)
    fr = scan_file(path)
    assert fr.format == "safetensors" and not fr.findings, rule_ids(fr)
    assert fr.bytes_read < 300_000, fr.bytes_read


def test_a_long_text_line_that_does_parse_still_leads_to_the_payload() -> None:
    """UNICODE ("V") takes a line of any length: pickle.loads of this tar reads 70 KB of member data as one
    string, then runs the payload after the newline (checked with CPython 3.11)."""
    raw = _tar(b"Vmodel", first_data=b"a" * 70_000 + b"\n0" + PAYLOAD)
    fr = inspect_bytes(raw, "model.pkl")
    assert "FORMAT-PICKLE-POLYGLOT" in rule_ids(fr)
    assert fr.max_severity is not None and fr.max_severity.rank >= Severity.HIGH.rank
