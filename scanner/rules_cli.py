"""`modelward rules`: the rule catalog, signed rule-database updates, and known-bad feeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from .cli_support import EXIT_ERROR, EXIT_OK, OutputFormat, err_console, fail, keyless_flags, open_policy

MAX_DOWNLOAD = 64 << 20


def _fetch(src: str, dest: Path, *, allow_http: bool, insecure: bool) -> Path:
    """A local path as is; an https://, http:// (--allow-http) or oci:// source downloaded, bounded, to ``dest``."""
    local = Path(src)
    if "://" not in src or src.startswith("file://"):
        local = Path(src[len("file://") :]) if src.startswith("file://") else local
        if not local.is_file():
            raise fail(f"{src}: no such file")
        return local
    from .cli_support import source_options
    from .io.reader import ReaderError
    from .sources.base import SourceError
    from .targets import resolve

    try:
        snap = resolve(src, **source_options(allow_http=allow_http, insecure=insecure))
    except SourceError as exc:
        raise fail(str(exc)) from None
    if len(snap.artifacts) != 1:
        raise fail(f"{src}: expected one file, found {len(snap.artifacts)}")
    art = snap.artifacts[0]
    if art.size > MAX_DOWNLOAD:
        raise fail(f"{src}: {art.size} bytes is more than a rule bundle or feed may be ({MAX_DOWNLOAD})")
    try:
        with art.open() as reader, open(dest, "wb") as out:
            for chunk in reader.stream():
                out.write(chunk)
    except (ReaderError, OSError) as exc:
        raise fail(f"{src}: download failed: {exc}") from None
    return dest


def _trust(
    source: str,
    policy: str | None,
    key: list[Path],
    chain: list[Path],
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    trust_config: Path | None,
) -> object:
    from .policy.scan_settings import compile_scan_settings
    from .rulesdb.bundle import Trust
    from .settings import ScanOptions

    opts = ScanOptions(
        scoped=compile_scan_settings(open_policy(policy) if policy else None),
        signature_keys=[str(k) for k in key],
        signature_chains=[str(c) for c in chain],
        signature_identities=keyless_flags(identity, identity_regex, issuer, trust_config),
    ).for_source(source)
    return Trust(keys=opts.signature_keys, chains=opts.signature_chains, identities=opts.signature_identities)


def register(app: typer.Typer) -> None:
    rules_app = typer.Typer(
        help="The rule database: list it, update it from a signed bundle, exchange known-bad feeds.",
        no_args_is_help=False,
    )
    app.add_typer(rules_app, name="rules")

    @rules_app.callback(invoke_without_command=True)
    def rules(
        ctx: typer.Context,
        format: OutputFormat = typer.Option(
            OutputFormat.console, "--format", "-f", help="console, json or markdown."
        ),
        min_severity: str | None = typer.Option(
            None, "--min-severity", help="Only rules at or above this severity."
        ),
    ) -> None:
        """List the rule database: every rule id with its severity, title, rationale and references."""
        if ctx.invoked_subcommand is not None:
            return
        from .findings import Severity
        from .report.rule_catalog import catalog_console, catalog_json, catalog_markdown
        from .rules import RuleDatabaseError, get_rule_db

        try:
            db = get_rule_db()
            floor = Severity.parse(min_severity) if min_severity else None
        except (RuleDatabaseError, ValueError) as exc:
            raise fail(str(exc)) from None
        if format not in (OutputFormat.console, OutputFormat.json, OutputFormat.markdown):
            raise fail("rules: --format takes console, json or markdown")
        if format is OutputFormat.json:
            typer.echo(catalog_json(db), nl=False)
        elif format is OutputFormat.markdown:
            typer.echo(catalog_markdown(db), nl=False)
        else:
            from .rulesdb.bundle import active_rules

            active = active_rules()
            err_console.print(
                f"rule database {active.version}: {active.origin}"
                + (f", signed by {active.signer}" if active.signer else ""),
                soft_wrap=True,
            )
            typer.echo(catalog_console(db, floor), nl=False)

    @rules_app.command("update")
    def update(
        source: str = typer.Option(..., "--from", help="Bundle: a file, https://… or oci://…"),
        key: list[Path] = typer.Option([], "--key", help="PEM public key the bundle must be signed with."),
        chain: list[Path] = typer.Option(
            [], "--chain", help="PEM trust anchors for a certificate-signed bundle."
        ),
        identity: str | None = typer.Option(None, "--identity", help="Sigstore signer identity."),
        identity_regex: str | None = typer.Option(
            None, "--identity-regex", help="Sigstore signer identity regex."
        ),
        issuer: str | None = typer.Option(None, "--issuer", help="Sigstore OIDC issuer."),
        trust_config: Path | None = typer.Option(
            None, "--trust-config", help="Sigstore client trust config."
        ),
        policy: str | None = typer.Option(
            None,
            "--policy",
            "-p",
            help="Take trust from this policy's signatures.trust entries for the bundle's source.",
        ),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// sources."),
        insecure: bool = typer.Option(False, "--insecure", help="Allow plain-HTTP OCI registries."),
    ) -> None:
        """Install a newer rule database from a signed bundle; the previous one stays active on any refusal."""
        from .rulesdb.bundle import BundleError, Trust, install

        trust = _trust(source, policy, key, chain, identity, identity_regex, issuer, trust_config)
        assert isinstance(trust, Trust)
        import tempfile  # a bundle or feed command only

        with tempfile.TemporaryDirectory(prefix="modelward-bundle-") as tmp:
            archive = _fetch(source, Path(tmp) / "bundle.tar.gz", allow_http=allow_http, insecure=insecure)
            try:
                active = install(archive, trust, source)
            except BundleError as exc:
                raise fail(f"rules update refused: {exc}") from None
        err_console.print(
            f"rule database {active.version} is active ({active.origin}, signed by {active.signer})",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_OK)

    @rules_app.command("pack")
    def pack_cmd(
        src: Path = typer.Argument(..., help="A signatures/-shaped folder."),
        output: Path = typer.Option(..., "--output", "-o", help="Bundle to write (.tar.gz)."),
        key: Path = typer.Option(..., "--key", help="PEM EC private key to sign with."),
    ) -> None:
        """Build and sign a rule-database bundle."""
        from .rulesdb.bundle import BundleError, pack

        try:
            version = pack(src, output, private_key=key)
        except BundleError as exc:
            raise fail(str(exc)) from None
        err_console.print(f"packed rule database {version} -> {output}")

    @rules_app.command("import-known-bad")
    def import_known_bad(
        feed: str = typer.Argument(..., help="OSV feed: a file or https:// URL."),
        signature: str | None = typer.Option(
            None, "--signature", help="Signature of the feed (default FEED.sig)."
        ),
        key: list[Path] = typer.Option([], "--key", help="PEM public key the feed must be signed with."),
        chain: list[Path] = typer.Option([], "--chain", help="PEM trust anchors."),
        identity: str | None = typer.Option(None, "--identity", help="Sigstore signer identity."),
        identity_regex: str | None = typer.Option(
            None, "--identity-regex", help="Sigstore signer identity regex."
        ),
        issuer: str | None = typer.Option(None, "--issuer", help="Sigstore OIDC issuer."),
        trust_config: Path | None = typer.Option(
            None, "--trust-config", help="Sigstore client trust config."
        ),
        policy: str | None = typer.Option(
            None,
            "--policy",
            "-p",
            help="Trust from this policy: signatures.trust "
            "for the feed's source, or known_bad_feeds listing it.",
        ),
        allow_http: bool = typer.Option(False, "--allow-http", help="Allow http:// sources."),
    ) -> None:
        """Merge a known-bad feed (OSV records) into the local known-bad list; scans then name the record."""
        from .rulesdb.bundle import Trust
        from .rulesdb.feeds import FeedError, merge_feed, parse_feed

        trust = _trust(feed, policy, key, chain, identity, identity_regex, issuer, trust_config)
        assert isinstance(trust, Trust)
        import tempfile  # a bundle or feed command only

        with tempfile.TemporaryDirectory(prefix="modelward-feed-") as tmp:
            data_path = _fetch(feed, Path(tmp) / "feed.json", allow_http=allow_http, insecure=False)
            listed = _listed_feed(feed, policy)
            if not listed:
                sig_src = signature or feed + ".sig"
                sig_path = (
                    _fetch(sig_src, Path(tmp) / "feed.sig", allow_http=allow_http, insecure=False)
                    if ("://" in sig_src or Path(sig_src).is_file())
                    else None
                )
                if sig_path is None:
                    raise fail(
                        f"{feed}: unsigned feed ({sig_src} not found) and not listed in the policy's "
                        "known_bad_feeds"
                    )
                _verify_feed(feed, data_path, sig_path, trust, tmp)
            try:
                added, known = merge_feed(parse_feed(data_path.read_bytes(), feed))
            except FeedError as exc:
                raise fail(str(exc)) from None
        err_console.print(f"imported {added} new known-bad digests ({known} already known) from {feed}")


def _listed_feed(feed: str, policy: str | None) -> bool:
    """A policy may list a feed source as trusted without a signature (``known_bad_feeds``)."""
    if not policy:
        return False
    from .policy.evaluate import matches

    pol = open_policy(policy)
    return any(matches(e.get("source", ""), feed) for e in (pol.data.get("known_bad_feeds") or []))


def _verify_feed(feed: str, data: Path, sig: Path, trust: object, tmp: str) -> None:
    """The feed file is signed like a one-file model (model-signing over the file)."""
    from .integrity.verify import verify_with_any
    from .rulesdb.bundle import Trust

    assert isinstance(trust, Trust)
    if trust.empty():
        raise fail(
            f"{feed}: signed feed but no trust to verify it: give --key, --chain or --identity/--issuer"
        )
    named = Path(tmp) / "feed" / Path(feed.rstrip("/")).name
    named.parent.mkdir()
    shutil.copy(data, named)
    outcome = verify_with_any(named, sig, keys=trust.keys, chains=trust.chains, identities=trust.identities)
    if outcome.result is None:
        raise typer.Exit(_feed_fail(f"{feed}: signature not trusted: {outcome.failed or outcome.unusable}"))
    if not outcome.result.ok:
        raise typer.Exit(_feed_fail(f"{feed}: the feed does not match its signature (tampered)"))


def _feed_fail(message: str) -> int:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return EXIT_ERROR
