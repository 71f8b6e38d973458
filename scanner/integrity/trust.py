"""Who may have signed, as plain data: cheap to import (no cryptography), so every command can carry it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.integrity.errors import IntegrityError


@dataclass(frozen=True)
class KeylessTrust:
    """Who may have signed: an OIDC identity (exact or regex) at an issuer, under a trust root."""

    issuer: str
    identity: str | None = None
    identity_regex: str | None = None
    trust_config: Path | None = None

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.identity_regex is None):
            raise IntegrityError("Sigstore verification needs exactly one of --identity or --identity-regex")
        if not self.issuer:
            raise IntegrityError("Sigstore verification needs --issuer (the OIDC issuer URL)")
        if self.identity_regex is not None:
            try:
                re.compile(self.identity_regex)
            except re.error as exc:
                raise IntegrityError(f"--identity-regex: {exc}") from None

    def describe(self) -> str:
        who = self.identity if self.identity is not None else f"/{self.identity_regex}/"
        return f"{who} at {self.issuer}"


def keyless_trust_entries(entries: list[dict[str, Any]]) -> list[KeylessTrust]:
    """Policy ``signatures.trust[].identities`` entries (schema-validated) as KeylessTrust values."""
    return [
        KeylessTrust(
            issuer=e["issuer"],
            identity=e.get("identity"),
            identity_regex=e.get("identity_regex"),
            trust_config=Path(e["trust_config"]) if e.get("trust_config") else None,
        )
        for e in entries
    ]
