"""Red-team: TorchScript operator calls spelled with blanks, comments or continuations around the dots.

The TorchScript lexer skips whitespace, comments and backslash-newlines between tokens, so
``torch . from_file(...)`` and ``(torch.  # note`` / ``from_file(...))`` are the same file-reading call
as ``torch.from_file(...)``. The call regexes wanted the dotted name written solid and let them pass.
"""

from __future__ import annotations

import pickle
import time
import zipfile

import pytest

from scanner.formats.torch.torchscript import _calls
from tests.harness import inspect_bytes, make_zip, rule_ids

BODY = "class M(Module):\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n    {}\n    return x\n"


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
    "call",
    [
        'y = torch . from_file("/etc/passwd", False, 10)',
        'y = (torch.  # note\n      from_file("/etc/passwd", False, 10))',
        'y = torch.\\\n from_file("/etc/passwd", False, 10)',
        'y = ops . aten . from_file("/etc/passwd", False, 10)',
        'y = torch.ops .aten.from_file("/etc/passwd", False, 10)',
        # a string with a continuation inside, then a '#' the stripper might take for a comment
        's = "a\\\n#"; y = torch.from_file("/etc/passwd", False, 10)',
    ],
)
def test_spaced_file_access_is_dangerous(call: str) -> None:
    fr = inspect_bytes(_archive(call), "m.pt")
    assert "TORCHSCRIPT-DANGEROUS-OP" in rule_ids(fr)


def test_plain_arithmetic_stays_info() -> None:
    fr = inspect_bytes(_archive("y = torch.add(x , x)  # torch . relu"), "m.pt")
    assert "TORCHSCRIPT-DANGEROUS-OP" not in rule_ids(fr)


def test_long_blank_runs_stay_linear() -> None:
    started = time.monotonic()
    _calls("\\\n" * 2_000_000)
    _calls(" " * 4_000_000 + "x")
    assert time.monotonic() - started < 10
