"""``modelward sign`` / ``modelward verify``: thin typer layer over :mod:`scanner.integrity`.

Exit codes: 0 verified; 1 verification failed (changed/missing/extra files, bad signature, untrusted
or wrongly-used certificate); 2 could not check (unreadable key or signature, unsupported key type,
symlink or special file in the tree, file changed while hashing, bad usage). User errors print one
line on stderr, never a traceback. Option names also accept model-signing's underscore spellings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from scanner.integrity.errors import IntegrityError, VerificationFailed
from scanner.integrity.hashing import SUPPORTED_ALGORITHMS
from scanner.integrity.locate import DEFAULT_SIGNATURE_NAME
from scanner.integrity.trust import KeylessTrust
from scanner.report.terminal import terminal_safe as safe  # hostile file names cannot drive the terminal

if TYPE_CHECKING:
    from rich.console import Console

    from scanner.integrity.verify import VerificationResult

PASSWORD_ENV = "MODELWARD_KEY_PASSWORD"


def _consoles() -> tuple[Console, Console]:
    from rich.console import Console  # rich only when sign/verify runs (start-up, issue #13)

    # markup/highlight off: file names come from untrusted models and must print verbatim
    return (
        Console(markup=False, highlight=False, soft_wrap=True),
        Console(stderr=True, markup=False, highlight=False, soft_wrap=True),
    )


def _fail(err: Console, message: str, code: int) -> typer.Exit:
    err.print(f"error: {safe(message)}", style="bold red" if code == 2 else "red")
    return typer.Exit(code)


def _model_relative(model: Path, paths: list[Path] | None, err: Console) -> list[str]:
    """model-signing CLI semantics: ignore paths are resolved from the CWD, kept if inside the model."""
    out: list[str] = []
    if not model.is_dir():
        return out
    root = model.resolve()
    for p in paths or []:
        target = p.resolve() if p.is_absolute() else (Path.cwd() / p).resolve()
        if target == root or not target.is_relative_to(root):
            err.print(
                f"warning: ignore path {safe(p)} is not inside {safe(model)}; it has no effect",
                style="yellow",
            )
            continue
        out.append(target.relative_to(root).as_posix())
    return out


def _password() -> bytes | None:
    value = os.environ.get(PASSWORD_ENV)
    return value.encode("utf-8") if value else None


def _report(result: VerificationResult, out: Console, err: Console) -> None:
    for note in result.warnings:
        err.print(f"warning: {safe(note)}", style="yellow")
    signer = safe(result.signer.identity)
    if result.ok:
        out.print(
            f"Verification succeeded: {len(result.files)} file(s) in '{safe(result.model_name)}' match the signature "
            f"({result.serialization.method}, {result.serialization.hash_type}) signed by {signer}",
            style="green",
        )
        return
    err.print(f"Verification failed for '{safe(result.model_name)}' (signed by {signer}):", style="bold red")
    for line in result.problems():
        err.print(f"  {safe(line)}")


def register(app: typer.Typer) -> None:
    """Add the ``sign`` and ``verify`` commands to ``app``."""

    @app.command("sign")
    def sign_cmd(
        model_path: Annotated[Path, typer.Argument(help="Model folder or single model file.")],
        key: Annotated[
            Path, typer.Option("--key", "--private_key", "--private-key", help="EC private key (PEM).")
        ],
        signature: Annotated[
            Path, typer.Option("--signature", help="Where to write the signature (model-signing's default).")
        ] = Path(DEFAULT_SIGNATURE_NAME),
        cert: Annotated[
            Path | None,
            typer.Option(
                "--cert", "--signing_certificate", "--signing-certificate", help="Signing (leaf) certificate."
            ),
        ] = None,
        chain: Annotated[
            list[Path] | None,
            typer.Option(
                "--chain", "--certificate_chain", "--certificate-chain", help="CA certificates (PEM)."
            ),
        ] = None,
        ignore_paths: Annotated[
            list[Path] | None,
            typer.Option("--ignore-paths", "--ignore_paths", help="Path to leave unsigned."),
        ] = None,
        ignore_git_paths: Annotated[
            bool, typer.Option("--ignore-git-paths/--no-ignore-git-paths", help="Skip .git, .gitignore, ...")
        ] = True,
        allow_symlinks: Annotated[bool, typer.Option("--allow-symlinks", "--allow_symlinks")] = False,
        hash_name: Annotated[
            str,
            typer.Option("--hash", help=f"Digest: {' or '.join(SUPPORTED_ALGORITHMS)} ('blake2' accepted)."),
        ] = "sha256",
        shard_size: Annotated[
            int | None, typer.Option("--shard-size", min=1, help="Sign byte ranges of this size ('shards').")
        ] = None,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help="Hashing threads.")] = None,
    ) -> None:
        """Sign a model with an EC key (optionally a certificate) as an OpenSSF model-signing bundle."""
        out, err = _consoles()
        if chain and cert is None:
            raise _fail(err, "--chain needs --cert (the signing certificate)", 2)
        try:
            from scanner.integrity.sign import sign_model  # cryptography: only for this command

            result = sign_model(
                model_path,
                key,
                signature,
                password=_password(),
                certificate=cert,
                chain=chain or [],
                method="shards" if shard_size else "files",
                algorithm=hash_name,
                shard_size=shard_size or 1_000_000_000,
                ignore_paths=_model_relative(model_path, ignore_paths, err),
                ignore_git_paths=ignore_git_paths,
                allow_symlinks=allow_symlinks,
                workers=workers,
            )
        except IntegrityError as exc:
            raise _fail(err, str(exc), 2) from None
        out.print(
            f"Signed {len(result.manifest.files())} file(s) of '{safe(result.manifest.model_name)}' -> "
            f"{safe(result.signature_path)} (root sha256 {result.root_digest})",
            style="green",
        )

    @app.command("verify")
    def verify_cmd(
        model_path: Annotated[Path, typer.Argument(help="Model folder or single model file.")],
        signature: Annotated[
            Path, typer.Option("--signature", help="Signature file (Sigstore bundle JSON).")
        ],
        key: Annotated[
            Path | None, typer.Option("--key", "--public_key", "--public-key", help="EC public key (PEM).")
        ] = None,
        chain: Annotated[
            list[Path] | None,
            typer.Option(
                "--chain",
                "--certificate_chain",
                "--certificate-chain",
                help="Trusted CA certificate(s), PEM.",
            ),
        ] = None,
        ignore_unsigned_files: Annotated[
            bool,
            typer.Option(
                "--ignore-unsigned-files", "--ignore_unsigned_files", help="Check only the signed files."
            ),
        ] = False,
        ignore_paths: Annotated[
            list[Path] | None, typer.Option("--ignore-paths", "--ignore_paths", help="Path to skip.")
        ] = None,
        ignore_git_paths: Annotated[bool, typer.Option("--ignore-git-paths/--no-ignore-git-paths")] = True,
        allow_symlinks: Annotated[bool, typer.Option("--allow-symlinks", "--allow_symlinks")] = False,
        workers: Annotated[int | None, typer.Option("--workers", min=1, help="Hashing threads.")] = None,
        identity: Annotated[
            str | None, typer.Option("--identity", help="Sigstore: the signer's e-mail or URI identity.")
        ] = None,
        identity_regex: Annotated[
            str | None,
            typer.Option("--identity-regex", help="Sigstore: a regular expression the identity must match."),
        ] = None,
        issuer: Annotated[str | None, typer.Option("--issuer", help="Sigstore: the OIDC issuer URL.")] = None,
        trust_config: Annotated[
            Path | None,
            typer.Option("--trust-config", help="Sigstore: client trust config JSON for a private instance."),
        ] = None,
    ) -> None:
        """Verify a model against a model-signing signature (key, certificate or Sigstore keyless)."""
        out, err = _consoles()
        sigstore = identity is not None or identity_regex is not None or issuer is not None
        if sum([key is not None, bool(chain), sigstore]) != 1:
            raise _fail(
                err,
                "give exactly one of --key (public key), --chain (trusted CA certificates) or "
                "--identity/--issuer (Sigstore keyless)",
                2,
            )
        try:
            keyless = (
                KeylessTrust(
                    issuer=issuer or "",
                    identity=identity,
                    identity_regex=identity_regex,
                    trust_config=trust_config,
                )
                if sigstore
                else None
            )
            from scanner.integrity.verify import verify_model

            result = verify_model(
                model_path,
                signature,
                public_key=key,
                trust_anchors=chain or None,
                keyless=keyless,
                ignore_paths=_model_relative(model_path, ignore_paths, err),
                ignore_git_paths=ignore_git_paths,
                allow_symlinks=allow_symlinks,
                ignore_unsigned_files=ignore_unsigned_files,
                workers=workers,
            )
        except VerificationFailed as exc:
            raise _fail(err, f"verification failed: {exc}", 1) from None
        except IntegrityError as exc:
            raise _fail(err, str(exc), 2) from None
        _report(result, out, err)
        if not result.ok:
            raise typer.Exit(1)
