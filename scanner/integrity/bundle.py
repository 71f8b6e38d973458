"""Sigstore bundle v0.3 (JSON) holding one DSSE envelope: the on-disk signature file of model-signing.

Parsing keeps the *exact* decoded payload bytes: signatures are checked over those bytes, never over
a re-serialization. Parsing is strict where leniency would create a parser differential (duplicate
JSON keys, several DSSE signatures) and lenient where upstream output varies (key order, ``keyid``,
``tlogEntries`` and ``hint`` may be absent).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.integrity.errors import IntegrityError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_BUNDLE_BYTES = 256 * 1024 * 1024  # a shards manifest of a huge repo is large, but not this large


def pae(payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding: what the ECDSA signature actually covers."""
    ptype = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)


def pae_legacy(payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> bytes:
    """The buggy PAE of model-signing 0.2 ("DSSEV1", bytes repr); only to verify old signatures."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


@dataclass(frozen=True)
class Bundle:
    """The parts of a bundle a verifier needs; ``payload`` is the exact signed statement bytes."""

    payload: bytes
    payload_type: str
    signature: bytes  # DER ECDSA
    key_hint: str | None = None
    legacy_public_key: bytes | None = None  # publicKey.rawBytes (PEM text) written by model-signing <=1.0
    certificates: tuple[bytes, ...] = ()  # DER, signing (leaf) certificate first
    keyless: bool = (
        False  # Sigstore/Fulcio keyless bundle: verified by sigstore-python (integrity/keyless.py)
    )
    raw: bytes = b""  # the bundle file's bytes, for verifiers that parse it themselves (sigstore-python)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise IntegrityError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise IntegrityError(f"invalid JSON number {name}")


def strict_json(data: bytes | str, what: str) -> Any:
    """``json.loads`` that refuses duplicate keys and NaN/Infinity (parser differentials)."""
    try:
        return json.loads(data, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except IntegrityError as exc:
        raise IntegrityError(f"{what}: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{what} is not valid JSON ({exc.__class__.__name__}: {exc})") from None
    except RecursionError:
        raise IntegrityError(f"{what} is nested too deeply") from None


def b64decode(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padding optional (DSSE allows both alphabets)."""
    if not isinstance(text, str) or not text:
        raise IntegrityError(f"{what} is missing or not a base64 string")
    cleaned = "".join(text.split())
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        if "-" in cleaned or "_" in cleaned:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"{what} is not valid base64") from None


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntegrityError(f"{what} is missing or not a JSON object")
    return value


def parse_bundle(data: bytes, source: str = "signature") -> Bundle:
    """Parse a signature file; every defect becomes one :class:`IntegrityError` line naming ``source``."""
    doc = _obj(strict_json(data, source), source)
    media_type = doc.get("mediaType")
    if media_type != BUNDLE_MEDIA_TYPE:
        raise IntegrityError(
            f"{source}: unsupported bundle mediaType {media_type!r} (expected {BUNDLE_MEDIA_TYPE})"
        )
    if "messageSignature" in doc and "dsseEnvelope" not in doc:
        raise IntegrityError(f"{source}: bundle signs a blob (messageSignature), not a DSSE model statement")
    env = _obj(doc.get("dsseEnvelope"), f"{source}: dsseEnvelope")
    payload_type = env.get("payloadType")
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise IntegrityError(
            f"{source}: unsupported DSSE payloadType {payload_type!r} (expected {INTOTO_PAYLOAD_TYPE})"
        )
    payload = b64decode(env.get("payload"), f"{source}: dsseEnvelope.payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise IntegrityError(f"{source}: dsseEnvelope has no signatures")
    if len(sigs) > 1:
        # model-signing writes exactly one and silently checks only the first; a second signature
        # would suggest a co-signature nobody verifies, so refuse instead of guessing.
        raise IntegrityError(f"{source}: dsseEnvelope has {len(sigs)} signatures; exactly one is supported")
    sig = b64decode(
        _obj(sigs[0], f"{source}: signature").get("sig"), f"{source}: dsseEnvelope.signatures[0].sig"
    )

    material = _obj(doc.get("verificationMaterial"), f"{source}: verificationMaterial")
    hint: str | None = None
    legacy_key: bytes | None = None
    certs: list[bytes] = []
    keyless = False
    if "publicKey" in material:
        pk = _obj(material["publicKey"], f"{source}: verificationMaterial.publicKey")
        raw_hint = pk.get("hint")
        if raw_hint not in (None, ""):
            if not isinstance(raw_hint, str):
                raise IntegrityError(f"{source}: publicKey.hint is not a string")
            hint = raw_hint.strip().lower()
        if pk.get("rawBytes"):
            legacy_key = b64decode(pk["rawBytes"], f"{source}: publicKey.rawBytes")
    elif "x509CertificateChain" in material:
        chain = _obj(material["x509CertificateChain"], f"{source}: x509CertificateChain")
        entries = chain.get("certificates")
        if not isinstance(entries, list) or not entries:
            raise IntegrityError(f"{source}: x509CertificateChain has no certificates")
        for i, entry in enumerate(entries):
            certs.append(
                b64decode(
                    _obj(entry, f"{source}: certificate {i}").get("rawBytes"), f"{source}: certificate {i}"
                )
            )
    elif "certificate" in material:
        leaf = _obj(material["certificate"], f"{source}: verificationMaterial.certificate")
        certs.append(b64decode(leaf.get("rawBytes"), f"{source}: verificationMaterial.certificate"))
        keyless = True
        entries = material.get("tlogEntries")
        if not isinstance(entries, list) or not entries:
            raise IntegrityError(
                f"{source}: Sigstore keyless bundle has no transparency log entry (tlogEntries): nothing proves "
                "when the short-lived certificate signed"
            )
    else:
        raise IntegrityError(
            f"{source}: verificationMaterial has no publicKey, certificate or certificate chain"
        )
    return Bundle(payload, payload_type, sig, hint, legacy_key, tuple(certs), keyless, raw=data)


def read_bundle(path: str | os.PathLike[str]) -> Bundle:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise IntegrityError(
                f"{p}: signature file is {size} bytes, larger than the {MAX_BUNDLE_BYTES} byte limit"
            )
        data = p.read_bytes()
    except IsADirectoryError:
        raise IntegrityError(f"{p}: signature path is a directory") from None
    except FileNotFoundError:
        raise IntegrityError(f"{p}: signature file not found") from None
    except OSError as exc:
        raise IntegrityError(f"{p}: cannot read signature file: {exc.strerror or exc}") from None
    return parse_bundle(data, str(p))


def build_bundle(
    payload: bytes,
    signature: bytes,
    *,
    key_hint: str | None = None,
    certificates: Sequence[bytes] = (),
) -> str:
    """Bundle JSON as model-signing writes it: key mode carries a hint, cert mode the DER chain."""
    if certificates:
        material: dict[str, Any] = {
            "x509CertificateChain": {
                "certificates": [{"rawBytes": base64.b64encode(c).decode("ascii")} for c in certificates]
            },
            "tlogEntries": [],
        }
    else:
        material = {"publicKey": {"hint": key_hint} if key_hint else {}, "tlogEntries": []}
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(doc, indent=2) + "\n"
