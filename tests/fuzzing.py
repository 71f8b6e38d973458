"""Mutants of real files for parser fuzz tests: truncations and bit flips, reproducible from a seed."""

from __future__ import annotations

import random


def mutants(data: bytes, n: int, seed: int, *, head: int | None = None) -> list[bytes]:
    """About n/2 truncations, then bit-flipped copies (1–8 flips each).

    With ``head``, 70 % of flips land in the first ``head`` bytes, where the headers and lengths are.
    """
    rng = random.Random(seed)
    out = [data[:cut] for cut in sorted({rng.randrange(1, len(data)) for _ in range(n // 2)})]
    for _ in range(n - len(out)):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            near = head is not None and rng.random() < 0.7
            pos = rng.randrange(min(len(b), head)) if near else rng.randrange(len(b))  # type: ignore[type-var]
            b[pos] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out
