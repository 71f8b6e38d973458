"""TorchScript whose code only calls aten/prim operators is information; anything else still warns or blocks.

Serialized TorchScript resolves ``ops.NS.NAME`` exactly like ``torch.ops.NS.NAME``
(the source importer's environment binds both), so a custom operator spelled
without the ``torch.`` prefix must be seen as one.
"""

from __future__ import annotations

import pytest

from scanner.findings import Decision, Severity
from tests.formats.builders import build_zip, data, torch_members
from tests.harness import findings, scan_on_disk, verdict


def _with_code(extra_code: str) -> bytes:
    ms = torch_members(data("scripted.pt"))
    for m in ms:
        if m.name == "scripted/code/__torch__.py":
            m.data = m.data + extra_code.encode()
    return build_zip(ms)


def test_plain_aten_code_is_information(tmp_path):
    fr = scan_on_disk(
        tmp_path, _with_code("\n  y = torch.ops.aten.add(x, x)\n  ops.prim.RaiseException(y)\n")
    )
    (f,) = findings(fr, "TORCHSCRIPT-CODE")
    assert f.severity is Severity.INFO
    assert verdict(fr) is Decision.ALLOW


@pytest.mark.parametrize(
    "code",
    [
        "\n  return ops.evilns.run(x)\n",  # bare `ops.` spelling of a custom operator
        "\n  return torch.ops.evilns.run(x)\n",
        "\n  c = __torch__.torch.classes.evilns.Runner()\n",
        "\n  x = torch.from_file('/etc/passwd', False, 100)\n",
        "\n  return (ops).evilns.run(x) if False else ops.evilns.run(x)\n",
    ],
)
def test_custom_operators_still_block(tmp_path, code):
    fr = scan_on_disk(tmp_path, _with_code(code))
    assert findings(fr, "TORCHSCRIPT-DANGEROUS-OP"), code
    assert findings(fr, "TORCHSCRIPT-CODE")[0].severity is Severity.MEDIUM
    assert verdict(fr) is Decision.BLOCK


def test_builtin_but_not_aten_namespace_still_warns(tmp_path):
    fr = scan_on_disk(tmp_path, _with_code("\n  y = torch.ops.quantized.add(x, x, 1.0, 0)\n"))
    assert not findings(fr, "TORCHSCRIPT-DANGEROUS-OP")
    assert findings(fr, "TORCHSCRIPT-CODE")[0].severity is Severity.MEDIUM
    assert verdict(fr) is Decision.WARN


def test_attribute_named_ops_is_not_an_operator(tmp_path):
    fr = scan_on_disk(tmp_path, _with_code("\n  y = self.ops.evilns.run(x)\n"))
    assert not findings(fr, "TORCHSCRIPT-DANGEROUS-OP")
