"""What the archive and compression tests need beyond the harness: which handlers are this family's."""

from __future__ import annotations

from scanner.findings import FileResult

MY_HANDLERS = {
    "gzip",
    "bzip2",
    "xz",
    "lzma-alone",
    "zlib",
    "zstd",
    "lz4-frame",
    "joblib-zfile",
    "tar-archive",
    "7z-archive",
}


def pickle_analyzer_present() -> bool:
    from scanner.formats.registry import handlers

    return any(h.name == "pickle" for h in handlers())


def crashed_here(result: FileResult) -> list:
    """INSPECTOR-ERROR findings raised by this family's handlers (inner formats are not ours to judge)."""
    return [
        f
        for f in result.findings
        if f.rule_id == "INSPECTOR-ERROR" and f.message.split(" ")[0] in MY_HANDLERS
    ]
