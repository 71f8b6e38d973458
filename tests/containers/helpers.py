"""Shared builders for container tests: raw zip writing (so anomalies can be crafted), payloads, scanning."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from scanner.engine import ScanOptions, scan_targets
from scanner.findings import Decision, FileResult
from scanner.limits import Limits
from scanner.policy.default import decide

DATA = Path(__file__).parent / "data"
CANARY = "/tmp/modelward-canary"
# os.system("touch /tmp/modelward-canary") as a protocol-2 pickle; never loaded, only scanned
EVIL_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x1c\x00\x00\x00touch /tmp/modelward-canaryq\x01\x85q\x02Rq\x03."
# the same call without a leading PROTO (protocol 0 opcodes): invisible to naive magic checks
EVIL_PICKLE_P0 = b"cposix\nsystem\n(Vtouch /tmp/modelward-canary\ntR."
BENIGN_PICKLE = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def scan_bytes(tmp_path: Path, blob: bytes, name: str = "model.pt", limits: Limits | None = None) -> FileResult:
    p = tmp_path / name
    p.write_bytes(blob)
    return scan_file(p, limits)


def scan_file(path: Path, limits: Limits | None = None) -> FileResult:
    opts = ScanOptions(limits=limits) if limits else ScanOptions()
    report = scan_targets([str(path)], opts)
    assert len(report.files) == 1, report.errors
    fr = report.files[0]
    fr.__dict__["verdict"] = decide(report).decision
    return fr


def verdict(fr: FileResult) -> Decision:
    return fr.__dict__["verdict"]


def rules(fr: FileResult) -> set[str]:
    return {f.rule_id for f in fr.findings}


def findings(fr: FileResult, rule: str) -> list:
    return [f for f in fr.findings if f.rule_id == rule]


def blocked_for_payload(fr: FileResult) -> bool:
    """The canary payload was found (a high/critical pickle finding mentioning posix.system)."""
    return any(
        f.rule_id.startswith("PICKLE") and f.severity.rank >= 3 and "system" in (f.message + str(f.evidence))
        for f in fr.findings
    )


@dataclass
class Member:
    name: str
    data: bytes
    method: int = 0
    flags: int = 0
    local_name: str | None = None
    crc: int | None = None
    external_attr: int = 0
    local_method: int | None = None


def build_zip(members: list[Member], prefix: bytes = b"", adjust_offsets: bool = False, trailing: bytes = b"") -> bytes:
    """A zip written byte by byte so tests can make every field lie.

    ``prefix`` is prepended; with ``adjust_offsets`` the recorded offsets include
    it (like ``zip -A``), otherwise they are relative to the zip (like ``cat``).
    """
    out = bytearray()
    central = bytearray()
    base = len(prefix) if adjust_offsets else 0
    for m in members:
        payload = zlib.compress(m.data)[2:-4] if m.method == 8 else m.data
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        name = m.name.encode()
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        lmethod = m.method if m.local_method is None else m.local_method
        off = len(out) + base
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, m.flags, lmethod, 0, 0x21, crc, len(payload),
                           len(m.data), len(lname), 0) + lname + payload
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 20, m.flags, m.method, 0, 0x21, crc,
                               len(payload), len(m.data), len(name), 0, 0, 0, 0, m.external_attr, off) + name
    cd_off = len(out) + base
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), cd_off, 0)
    return prefix + bytes(out) + bytes(central) + eocd + trailing


def torch_members(blob: bytes) -> list[Member]:
    """The members of a real torch zip (read with our own parser's view via zipfile for simplicity)."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [Member(i.filename, zf.read(i)) for i in zf.infolist()]
