"""Red team 6: NEWOBJ with arguments on a data-only type tag is a constructor call.

The torch storage and tensor type tags (``torch.FloatStorage``, ``torch.ByteTensor``, ``torch.cuda.*``) are
allowlisted data-only: persistent ids name them, nothing may call them. NEWOBJ was exempt as "``cls.__new__``
only", but their ``__new__`` is the legacy constructor: with torch 2.13 ``pickle.loads`` of
``NEWOBJ(torch.FloatStorage, (1_000_000_000,))`` returned a 4 GB storage and ``torch.ByteTensor`` a 1 GB tensor
(``torch.cuda.*`` would allocate on the GPU). NEWOBJ with no argument stays allowed. Nothing is unpickled here.
"""

from __future__ import annotations

import pytest

from scanner.findings import Severity

from .assembler import NEWOBJ, PROTO, STOP, G, scan, worst

BIG = b"\x8a\x05\x00\x00\x00\x00\x04\x85"  # (2**34,)


@pytest.mark.parametrize(
    "cls",
    [
        ("torch", "FloatStorage"),
        ("torch", "ByteTensor"),
        ("torch.cuda", "FloatTensor"),
        ("torch", "HalfStorage"),
    ],
)
def test_newobj_with_a_size_on_a_type_tag_blocks(cls: tuple[str, str]) -> None:
    r = scan(PROTO(2) + G(*cls) + BIG + NEWOBJ + STOP)
    assert worst(r) is not None and worst(r) >= Severity.HIGH
    assert "PICKLE-CONSTRAINT-VIOLATION" in {f.rule_id for f in r.findings}


def test_newobj_without_arguments_stays_allowed() -> None:
    r = scan(PROTO(2) + G("torch", "FloatStorage") + b")" + NEWOBJ + STOP)
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]


def test_newobj_only_class_stays_allowed() -> None:
    # newobj-only classes keep their rule: joblib writes Memory as NEWOBJ ()
    r = scan(PROTO(2) + G("joblib.memory", "Memory") + b")" + NEWOBJ + STOP)
    assert worst(r) is None, [(f.rule_id, f.message) for f in r.findings]
