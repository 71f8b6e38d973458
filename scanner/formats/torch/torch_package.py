"""``torch.package`` archives (``PackageExporter``): packaged Python sources plus pickles that use them.

``PackageImporter`` imports every interned module from the archive's own
``.py`` files and unpickles ``*.pkl`` records with an importer that resolves
globals to those modules first: the packaged sources are code the loader
runs, whatever they look like. Layout (torch/package/package_exporter.py):
``<root>/.data/{version,extern_modules,python_version,serialization_id}``,
``<root>/.data/<n>.storage`` raw tensor bytes, ``<root>/<module path>.py``
sources, ``<root>/<package>/<resource>`` pickles and other resources.
"""

from __future__ import annotations

import re

from ...io.reader import Reader
from .._pickle_bridge import analyze_pickles
from ..carrier_code import report_code_member
from ..interface import FormatHandler, InspectContext
from ..zip.checks import read_zip
from ..zip.listing import ZipEntry, list_names, looks_like_zip
from ..zip.members import inspect_entry, inspect_extra_regions, member_head, open_member, unique_entries
from .torch_zip import head_looks_like_payload

LOADER = "torch.package.PackageImporter"
_MARKER = re.compile(r"^([^/]+)/\.data/extern_modules$")
_STORAGE = re.compile(r"^[^/]+/\.data/[0-9]+\.storage$")
_KNOWN = {
    ".data/version",
    ".data/extern_modules",
    ".data/python_version",
    ".data/serialization_id",
    "byteorder",
    ".data/mocked_modules",
    ".data/extern_modules.txt",
}
MAX_EXTERN_LIST = 1 << 20


def package_roots(names: list[str]) -> set[str]:
    return {m.group(1) for m in map(_MARKER.match, names) if m}


def _sniff(head: bytes, reader: Reader) -> bool:
    if not looks_like_zip(head, reader):
        return False
    return bool(package_roots(list_names(reader)))


def _extern_modules(reader: Reader, entries: list[ZipEntry], ctx: InspectContext) -> list[str]:
    out: list[str] = []
    for e in entries:
        if e.name.endswith("/.data/extern_modules") and e.uncompressed_size <= MAX_EXTERN_LIST:
            sub = open_member(reader, e, ctx)
            if sub is not None:
                out.extend(
                    x.strip()
                    for x in sub.read(0, sub.size).decode("utf-8", "replace").splitlines()
                    if x.strip()
                )
    return out


def _inspect(reader: Reader, ctx: InspectContext) -> None:
    listing = read_zip(reader, ctx)
    if listing is None:
        return
    inspect_extra_regions(reader, listing, ctx)
    roots = package_roots(listing.names())
    entries = list(unique_entries(listing))
    sources = 0
    for e in entries:
        if ctx.state.out_of_time():
            ctx.limit_hit("file_seconds", "time budget ran out inspecting torch.package members")
            return
        if e.is_dir:
            continue
        root = next((r for r in roots if e.name.startswith(r + "/")), None)
        rel = e.name[len(root) + 1 :] if root is not None else e.name
        if root is not None and rel.endswith(".py"):
            sub = open_member(reader, e, ctx)
            if sub is not None:
                sources += 1
                module = rel[:-3].replace("/", ".").removesuffix(".__init__")
                report_code_member(
                    ctx, sub, e.name, loader=LOADER, role="packaged module", extra={"module": module[:200]}
                )
        elif root is not None and rel.endswith(".pkl"):
            sub = open_member(reader, e, ctx)
            if sub is not None:
                analyze_pickles(sub, ctx, member=e.name)  # PackageImporter.load_pickle unpickles it
        elif _STORAGE.match(e.name):
            # raw tensor bytes; only a disguised pickle, archive or compressed stream is looked for
            if head_looks_like_payload(member_head(reader, e, 512)):
                inspect_entry(reader, e, ctx)
        elif root is not None and rel in _KNOWN:
            continue
        else:
            inspect_entry(reader, e, ctx)
    ctx.add(
        "CARRIER-MODEL",
        f"torch.package archive with {sources} packaged source file(s)",
        evidence={
            "kind": "torch.package",
            "roots": sorted(roots)[:10],
            "sources": sources,
            "extern_modules": _extern_modules(reader, entries, ctx)[:50],
        },
    )


TORCH_PACKAGE = FormatHandler(
    "torch-package",
    _sniff,
    _inspect,
    family="pickle",
    claims=(".pt", ".package"),
    can_carry_code=True,
)
