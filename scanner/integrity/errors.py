"""The one exception family integrity code raises for user-facing problems.

Callers (CLI, scanner) catch :class:`IntegrityError` and print ``str(err)``: every message is a
single line that names the file or field at fault, so no traceback is ever needed.
"""

from __future__ import annotations


class IntegrityError(Exception):
    """Integrity work could not be completed (unreadable/garbled input, unsupported key, ...)."""


class VerificationFailed(IntegrityError):
    """The signature was read fine but does not hold: bad signature, wrong key, untrusted chain.

    Kept distinct so a CLI can tell "not trusted" (exit 1) from "could not check" (exit 2).
    """


class FileChangedError(IntegrityError):
    """A file changed (size, mtime, inode) while it was being hashed; its digest means nothing."""
