"""Where a model's signature lives by convention; cheap to import (a scan asks it for every local target)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SIGNATURE_NAME = "model.sig"


def find_signature(model_path: str | os.PathLike[str]) -> Path | None:
    """The conventional signature beside a model: ``DIR/model.sig``, else ``DIR.sig`` / ``FILE.sig``."""
    model = Path(model_path)
    candidates = [model / DEFAULT_SIGNATURE_NAME] if model.is_dir() else []
    candidates.append(model.with_name(model.name + ".sig"))
    return next((c for c in candidates if c.is_file()), None)
