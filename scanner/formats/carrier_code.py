"""Code that a model loader runs, found inside a model package: the one way every carrier reports it.

MLflow loader modules, TorchServe handlers, torch.package sources, torch.export
guard expressions: whatever the loader imports or executes is code, and code is
never allowed by default. Each piece gets ``CODE-EXECUTED-BY-LOADER`` with its
SHA-256 (a policy trusts reviewed code by that digest, so a changed file blocks
again) and the loader that runs it, plus the AST analysis as evidence and
severity. The analysis is forced: a packaged module that does not look like
Python to content detection is still imported by the loader.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..io.reader import Reader
from .code_files import report_python
from .interface import InspectContext

# requirement lines that install from outside the package index: URLs, VCS, editable paths, extra indexes, local
# paths and archives (pip builds a local folder or sdist by running its build backend: setup.py is code), build
# options passed to setup.py. (-r requirements.txt is what MLflow's python_env.yaml says: the file is judged itself.)
RISKY_REQUIREMENT = re.compile(
    r"(?:^\s*-(?:e|-editable|i|-index-url|-extra-index-url|-trusted-host|f|-find-links"
    r"|-global-option|-install-option|-config-settings|C)\b|://|^\s*git\+"
    r"|@\s*(?:git\+|https?:|file:)"
    r"|^\s*(?:\.{1,2}(?:[/\\]|\s*$|\[)|[/\\~]|[A-Za-z]:[/\\]|file:)"
    r"|^\s*[^\s;#]*[/\\]"
    r"|^\s*[^\s;#]+\.(?:whl|zip|tar|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz)(?:\s|;|#|\[|$))",
    re.I | re.M,
)


def sha256_of(reader: Reader) -> str:
    h = hashlib.sha256()
    for chunk in reader.stream(0, chunk=1 << 20):
        h.update(chunk)
    return h.hexdigest()


def trust_message(what: str, loader: str, digest: str) -> str:
    return (
        f"{loader} runs {what}: code is never allowed by default; after review, trust it by digest "
        f"(policy trusted_code sha256 {digest})"
    )


def report_code_text(
    ctx: InspectContext,
    source: bytes,
    *,
    what: str,
    loader: str,
    role: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Code given as bytes (a file read whole, a guard expression): the finding and the AST analysis on ``ctx``."""
    from ..analysis.python_ast import MAX_SOURCE_BYTES, analyze_python

    digest = hashlib.sha256(source).hexdigest()
    ev: dict[str, Any] = {
        "sha256": digest,
        "loader": loader,
        "role": role,
        "file": what[:300],
        **(extra or {}),
    }
    ctx.add("CODE-EXECUTED-BY-LOADER", trust_message(what, loader, digest), evidence=ev)
    if len(source) > MAX_SOURCE_BYTES:
        ctx.limit_hit("python_source_bytes", f"code larger than {MAX_SOURCE_BYTES} bytes not analyzed")
    else:
        report_python(ctx, analyze_python(source), f"{what}: ")
    return digest


def report_code_member(
    ctx: InspectContext,
    reader: Reader,
    name: str,
    *,
    loader: str,
    role: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """A code member of a container: reported in its own member context, never left to content detection."""
    from ..analysis.python_ast import MAX_SOURCE_BYTES

    child = ctx.child(name)
    if child is None:
        return
    if reader.size > MAX_SOURCE_BYTES:
        digest = sha256_of(reader)
        child.add(
            "CODE-EXECUTED-BY-LOADER",
            trust_message(name, loader, digest),
            evidence={"sha256": digest, "loader": loader, "role": role, "file": name[:300], **(extra or {})},
        )
        child.limit_hit("python_source_bytes", f"code larger than {MAX_SOURCE_BYTES} bytes not analyzed")
        return
    report_code_text(child, reader.read(0, reader.size), what=name, loader=loader, role=role, extra=extra)


def risky_requirements(text: str) -> list[str]:
    """Requirement lines that install from URLs, version control or other indexes."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [ln[:200] for ln in lines if RISKY_REQUIREMENT.search(ln)]
