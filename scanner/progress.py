"""Progress on stderr for long scans: shown on a terminal, silent in CI and pipes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import ScanOptions
    from .findings import FileResult


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextlib.contextmanager
def file_progress(opts: ScanOptions) -> Iterator[None]:
    """Count files as they are judged; attaches to the engine's per-file hook."""
    if not interactive():
        yield
        return
    from rich.console import Console  # only with a bar to draw: rich.progress costs start-up (issue #13)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("scanning", total=None)
        count = 0
        previous = opts.on_file

        def hook(fr: FileResult) -> None:
            nonlocal count
            count += 1
            progress.update(task, description=f"scanned {count} files — {fr.path[-60:]}")
            if previous:
                previous(fr)

        opts.on_file = hook
        try:
            yield
        finally:
            opts.on_file = previous
