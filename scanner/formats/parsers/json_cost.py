"""What parsing a JSON document would cost, counted at C speed before anything is parsed.

``json.loads`` builds one Python object per value: ``[{},{},...]`` costs ~25x its text
(a 30 MB file peaked at 850 MB), a real 12 MB tokenizer.json ~200 MB. Every value after
the first in an object or array follows a comma, and every container opens with a
bracket, so commas plus opening brackets bound the number of containers and elements
(brackets and commas inside strings are counted too: an upper bound, never an
underestimate). Callers compare it with ``Limits.max_json_values`` and take their
"too large to parse" path above it.
"""

from __future__ import annotations

from ...io.reader import Reader


def value_bound(data: bytes | bytearray | memoryview) -> int:
    """Upper bound on the containers and container elements ``json.loads(data)`` would create."""
    raw = bytes(data) if isinstance(data, memoryview) else data
    return raw.count(b",") + raw.count(b"{") + raw.count(b"[")


def reader_value_bound(reader: Reader, start: int = 0, length: int | None = None) -> int:
    """``value_bound`` of a Reader's bytes, streamed in 1 MiB chunks (nothing is held)."""
    return sum(value_bound(chunk) for chunk in reader.stream(start, length))
