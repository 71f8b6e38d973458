"""Text bound for a terminal: control and format characters escaped.

File and member names come from the artifact (a repository, a zip, a tar): a name holding ``ESC [2K ESC [1A``
would erase the BLOCK line printed before it, a carriage return would overwrite it, and bidirectional
overrides reorder what is shown. Every such character is written as a visible ``\\xNN`` / ``\\uNNNN`` escape.
"""

from __future__ import annotations


def terminal_safe(text: object, limit: int | None = None) -> str:
    """``text`` with every non-printable character (C0/C1 controls, DEL, bidi and other format characters,
    line and paragraph separators) escaped; printable text, spaces included, unchanged.

    With ``limit``, a longer result keeps its start and end around a visible count of what was left out: a
    member name or message of 64 KiB (a zip allows it) is not printed whole on a person's terminal, once per
    finding. Machine formats (JSON, SARIF) keep the whole text.
    """
    s = str(text)
    if not s.isprintable():
        s = "".join(ch if ch.isprintable() else _escape(ch) for ch in s)
    if limit is not None and len(s) > limit:
        head, tail = limit * 3 // 4, limit // 4
        s = f"{s[:head]}…[{len(s) - head - tail} characters]…{s[len(s) - tail :] if tail else ''}"
    return s


def _escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"
