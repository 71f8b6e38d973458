"""The source contract: Target -> Snapshot of Artifacts, each openable as a Reader.

A Snapshot records what the registry *claims* (sizes, digests, the commit or
manifest digest it pinned); claims are checked when bytes are read, never
trusted as verification.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..io.reader import FileReader, Reader


class SourceError(Exception):
    """A target could not be resolved (bad URI, missing repo, unreachable registry). One clear line."""


@dataclass
class Problem:
    """Something about the tree itself (a link escaping it, a loop, a special file) that becomes a finding."""

    path: str
    rule_id: str
    message: str
    evidence: dict[str, str] = field(default_factory=dict)
    analyzed: bool = False  # True only for entries judged without reading them (e.g. VCS internals)


# Most artifacts (every file on disk) carry no registry facts: they share this one empty, read-only mapping
# instead of an empty dict each (64 of the ~340 bytes a listed file cost). Set ``info`` to a new dict to add.
NO_INFO: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Artifact:
    """One file of a snapshot. Slotted, and a file on disk needs no opener (its ``local_path`` is how it is
    opened): a zoo's listing holds 100k of them."""

    path: str  # relative, POSIX, as shown in reports
    size: int
    opener: Callable[[], Reader] | None = None  # None: a file on disk, opened at ``local_path``
    claimed_sha256: str | None = None
    claimed_git_sha1: str | None = None
    local_path: str | None = None  # set for files on disk (hashing and signature checks read it directly)
    info: Mapping[str, str] = field(default_factory=lambda: NO_INFO)  # registry-side facts, information only

    def open(self) -> Reader:
        if self.opener is not None:
            return self.opener()
        if self.local_path is None:
            raise ValueError(f"{self.path}: an artifact needs an opener or a local path")
        return FileReader(self.local_path, name=self.path)


@dataclass(frozen=True)
class AttachedSignature:
    """Signature material a registry attaches to what it serves (a cosign signature of an OCI manifest)."""

    kind: str  # "cosign"
    payload: bytes  # the exact signed bytes (cosign simple-signing JSON)
    signature: bytes  # raw signature (DER ECDSA for cosign key signatures)
    where: str  # tag or referrer it came from, for messages
    certificate: str | None = None  # PEM, when the signer used a certificate (keyless or CA-issued)


@dataclass
class Snapshot:
    target: str  # as the user named it
    kind: str  # "local", "hf", "oci", "url"
    resolved: str  # the immutable reference: commit sha, manifest digest, absolute path
    root: str | None = None  # display root, e.g. the folder scanned
    artifacts: list[Artifact] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Transport faults met while reading artifacts (unreachable, stalled, out of time): the run could not
    # complete, so scan/check report them as errors (exit 2) besides the fail-closed per-file finding.
    errors: list[str] = field(default_factory=list)
    attached_signatures: list[AttachedSignature] = field(default_factory=list)


class Source(ABC):
    @abstractmethod
    def resolve(self, target: str) -> Snapshot: ...
