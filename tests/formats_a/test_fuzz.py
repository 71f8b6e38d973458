"""Truncations and bit flips of every fixture this group parses: findings or clean, never a crash or a hang."""

from __future__ import annotations

import random
import zlib

import pytest

from scanner.analysis.jinja_template import analyze_template
from scanner.findings import Coverage, Severity

from .helpers import GROUP, fuzz_one

TARGETS = sorted(
    p for p in GROUP.rglob("*")
    if p.is_file() and p.suffix in (".safetensors", ".gguf", ".onnx") and p.stat().st_size < 64_000
)


def mutations(data: bytes, seed: int, n: int = 40):
    rnd = random.Random(seed)
    for cut in sorted({1, 4, 8, 9, 16, 24, 31, len(data) // 2, len(data) - 1} | {rnd.randrange(1, len(data)) for _ in range(6)}):
        if 0 < cut < len(data):
            yield f"cut{cut}", data[:cut]
    for i in range(n):
        b = bytearray(data)
        for _ in range(rnd.choice((1, 1, 2, 8))):
            pos = rnd.randrange(min(len(b), 512)) if rnd.random() < 0.7 else rnd.randrange(len(b))
            b[pos] ^= 1 << rnd.randrange(8)
        yield f"flip{i}", bytes(b)
    for i in range(6):  # lengths and counts set to extremes
        b = bytearray(data)
        pos = rnd.randrange(0, min(len(b) - 8, 256))
        b[pos : pos + 8] = rnd.choice((b"\xff" * 8, b"\x00" * 8, b"\xff\xff\xff\x7f\x00\x00\x00\x00"))
        yield f"wide{i}", bytes(b)


@pytest.mark.parametrize("path", TARGETS, ids=[str(p.relative_to(GROUP)) for p in TARGETS])
def test_mutated_fixtures_fail_closed(path) -> None:
    data = path.read_bytes()
    for label, blob in mutations(data, zlib.crc32(path.name.encode())):
        fr = fuzz_one(blob, path.name)
        if blob != data and fr.findings == [] and fr.coverage is Coverage.FULL:
            # a clean result is acceptable only when the mutation kept the file loadable; it must then be a
            # recognized format, not silently skipped
            assert fr.format not in ("unknown",), label
        if fr.format == "unknown":
            assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH, label


def test_template_fuzz_never_raises() -> None:
    src = (GROUP / "templates" / "qwen_tools_style.jinja").read_text()
    rnd = random.Random(7)
    alphabet = "{}%()[]|'\"_.~+*#-= \nabcns"
    for _ in range(300):
        s = list(src)
        for _ in range(rnd.randrange(1, 6)):
            s[rnd.randrange(len(s))] = rnd.choice(alphabet)
        issues = analyze_template("".join(s))
        assert all(i.rule_id.startswith("TEMPLATE-") for i in issues)
    for depth in (100, 1000, 20000):
        analyze_template("{% if a %}" * depth + "x" + "{% endif %}" * depth)
        analyze_template("{{ " + "[" * depth + "]" * depth + " }}")
