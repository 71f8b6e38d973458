"""``hf://ORG``: every model of a Hub organization or user, for audits of a whole namespace.

The listing is the Hub API's paginated ``/api/models?author=ORG`` through huggingface_hub (endpoint and
token from HF_ENDPOINT / HF_TOKEN as the Hub client reads them, so private repos are listed for a token
that may see them). Each model becomes an ordinary ``hf://ORG/NAME`` target.
"""

from __future__ import annotations

import os
import re

from ..io.redaction import redact
from ..sources.base import SourceError
from ..sources.hf import call_hub, checked_endpoint

_ORG = re.compile(r"^hf://(?P<org>[A-Za-z0-9][A-Za-z0-9_.-]*)/?$")
MAX_MODELS = 100_000


def is_org_target(raw: str) -> bool:
    return _ORG.match(raw) is not None


def expand_org(raw: str) -> list[str]:
    """``hf://ORG`` -> ``["hf://ORG/a", "hf://ORG/b", ...]`` (sorted); SourceError when it cannot be listed."""
    m = _ORG.match(raw)
    if m is None:
        raise SourceError(f"{raw}: expected hf://ORG")
    org = m["org"]
    endpoint = os.environ.get("HF_ENDPOINT") or None
    if endpoint:
        checked_endpoint(endpoint)
    from huggingface_hub import HfApi

    def listing() -> list[str]:
        names: list[str] = []
        for info in HfApi(endpoint=endpoint).list_models(author=org):
            names.append(info.id)
            if len(names) > MAX_MODELS:
                raise SourceError(f"{raw}: more than {MAX_MODELS} models")
        return names

    try:  # the program's retry policy and network budget, like every other Hub call
        names = call_hub(raw, f"listing the models of {org!r}", endpoint or "https://huggingface.co", listing)
    except SourceError:
        raise
    except Exception as exc:  # HfHubHTTPError, requests/httpx errors
        raise SourceError(
            redact(f"{raw}: cannot list the models of {org!r}: {type(exc).__name__}: {exc}")
        ) from None
    if not names:
        raise SourceError(f"{raw}: {org!r} has no models (or none this token may see)")
    return [f"hf://{n}" for n in sorted(names)]
