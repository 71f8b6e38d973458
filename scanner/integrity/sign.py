"""Sign a model folder or file into a model-signing compatible Sigstore bundle (key or certificate)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from scanner.integrity.bundle import build_bundle, pae
from scanner.integrity.certs import check_signing_usage, load_certificates, validate_chain
from scanner.integrity.errors import IntegrityError
from scanner.integrity.keys import curve_hash, key_hint, load_private_key
from scanner.integrity.locate import DEFAULT_SIGNATURE_NAME  # noqa: E402,F401 - the one definition
from scanner.integrity.manifest import DEFAULT_SHARD_SIZE, Manifest, compute_manifest
from scanner.integrity.statement import build_statement


@dataclass(frozen=True)
class SignResult:
    signature_path: Path
    manifest: Manifest
    root_digest: str
    key_hint: str


def relative_inside(model_path: Path, other: Path) -> str | None:
    """``other`` relative to the model folder, or None if it lies outside (then it is not ignored)."""
    if not model_path.is_dir():
        return None
    try:
        root, target = model_path.resolve(), other.resolve()
    except (OSError, RuntimeError):
        return None
    if target == root or not target.is_relative_to(root):
        return None
    return target.relative_to(root).as_posix()


def _write_atomic(path: Path, text: str) -> None:
    """Never leave a half-written signature behind (a later verify would call it garbage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sign_model(
    model_path: str | os.PathLike[str],
    private_key: str | os.PathLike[str] | ec.EllipticCurvePrivateKey,
    signature_path: str | os.PathLike[str] | None = None,
    *,
    password: bytes | None = None,
    certificate: str | os.PathLike[str] | None = None,
    chain: Sequence[str | os.PathLike[str]] = (),
    method: str = "files",
    algorithm: str = "sha256",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore_paths: Iterable[str | os.PathLike[str]] = (),
    ignore_git_paths: bool = True,
    allow_symlinks: bool = False,
    workers: int | None = None,
) -> SignResult:
    """Hash ``model_path`` and write a signature; ``ignore_paths`` are relative to the model root.

    With ``certificate`` the bundle carries ``[leaf, *chain]`` instead of a key hint; the leaf must
    hold the signing key's public half. The signature file is left out of the manifest when it lies
    inside the model folder (upstream does the same).
    """
    model = Path(model_path)
    sig_path = Path(signature_path) if signature_path is not None else Path(DEFAULT_SIGNATURE_NAME)
    key = (
        private_key
        if isinstance(private_key, ec.EllipticCurvePrivateKey)
        else load_private_key(private_key, password)
    )
    public = key.public_key()

    certs_der: list[bytes] = []
    if certificate is not None:
        loaded = load_certificates([certificate])
        leaf = loaded[0]
        if leaf.public_key() != public:
            raise IntegrityError(f"{certificate}: certificate does not belong to the signing key")
        extra = load_certificates(chain) if chain else []
        # fail early on what every verifier would reject anyway
        check_signing_usage(leaf)
        if extra:
            validate_chain(leaf, [*loaded[1:], *extra], extra)
        certs_der = [c.public_bytes(serialization.Encoding.DER) for c in [*loaded, *extra]]
    elif chain:
        raise IntegrityError("--chain was given without --cert (the signing certificate)")

    ignores = [*ignore_paths]
    inside = relative_inside(model, sig_path)
    if inside is not None:
        ignores.append(inside)
    manifest = compute_manifest(
        model,
        method=method,
        algorithm=algorithm,
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        ignore_paths=ignores,
        ignore_git_paths=ignore_git_paths,
        workers=workers,
    )
    payload = build_statement(manifest)
    signature = key.sign(pae(payload), ec.ECDSA(curve_hash(key)))
    hint = key_hint(public)
    text = build_bundle(payload, signature, key_hint=None if certs_der else hint, certificates=certs_der)
    _write_atomic(sig_path, text)
    return SignResult(sig_path, manifest, manifest.root_digest(), hint)
