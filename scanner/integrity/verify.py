"""Verify a model against a model-signing signature and say, per file, what holds.

Order of checks (THREATS.md 8.6): parse bundle -> check the signature over the exact payload bytes
(key hint / certificate chain) -> parse and self-check the statement -> rebuild the local manifest
with the *signature's* serialization parameters -> compare as sets. Cryptographic or trust failures
raise :class:`VerificationFailed`; unusable input raises :class:`IntegrityError`; a manifest mismatch
is a normal result with ``ok=False`` so the caller can list every changed, missing and extra file.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.integrity.bundle import Bundle, pae, pae_legacy, read_bundle
from scanner.integrity.certs import (
    check_signing_usage,
    describe,
    leaf_public_key,
    load_certificates,
    load_der,
    san_values,
    validate_chain,
)
from scanner.integrity.errors import FileChangedError, IntegrityError, VerificationFailed
from scanner.integrity.hashing import FileIdentity, file_identity
from scanner.integrity.keyless import KeylessTrust, verify_keyless
from scanner.integrity.keys import check_supported, curve_hash, key_hint, load_public_key
from scanner.integrity.locate import find_signature  # noqa: F401 - re-exported
from scanner.integrity.manifest import (
    GIT_IGNORES,
    ModelFile,
    Resource,
    Serialization,
    hash_model_files,
    normalize_ignores,
    select_files,
    walk_model,
)
from scanner.integrity.sign import relative_inside
from scanner.integrity.statement import SignedStatement, parse_statement


class Status(str, Enum):
    OK = "ok"
    CHANGED = "changed"
    MISSING = "missing"  # signed, not found locally
    EXTRA = "extra"  # found locally, not signed


@dataclass(frozen=True)
class Signer:
    """Who signed: a key (identified by its hint), a certificate (subject, issuer, SANs) or a Sigstore identity."""

    kind: str  # "key" | "certificate" | "sigstore"
    key_hint: str
    subject: str | None = None
    issuer: str | None = None
    san: tuple[str, ...] = ()
    fingerprint_sha256: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    chain: tuple[str, ...] = ()  # subjects from leaf to trust anchor
    anchor_sha256: str | None = None  # fingerprint of the trust anchor the chain ended at

    @property
    def identity(self) -> str:
        """Who signed, as locks record it: a certificate's subject is only unique under its trust anchor, so
        two trusted CAs issuing the same subject are two signers."""
        if self.kind == "sigstore" and self.subject:
            return f"{self.subject} ({self.issuer})"
        if self.kind == "certificate" and self.subject:
            if self.anchor_sha256 and self.chain:
                return f"{self.subject} (CA {self.chain[-1]}, sha256 {self.anchor_sha256[:16]})"
            return self.subject
        return f"key {self.key_hint}"


@dataclass(frozen=True)
class ResourceCheck:
    name: str
    path: str
    status: Status
    algorithm: str
    expected: str | None  # hex digest from the signature
    actual: str | None  # hex digest computed locally


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict; ``digest`` is set only when the local bytes match what was signed."""

    path: str
    status: Status
    algorithm: str
    digest: str | None
    resources: tuple[ResourceCheck, ...] = ()

    @property
    def covered(self) -> bool:
        return self.status is Status.OK


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    signer: Signer
    model_name: str
    root_digest: str
    serialization: Serialization
    files: dict[str, FileCheck]
    resources: tuple[ResourceCheck, ...]
    warnings: tuple[str, ...] = ()
    ignored_paths: tuple[str, ...] = ()
    legacy: bool = False
    signature_path: Path | None = field(default=None, compare=False)
    # path -> (dev, ino, size, mtime, ctime) of the file whose bytes were verified, unchanged throughout
    identities: dict[str, FileIdentity] = field(default_factory=dict, compare=False)

    def _with(self, status: Status) -> list[str]:
        return [f.path for f in self.files.values() if f.status is status]

    @property
    def changed(self) -> list[str]:
        return self._with(Status.CHANGED)

    @property
    def missing(self) -> list[str]:
        return self._with(Status.MISSING)

    @property
    def extra(self) -> list[str]:
        return self._with(Status.EXTRA)

    def covered(self, path: str) -> bool:
        """Whether ``path`` (POSIX, relative to the model root) is signed and matches the signature."""
        check = self.files.get(path)
        return bool(check and check.covered)

    def verified_digests(self) -> dict[str, tuple[str, str]]:
        """``{path: (algorithm, hex)}`` for files whose bytes match the signature (files method)."""
        return {p: (f.algorithm, f.digest) for p, f in self.files.items() if f.covered and f.digest}

    @property
    def covers_nothing(self) -> bool:
        """No file of the model is covered: a signature over nothing vouches for nothing."""
        return not any(f.covered for f in self.files.values())

    def problems(self) -> list[str]:
        """One line per mismatching file, in manifest order."""
        lines = []
        if self.covers_nothing and not self.changed and not self.missing:
            lines.append("nothing signed: the signature covers no file of this model")
        for f in self.files.values():
            if f.status is Status.CHANGED:
                bad = [r for r in f.resources if r.status is not Status.OK]
                detail = ""
                if len(bad) == 1 and bad[0].expected and bad[0].actual:
                    detail = f" (expected {bad[0].algorithm} {bad[0].expected}, found {bad[0].actual})"
                elif bad:
                    detail = f" ({len(bad)} of {len(f.resources)} shards differ)"
                lines.append(f"changed: {f.path}{detail}")
            elif f.status is Status.MISSING:
                lines.append(f"missing: {f.path}")
            elif f.status is Status.EXTRA:
                lines.append(f"extra (not signed): {f.path}")
        return lines


def _verify_ecdsa(key: ec.EllipticCurvePublicKey, bundle: Bundle, legacy_hash: hashes.HashAlgorithm) -> bool:
    """True if the current PAE verifies, False if only model-signing 0.2's buggy PAE does."""
    try:
        key.verify(bundle.signature, pae(bundle.payload, bundle.payload_type), ec.ECDSA(curve_hash(key)))
        return True
    except InvalidSignature:
        pass
    try:
        key.verify(bundle.signature, pae_legacy(bundle.payload, bundle.payload_type), ec.ECDSA(legacy_hash))
        return False
    except InvalidSignature:
        raise VerificationFailed(
            "signature does not verify: the payload was altered or another key signed it"
        ) from None


def check_bundle(
    bundle: Bundle,
    *,
    public_key: str | os.PathLike[str] | ec.EllipticCurvePublicKey | None = None,
    trust_anchors: Sequence[str | os.PathLike[str] | x509.Certificate] | None = None,
    keyless: KeylessTrust | None = None,
    now: dt.datetime | None = None,
) -> tuple[Signer, list[str]]:
    """Authenticate the bundle with a public key, a certificate chain to ``trust_anchors``, or a Sigstore identity."""
    if bundle.keyless:
        if keyless is None:
            raise IntegrityError(
                "this is a Sigstore keyless signature (Fulcio certificate and Rekor entry): verify it with "
                "--identity (or --identity-regex) and --issuer"
            )
        who, payload = verify_keyless(bundle.raw, keyless)
        if payload != bundle.payload:
            raise VerificationFailed("the verified DSSE payload differs from the bundle's statement")
        return Signer(
            "sigstore",
            who.fingerprint_sha256[:16],
            subject=who.identity,
            issuer=who.issuer,
            san=(who.identity,),
            fingerprint_sha256=who.fingerprint_sha256,
            not_before=who.not_before,
            not_after=who.not_after,
        ), []
    if keyless is not None and public_key is None and trust_anchors is None:
        raise IntegrityError(
            "this signature was made with a key or certificate, not Sigstore keyless: "
            "verify it with --key or --chain"
        )
    if (public_key is None) == (trust_anchors is None):
        raise IntegrityError("give exactly one of a public key or trust anchors (certificate chain)")
    warnings: list[str] = []
    if public_key is not None:
        key = public_key if isinstance(public_key, ec.EllipticCurvePublicKey) else load_public_key(public_key)
        check_supported(key, "public key")
        hint = key_hint(key)
        if bundle.key_hint and bundle.key_hint != hint:
            raise VerificationFailed(
                f"key mismatch: the signature names key {bundle.key_hint}, the supplied public key is {hint}"
            )
        if bundle.legacy_public_key:
            try:
                embedded = serialization.load_pem_public_key(bundle.legacy_public_key)
            except ValueError:
                raise IntegrityError("signature publicKey.rawBytes is not a PEM public key") from None
            if embedded != key:
                raise VerificationFailed("key mismatch: the signature embeds a different public key")
        if bundle.certificates:
            if load_der(bundle.certificates[0], "signing certificate").public_key() != key:
                raise VerificationFailed("key mismatch: the signing certificate holds a different public key")
        elif not bundle.key_hint and not bundle.legacy_public_key:
            warnings.append(
                "signature carries no key hint (older format); only the signature check binds the key"
            )
        if not _verify_ecdsa(key, bundle, curve_hash(key)):
            warnings.append("signature uses the pre-1.0 model-signing DSSE encoding")
        return Signer("key", hint), warnings

    if not bundle.certificates:
        raise IntegrityError(
            "signature holds a public key hint, not a certificate chain: verify it with a public key"
        )
    anchors = [a for a in trust_anchors or () if isinstance(a, x509.Certificate)]
    anchors += load_certificates([a for a in trust_anchors or () if not isinstance(a, x509.Certificate)])
    leaf = load_der(bundle.certificates[0], "signing certificate")
    intermediates = [
        load_der(c, f"certificate {i + 1} in signature") for i, c in enumerate(bundle.certificates[1:])
    ]
    key = leaf_public_key(leaf)
    chain = validate_chain(leaf, intermediates, anchors)
    check_signing_usage(leaf)
    # v0.2 signed certificate-mode payloads with SHA-256 whatever the curve; mirror upstream's fallback
    if not _verify_ecdsa(key, bundle, hashes.SHA256()):
        warnings.append("signature uses the pre-1.0 model-signing DSSE encoding")
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment > leaf.not_valid_after_utc:
        warnings.append(
            f"signing certificate expired on {leaf.not_valid_after_utc.isoformat()}; accepted because, as in "
            "model-signing, the chain is validated at the certificate's notBefore"
        )
    elif moment < leaf.not_valid_before_utc:
        warnings.append(f"signing certificate is not valid before {leaf.not_valid_before_utc.isoformat()}")
    signer = Signer(
        "certificate",
        key_hint(key),
        subject=describe(leaf),
        issuer=leaf.issuer.rfc4514_string(),
        san=tuple(san_values(leaf)),
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        chain=tuple(describe(c) for c in chain),
        anchor_sha256=chain[-1].fingerprint(hashes.SHA256()).hex() if chain else None,
    )
    return signer, warnings


def _norm_algorithm(name: str) -> str:
    low = name.lower()
    return (
        "blake2b" + low[len("blake2") :]
        if low.startswith("blake2") and not low.startswith("blake2b")
        else low
    )


def compare(
    expected: Sequence[Resource], actual: Sequence[Resource]
) -> tuple[list[ResourceCheck], dict[str, FileCheck]]:
    """Set comparison by resource name, then one verdict per file (shards roll up to their file)."""
    exp = {r.name: r for r in expected}
    act = {r.name: r for r in actual}
    checks: list[ResourceCheck] = []
    for res in sorted({**act, **exp}.values(), key=lambda r: r.sort_key):
        e, a = exp.get(res.name), act.get(res.name)
        if e is None:
            status = Status.EXTRA
        elif a is None:
            status = Status.MISSING
        elif _norm_algorithm(e.algorithm) == _norm_algorithm(a.algorithm) and e.digest == a.digest:
            status = Status.OK
        else:
            status = Status.CHANGED
        checks.append(
            ResourceCheck(
                res.name,
                res.path,
                status,
                (a or e or res).algorithm,
                e.digest if e else None,
                a.digest if a else None,
            )
        )
    grouped: dict[str, list[ResourceCheck]] = {}
    for chk in checks:
        grouped.setdefault(chk.path, []).append(chk)
    files: dict[str, FileCheck] = {}
    for path, group in grouped.items():
        statuses = {c.status for c in group}
        if statuses == {Status.OK}:
            status = Status.OK
        elif statuses == {Status.MISSING}:
            status = Status.MISSING
        elif statuses == {Status.EXTRA}:
            status = Status.EXTRA
        else:
            status = Status.CHANGED  # includes a different shard layout, i.e. a size change
        digest = (
            group[0].actual if status is Status.OK and len(group) == 1 and group[0].name == path else None
        )
        files[path] = FileCheck(path, status, group[0].algorithm, digest, tuple(group))
    return checks, files


def _ignore_warnings(model: Path, recorded: Iterable[str], signature_rel: str | None) -> list[str]:
    out = []
    for parts in normalize_ignores(recorded):
        rel = "/".join(parts) if parts else "."
        if rel in GIT_IGNORES or rel == signature_rel:
            continue
        if not parts:
            out.append("signature ignores '.', i.e. the whole model: nothing is protected")
        elif model.is_dir() and os.path.lexists(model.joinpath(*parts)):
            out.append(f"signature leaves '{rel}' unprotected (listed in its ignore_paths)")
    return out


def verify_statement(
    model_path: str | os.PathLike[str],
    statement: SignedStatement,
    signer: Signer,
    *,
    signature_path: Path | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    ignore_unsigned_files: bool = False,
    workers: int | None = None,
    warnings: Sequence[str] = (),
) -> VerificationResult:
    """Rebuild the local manifest with the signature's parameters and compare it to the signed one."""
    model = Path(model_path)
    expected = statement.manifest
    ser = expected.serialization
    sig_rel = relative_inside(model, signature_path) if signature_path is not None else None
    ignores = [*ignore_paths, *ser.ignore_paths, *([sig_rel] if sig_rel else [])]
    follow = ser.allow_symlinks or allow_symlinks
    if ignore_unsigned_files:
        files = select_files(
            model,
            expected.files(),
            ignore_paths=ignores,
            ignore_git_paths=ignore_git_paths,
            allow_symlinks=follow,
        )
    else:
        files = walk_model(
            model, ignore_paths=ignores, ignore_git_paths=ignore_git_paths, allow_symlinks=follow
        )
    actual = hash_model_files(files, ser, workers=workers)
    identities = _unchanged_since_walk(files)
    checks, per_file = compare(expected.resources, actual)
    notes = [*warnings, *_ignore_warnings(model, ser.ignore_paths, sig_rel)]
    if statement.legacy:
        notes.append("signature uses the legacy model_signing/Digests/v0.1 predicate")
    effective = sorted(
        {
            "/".join(p) or "."
            for p in normalize_ignores([*ignores, *(GIT_IGNORES if ignore_git_paths else ())])
        }
    )
    ok = all(c.status is Status.OK for c in checks) and any(f.covered for f in per_file.values())
    return VerificationResult(
        ok=ok,
        signer=signer,
        model_name=expected.model_name,
        root_digest=statement.root_digest,
        serialization=ser,
        files=per_file,
        resources=tuple(checks),
        warnings=tuple(notes),
        ignored_paths=tuple(effective),
        legacy=statement.legacy,
        signature_path=signature_path,
        identities={p: i for p, i in identities.items() if p in per_file and per_file[p].covered},
    )


def _unchanged_since_walk(files: Sequence[ModelFile]) -> dict[str, FileIdentity]:
    """Each file's identity, which must be the one the walk saw: the digests are then of those bytes.

    Every hash job checks identity around its own read; this closes the gap between the walk and the
    jobs (and between shards of one file), so a verified digest names one content, never a mix.
    """
    out: dict[str, FileIdentity] = {}
    for f in files:
        try:
            now = file_identity(os.stat(f.path))
        except OSError:
            raise FileChangedError(f"{f.rel} was removed while it was verified") from None
        if f.identity is not None and now != f.identity:
            raise FileChangedError(f"{f.rel} changed while it was verified (size/mtime/ctime/inode differ)")
        out[f.rel] = now
    return out


def verify_model(
    model_path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str],
    *,
    public_key: str | os.PathLike[str] | ec.EllipticCurvePublicKey | None = None,
    trust_anchors: Sequence[str | os.PathLike[str] | x509.Certificate] | None = None,
    keyless: KeylessTrust | None = None,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    ignore_unsigned_files: bool = False,
    workers: int | None = None,
) -> VerificationResult:
    """Verify ``model_path`` against a signature file; see the module docstring for what raises.

    ``ignore_paths`` are relative to the model root and are *added* to the signature's own list.
    """
    sig = Path(signature_path)
    bundle = read_bundle(sig)
    signer, warnings = check_bundle(
        bundle, public_key=public_key, trust_anchors=trust_anchors, keyless=keyless
    )
    statement = parse_statement(bundle.payload)
    return verify_statement(
        model_path,
        statement,
        signer,
        signature_path=sig,
        ignore_paths=ignore_paths,
        ignore_git_paths=ignore_git_paths,
        allow_symlinks=allow_symlinks,
        ignore_unsigned_files=ignore_unsigned_files,
        workers=workers,
        warnings=warnings,
    )


@dataclass(frozen=True)
class AnyTrustOutcome:
    """The first trust entry that verified, else why the others did not."""

    result: VerificationResult | None
    failed: str = ""  # the last cryptographic or trust failure (wrong key, wrong identity, bad signature)
    unusable: str = ""  # the last reason the signature could not be checked with an entry at all


def verify_with_any(
    model_path: str | os.PathLike[str],
    signature_path: str | os.PathLike[str],
    *,
    keys: Sequence[str | os.PathLike[str]] = (),
    chains: Sequence[str | os.PathLike[str]] = (),
    identities: Sequence[KeylessTrust] = (),
    **options: Any,
) -> AnyTrustOutcome:
    """Try every trusted key, the chains, then every Sigstore identity: a key cannot verify a keyless bundle
    (nor the reverse), so one unusable entry must not hide a later one that verifies."""
    attempts: list[dict[str, Any]] = [{"public_key": k} for k in keys]
    attempts += [{"trust_anchors": list(chains)}] if chains else []
    attempts += [{"keyless": ident} for ident in identities]
    failed = unusable = ""
    for kwargs in attempts:
        try:
            return AnyTrustOutcome(verify_model(model_path, signature_path, **kwargs, **options))
        except VerificationFailed as exc:
            failed = str(exc)
        except IntegrityError as exc:
            unusable = str(exc)
    return AnyTrustOutcome(None, failed, unusable)
