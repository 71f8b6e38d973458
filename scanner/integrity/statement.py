"""in-toto Statement v1 <-> manifest: the signed payload of a model signature.

The statement carries the whole manifest (``predicate.resources``) and a root digest over it
(``subject[0].digest.sha256``). Both are checked here so a verifier never trusts a resource list
that disagrees with the digest the signer committed to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from scanner.integrity.bundle import strict_json
from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.manifest import Manifest, Resource, Serialization

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"


def build_statement(manifest: Manifest) -> bytes:
    """Compact JSON statement; upstream verifiers parse it, they never compare JSON text."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest.model_name, "digest": {"sha256": manifest.root_digest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": manifest.serialization.to_json(),
            "resources": [
                {"name": r.name, "algorithm": r.algorithm, "digest": r.digest} for r in manifest.resources
            ],
        },
    }
    return json.dumps(statement, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class SignedStatement:
    manifest: Manifest
    root_digest: str
    legacy: bool  # the v0.1 "Digests" predicate of model-signing 0.2: no root digest, no serialization


def _get(obj: Any, key: str, kind: type, what: str) -> Any:
    if not isinstance(obj, dict) or not isinstance(obj.get(key), kind):
        raise IntegrityError(f"signed statement: {what} is missing or malformed")
    return obj[key]


def parse_statement(payload: bytes) -> SignedStatement:
    """Validate the decoded DSSE payload and turn it into the expected manifest."""
    doc = strict_json(payload, "signed statement")
    if _get(doc, "_type", str, "_type") != STATEMENT_TYPE:
        raise IntegrityError(f"signed statement: _type is {doc['_type']!r}, expected {STATEMENT_TYPE}")
    predicate_type = _get(doc, "predicateType", str, "predicateType")
    subjects = _get(doc, "subject", list, "subject")
    if predicate_type == LEGACY_PREDICATE_TYPE:
        return _parse_legacy(subjects)
    if predicate_type != PREDICATE_TYPE:
        raise IntegrityError(f"signed statement: unsupported predicateType {predicate_type!r}")
    if len(subjects) != 1:
        raise IntegrityError(f"signed statement: expected exactly one subject, found {len(subjects)}")
    name = subjects[0].get("name", "") if isinstance(subjects[0], dict) else ""
    root = _get(
        _get(subjects[0], "digest", dict, "subject digest"), "sha256", str, "subject sha256 digest"
    ).lower()
    predicate = _get(doc, "predicate", dict, "predicate")
    serialization = Serialization.from_json(_get(predicate, "serialization", dict, "predicate.serialization"))
    entries = _get(predicate, "resources", list, "predicate.resources")
    resources = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        rname = _get(entry, "name", str, f"resource {i} name")
        if rname in seen:
            raise IntegrityError(f"signed statement lists resource {rname!r} twice")
        seen.add(rname)
        resources.append(
            Resource.parse(
                rname,
                _get(entry, "algorithm", str, f"resource {rname!r} algorithm"),
                _get(entry, "digest", str, f"resource {rname!r} digest"),
                serialization.method,
            )
        )
    manifest = Manifest(str(name), serialization, tuple(resources))
    computed = manifest.root_digest()
    if computed != root:
        raise VerificationFailed(
            f"signed manifest is inconsistent: root digest is {root} but the listed resources hash to {computed}"
        )
    return SignedStatement(manifest, root, legacy=False)


def _parse_legacy(subjects: list[Any]) -> SignedStatement:
    resources = []
    seen: set[str] = set()
    for i, subject in enumerate(subjects):
        rname = _get(subject, "name", str, f"subject {i} name")
        if rname in seen:
            raise IntegrityError(f"signed statement lists subject {rname!r} twice")
        seen.add(rname)
        digest = _get(
            _get(subject, "digest", dict, f"subject {rname!r} digest"),
            "sha256",
            str,
            f"subject {rname!r} sha256",
        )
        resources.append(Resource.parse(rname, "sha256", digest, "files"))
    resources.sort(key=lambda r: r.sort_key)
    manifest = Manifest("compat-undefined-not-present", Serialization("files", "sha256"), tuple(resources))
    return SignedStatement(manifest, manifest.root_digest(), legacy=True)
