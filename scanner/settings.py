"""How to scan, as plain typed settings: what every entry point hands to the pipeline.

Nothing here imports the engine, the policy or the formats, so a command can build its settings without
paying for them (start-up, issue #13). A policy's per-source parts arrive compiled (``SourceScopes``, built by
``scanner.policy.scan_settings``) and are applied with ``ScanOptions.for_source``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .cache import ResultCache
    from .findings import FileResult
    from .integrity.trust import KeylessTrust
    from .selection import Selection


@dataclass(frozen=True)
class SourceScope:
    """What a policy adds to the scan of the sources matching ``sources`` (fnmatch patterns)."""

    sources: tuple[str, ...]
    extra_allowed_globals: tuple[str, ...] = ()  # pickle 'module:name' globals allowed there
    signature_keys: tuple[str, ...] = ()  # PEM public keys trusted there
    signature_chains: tuple[str, ...] = ()  # PEM trust anchors trusted there
    signature_identities: tuple[KeylessTrust, ...] = ()  # Sigstore signers trusted there

    def applies(self, source: str) -> bool:
        return any(fnmatch.fnmatchcase(source, pattern) for pattern in self.sources)


@dataclass(frozen=True)
class SourceScopes:
    """Per-source scan settings compiled from a policy before the scan (``scanner.policy.scan_settings``)."""

    pickle_profiles: tuple[str, ...] | None = None  # None: the command line's (or the rule DB defaults)
    scopes: tuple[SourceScope, ...] = ()


@dataclass
class ScanOptions:
    """How to scan: plain settings, the same for every entry point; ``for_source`` narrows them to one source."""

    limits: Limits = DEFAULT_LIMITS
    rules_root: Path | None = None
    compute_sha256: bool = True
    allowed_profiles: list[str] | None = None
    extra_allowed_globals: list[str] = field(default_factory=list)
    source_options: dict[str, object] = field(default_factory=dict)
    scoped: SourceScopes = field(default_factory=SourceScopes)  # what the policy adds per source
    cache: ResultCache | None = None  # reuse verdicts for bytes already hashed and scanned
    signature: str | None = None  # model-signing bundle; default: model.sig beside the model
    signature_keys: list[str] = field(default_factory=list)  # PEM public keys
    signature_chains: list[str] = field(default_factory=list)  # PEM trust anchors
    signature_identities: list[KeylessTrust] = field(default_factory=list)  # Sigstore keyless signers
    known_sha256: dict[str, str] = field(default_factory=dict)  # artifact path -> digest already computed
    on_file: Callable[[FileResult], None] | None = None  # progress hook; never sent to workers
    selection: Selection | None = None  # --include/--exclude/.modelwardignore: files left out (and reported)

    def for_source(self, source: str) -> ScanOptions:
        """These settings plus what the compiled policy adds for ``source`` (allowances first, then trust)."""
        scopes = [s for s in self.scoped.scopes if s.applies(source)]
        profiles = self.scoped.pickle_profiles
        return replace(
            self,
            allowed_profiles=list(profiles) if profiles is not None else self.allowed_profiles,
            extra_allowed_globals=[
                *self.extra_allowed_globals,
                *(g for s in scopes for g in s.extra_allowed_globals),
            ],
            signature_keys=[*self.signature_keys, *(k for s in scopes for k in s.signature_keys)],
            signature_chains=[*self.signature_chains, *(c for s in scopes for c in s.signature_chains)],
            signature_identities=[
                *self.signature_identities,
                *(i for s in scopes for i in s.signature_identities),
            ],
        )

    def for_workers(self) -> ScanOptions:
        """What a worker process needs to judge a file: picklable, and without registry credentials."""
        return replace(self, on_file=None, source_options={})
