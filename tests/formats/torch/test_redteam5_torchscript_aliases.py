"""Red-team round 5: TorchScript operators reached without writing `torch.NAME(`.

Serialized TorchScript binds builtin functions and module values to names and resolves
``getattr(MODULE, "NAME")`` (all verified to run ``torch.from_file(path, True, n)`` from a
``__setstate__`` under ``torch.jit.load``, torch 2.13): ``f = torch.from_file; f(...)``,
``getattr(torch, "from_file")(...)``, ``T = torch; T.from_file(...)``, ``a = ops.aten; a.from_file(...)``,
``getattr(ops.aten, "from_file")(...)``. The code analysis only saw call-shaped spellings and called
them plain aten code (INFO, allowed).
"""

from __future__ import annotations

import pickle
import zipfile

import pytest

from scanner.findings import Decision
from tests.harness import make_zip, rule_ids, scan_on_disk, verdict

BODY = (
    "class M(Module):\n"
    "  def __setstate__(self: __torch__.M, state: List[Tensor]) -> NoneType:\n"
    "    {}\n"
    "    self.w = state[0] + t[0:2] * 0.0\n"
    "    return None\n"
)


def _archive(code: str) -> bytes:
    return make_zip(
        {
            "m/data.pkl": pickle.dumps({}, protocol=2),
            "m/constants.pkl": pickle.dumps((), protocol=2),
            "m/version": b"3\n",
            "m/code/__torch__.py": BODY.format(code).encode(),
        },
        method=zipfile.ZIP_STORED,
    )


@pytest.mark.parametrize(
    "code",
    [
        'f = torch.from_file\n    t = f("/tmp/x", True, 16)',
        'f = torch .autograd. from_file\n    t = f("/tmp/x", True, 16)',
        'g = ops.aten.from_file\n    t = g("/tmp/x", True, 16)',
        't = getattr(torch, "from_file")("/tmp/x", True, 16)',
        'T = torch\n    t = T.from_file("/tmp/x", True, 16)',
        'a = ops.aten\n    t = a.from_file("/tmp/x", True, 16)',
        'a = torch.ops.aten\n    t = a.from_file("/tmp/x", True, 16)',
        't = getattr(ops.aten, "from_file")("/tmp/x", True, 16)',
        "c = __torch__.torch.classes.evilns\n    t = c.Runner()",
        "T = (torch)\n    t = T.from_file('/tmp/x', True, 16)",
    ],
)
def test_operator_bound_to_a_name_blocks(tmp_path, code: str) -> None:
    fr = scan_on_disk(tmp_path, _archive(code))
    assert "TORCHSCRIPT-DANGEROUS-OP" in rule_ids(fr), code
    assert verdict(fr) is Decision.BLOCK


@pytest.mark.parametrize(
    "code",
    [
        "t = torch.add(state[0], state[0])",
        't = getattr(self, "0").forward(state[0])',
        'ops.prim.RaiseException("torch = not a module here", "builtins.RuntimeError")\n    t = state[0]',
        "t = torch.zeros([2], dtype=6)\n    u = t == torch.ones([2])",
    ],
)
def test_plain_references_stay_information(tmp_path, code: str) -> None:
    fr = scan_on_disk(tmp_path, _archive(code))
    assert "TORCHSCRIPT-DANGEROUS-OP" not in rule_ids(fr), code
    assert verdict(fr) is Decision.ALLOW
