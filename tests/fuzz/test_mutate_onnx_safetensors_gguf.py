"""Truncations and bit flips of every fixture this group parses: findings or clean, never a crash or a hang."""

from __future__ import annotations

import random
import zlib

import pytest

from scanner.analysis.jinja_template import analyze_template
from scanner.findings import Coverage, Severity
from tests.harness import FIXTURES, fuzz_one, header_mutations

pytestmark = pytest.mark.fuzz

TARGETS = sorted(
    p
    for family in ("gguf", "onnx", "safetensors")
    for p in (FIXTURES / family).rglob("*")
    if p.is_file() and p.suffix in (".safetensors", ".gguf", ".onnx") and p.stat().st_size < 64_000
)


@pytest.mark.parametrize("path", TARGETS, ids=[str(p.relative_to(FIXTURES)) for p in TARGETS])
def test_mutated_fixtures_fail_closed(path) -> None:
    data = path.read_bytes()
    for label, blob in header_mutations(data, zlib.crc32(path.name.encode())):
        fr = fuzz_one(blob, path.name)
        if blob != data and fr.findings == [] and fr.coverage is Coverage.FULL:
            # a clean result is acceptable only when the mutation kept the file loadable; it must then be a
            # recognized format, not silently skipped
            assert fr.format not in ("unknown",), label
        if fr.format == "unknown":
            assert fr.max_severity is not None and fr.max_severity >= Severity.HIGH, label


def test_template_fuzz_never_raises() -> None:
    src = (FIXTURES / "chat-templates" / "qwen_tools_style.jinja").read_text()
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
