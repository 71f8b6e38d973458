"""Writes the small real torch/numpy files the torch, numpy and zip tests read (tests/formats/samples/).

Run with the generation venv (torch, numpy): ``/work/genvenv/bin/python tests/formats/make_samples.py``.
The outputs are committed; the tests never import torch.
"""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).parent / "samples"


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("scale", torch.tensor([2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


def _state() -> OrderedDict:
    torch.manual_seed(0)
    return OrderedDict(
        weight=torch.randn(4, 3),
        bias=torch.arange(4, dtype=torch.int64),
        half=torch.ones(2, 2, dtype=torch.float16),
        flag=torch.tensor([True, False]),
    )


def main() -> None:
    OUT.mkdir(exist_ok=True)
    torch.save(_state(), OUT / "state_dict.pt")
    torch.save(_state(), OUT / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(_Tiny()), OUT / "scripted.pt")
    np.save(OUT / "numeric.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(OUT / "fortran.npy", np.asfortranarray(np.ones((2, 3), dtype="<i2")))
    np.save(OUT / "object.npy", np.array([1, "two", {"three": 3}], dtype=object), allow_pickle=True)
    np.save(OUT / "structured.npy", np.zeros(2, dtype=[("a", "<i4"), ("b", "O")]), allow_pickle=True)
    np.savez(OUT / "arrays.npz", a=np.arange(5), b=np.eye(2))
    np.savez_compressed(
        OUT / "compressed.npz", a=np.arange(50, dtype=np.int16), obj=np.array([None, 1], dtype=object)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello\n")
        zf.writestr("config.json", '{"a": 1}', compress_type=zipfile.ZIP_DEFLATED)
    (OUT / "plain.zip").write_bytes(buf.getvalue())
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
