"""TorchScript archives: code is reported, risky operators are flagged, pickles analyzed."""

from __future__ import annotations

from scanner.findings import Decision
from tests.formats.builders import Member, build_zip, data, torch_members
from tests.harness import EVIL_PICKLE, blocked_for_payload, findings, rule_ids, scan_on_disk, verdict


def test_real_torchscript(tmp_path):
    fr = scan_on_disk(tmp_path, data("scripted.pt"))
    assert fr.format == "torchscript"
    (f,) = findings(fr, "TORCHSCRIPT-CODE")
    assert "torch.mul" in f.evidence["calls"]
    assert not findings(fr, "TORCHSCRIPT-DANGEROUS-OP")
    assert not [r for r in rule_ids(fr) if r.startswith(("ZIP-", "ARCHIVE-", "TORCH-", "FORMAT-"))]
    assert any(m.endswith(".debug_pkl") for m in fr.members)


def _with_code(extra_code: str, method: int = 8) -> bytes:
    ms = torch_members(data("scripted.pt"))
    for m in ms:
        if m.name == "scripted/code/__torch__.py":
            m.data = m.data + extra_code.encode()
            m.method = method
    return build_zip(ms)


def test_from_file_and_custom_ops_are_dangerous(tmp_path):
    code = (
        "\ndef leak(self: __torch__._Tiny) -> Tensor:\n"
        '  x = torch.from_file("/etc/passwd", False, 100)\n'
        "  return torch.ops.evilns.run(x)\n"
    )
    fr = scan_on_disk(tmp_path, _with_code(code))
    calls = {f.evidence["call"] for f in findings(fr, "TORCHSCRIPT-DANGEROUS-OP")}
    assert {"torch.from_file", "torch.ops.evilns.run"} <= calls
    assert verdict(fr) is Decision.BLOCK


def test_aten_ops_are_not_dangerous(tmp_path):
    fr = scan_on_disk(tmp_path, _with_code("\n  y = torch.ops.aten.add(x, x)\n"))
    assert not findings(fr, "TORCHSCRIPT-DANGEROUS-OP")
    assert "torch.ops.aten.add" in findings(fr, "TORCHSCRIPT-CODE")[0].evidence["calls"]


def test_payload_in_debug_pkl(tmp_path):
    ms = torch_members(data("scripted.pt"))
    for m in ms:
        if m.name.endswith("linear.py.debug_pkl"):
            m.data = EVIL_PICKLE
    fr = scan_on_disk(tmp_path, build_zip(ms))
    assert blocked_for_payload(fr)


def test_payload_in_constants_pkl(tmp_path):
    ms = torch_members(data("scripted.pt"))
    for m in ms:
        if m.name.endswith("constants.pkl"):
            m.data = EVIL_PICKLE
    fr = scan_on_disk(tmp_path, build_zip(ms + [Member("scripted/extra/notes", b"hello\n")]))
    assert fr.format == "torchscript"
    assert blocked_for_payload(fr)
    assert not findings(fr, "TORCH-UNEXPECTED-MEMBER")  # extra/ files are a TorchScript feature
