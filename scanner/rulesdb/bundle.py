"""Signed rule-database bundles: pack, fetch, verify, install atomically, and say which one is active.

A defence must be patchable the day an attack is found, without waiting for a package release. A
bundle is a gzip'd tar of a ``signatures/``-shaped folder plus ``bundle.json`` (schema, version) and
``bundle.sig``, an OpenSSF model-signing signature over every file, made and checked with the same
machinery as model signatures (key, certificate chain or Sigstore identity). ``install`` accepts a
bundle only when its signature verifies against the trust it is given, every file is covered, its
schema is one this modelward reads, it loads as a rule database, and its version is newer than the
active one; the switch is one atomic rename of a pointer file, so a refused or interrupted update
leaves the previous database active.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..integrity.errors import IntegrityError
from ..integrity.trust import KeylessTrust
from ..io.atomic_file import write_atomic, write_atomic_with
from ..resources import installed_rules_home, packaged_signatures_dir, rules_version_key

BUNDLE_SCHEMA = 1
MANIFEST = "bundle.json"
SIGNATURE = "bundle.sig"
MAX_BUNDLE_BYTES = 64 << 20
MAX_MEMBERS = 20_000


class BundleError(Exception):
    """The bundle was refused; the message says why and the active database did not change."""


@dataclass(frozen=True)
class Trust:
    keys: Sequence[str] = ()
    chains: Sequence[str] = ()
    identities: Sequence[KeylessTrust] = ()

    def empty(self) -> bool:
        return not (self.keys or self.chains or self.identities)


@dataclass(frozen=True)
class ActiveRules:
    root: Path
    version: str
    origin: str  # "packaged", "installed from <source>", "MODELWARD_SIGNATURES"
    signer: str | None = None


def pack(src: Path, out: Path, *, private_key: Path, password: bytes | None = None) -> str:
    """Build and sign a bundle from a ``signatures/``-shaped folder; returns its version."""
    from ..integrity.sign import sign_model
    from ..rules import RuleDatabaseError, load_rule_db

    try:
        db = load_rule_db(src)
    except RuleDatabaseError as exc:
        raise BundleError(f"{src}: not a rule database: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="modelward-pack-") as tmp:
        stage = Path(tmp) / "bundle"
        shutil.copytree(src, stage, ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.pyc", SIGNATURE))
        (stage / MANIFEST).write_text(
            json.dumps(
                {
                    "schema": BUNDLE_SCHEMA,
                    "version": db.version,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
                indent=2,
            )
            + "\n"
        )
        try:
            sign_model(stage, private_key, stage / SIGNATURE, password=password)
        except IntegrityError as exc:
            raise BundleError(f"signing failed: {exc}") from None

        def _pack(part: Path) -> None:
            with tarfile.open(part, "w:gz") as tar:
                for path in sorted(stage.rglob("*")):
                    tar.add(path, arcname=path.relative_to(stage).as_posix(), recursive=False)

        write_atomic_with(out, _pack)
    return db.version


def _extract(archive: Path, dest: Path) -> None:
    """Regular files and folders only, inside ``dest``, bounded in count and size."""
    total = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            for i, m in enumerate(tar):
                if i >= MAX_MEMBERS:
                    raise BundleError(f"{archive}: more than {MAX_MEMBERS} members")
                name = m.name
                if name.startswith("/") or ".." in Path(name).parts or not (m.isfile() or m.isdir()):
                    raise BundleError(
                        f"{archive}: refused member {name!r} (links, devices and paths outside "
                        "the bundle are not allowed)"
                    )
                total += m.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{archive}: unpacks to more than {MAX_BUNDLE_BYTES} bytes")
                members.append(m)
            tar.extractall(dest, members=members, filter="data")
            _drain(tar, archive, total)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{archive}: not a readable bundle ({exc})") from None


def _drain(tar: tarfile.TarFile, archive: Path, unpacked: int) -> None:
    """Read the compressed stream to its end so its trailer (gzip CRC and length) is checked.

    tarfile stops at the end-of-archive blocks; a bundle whose bytes after them were damaged would
    otherwise install. What follows the archive is bounded like the members.
    """
    stream = tar.fileobj
    if stream is None:
        return
    total = unpacked
    while chunk := stream.read(1 << 20):
        total += len(chunk)
        if total > MAX_BUNDLE_BYTES:
            raise BundleError(f"{archive}: unpacks to more than {MAX_BUNDLE_BYTES} bytes")


def _verify(stage: Path, trust: Trust, source: str) -> str:
    from ..integrity.verify import verify_with_any

    sig = stage / SIGNATURE
    if not sig.is_file():
        raise BundleError(f"{source}: the bundle is not signed ({SIGNATURE} missing)")
    if trust.empty():
        raise BundleError(
            f"{source}: no trust to verify it with: give --key, --chain or --identity/--issuer, "
            "or a policy whose signatures.trust covers this source"
        )
    outcome = verify_with_any(
        stage, sig, keys=trust.keys, chains=trust.chains, identities=trust.identities, ignore_git_paths=False
    )
    if outcome.result is None:
        raise BundleError(
            f"{source}: signature not trusted: "
            f"{outcome.failed or outcome.unusable or 'no trust entry verified it'}"
        )
    if not outcome.result.ok:
        raise BundleError(
            f"{source}: the bundle was tampered with: {'; '.join(outcome.result.problems()[:5])}"
        )
    return outcome.result.signer.identity


def _manifest(stage: Path, source: str) -> dict[str, object]:
    try:
        doc = json.loads((stage / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BundleError(f"{source}: {MANIFEST} missing or not JSON") from None
    if not isinstance(doc, dict) or doc.get("schema") != BUNDLE_SCHEMA:
        raise BundleError(
            f"{source}: bundle schema {doc.get('schema') if isinstance(doc, dict) else '?'} is not "
            f"one this modelward reads ({BUNDLE_SCHEMA}); upgrade modelward"
        )
    return doc


def install(archive: Path, trust: Trust, source: str, *, allow_downgrade: bool = False) -> ActiveRules:
    """Verify and activate a bundle; BundleError leaves the previous database active."""
    from ..rules import RuleDatabaseError, load_rule_db

    home = installed_rules_home()
    home.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=home))
    try:
        _extract(archive, stage)
        signer = _verify(stage, trust, source)
        doc = _manifest(stage, source)
        try:
            db = load_rule_db(stage)
        except RuleDatabaseError as exc:
            raise BundleError(f"{source}: does not load as a rule database: {exc}") from None
        if str(doc.get("version")) != db.version:
            raise BundleError(
                f"{source}: {MANIFEST} says version {doc.get('version')}, VERSION says {db.version}"
            )
        current = active_rules()
        if not allow_downgrade and rules_version_key(db.version) <= rules_version_key(current.version):
            raise BundleError(
                f"{source}: version {db.version} is not newer than the active {current.version} "
                f"({current.origin})"
            )
        final = home / db.version
        if final.exists():
            shutil.rmtree(final)
        os.replace(stage, final)
        pointer = home / "active.json"
        write_atomic(
            pointer,
            json.dumps(
                {
                    "version": db.version,
                    "source": source,
                    "signer": signer,
                    "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            )
            + "\n",
        )
        return ActiveRules(final, db.version, f"installed from {source}", signer)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def active_rules() -> ActiveRules:
    """Which rule database a scan uses now, and where it came from."""
    from ..resources import signatures_dir
    from ..rules import RuleDatabaseError, load_rule_db

    env = os.environ.get("MODELWARD_SIGNATURES")
    root = signatures_dir()
    try:
        version = load_rule_db(root).version
    except RuleDatabaseError:
        version = "?"
    if env:
        return ActiveRules(root, version, "MODELWARD_SIGNATURES")
    if root != packaged_signatures_dir():
        try:
            meta = json.loads((installed_rules_home() / "active.json").read_text())
        except (OSError, ValueError):
            meta = {}
        return ActiveRules(root, version, f"installed from {meta.get('source', '?')}", meta.get("signer"))
    return ActiveRules(root, version, "packaged")
