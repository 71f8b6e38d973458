"""Fuzz the small parsers of this package: target strings, URL splitting, redaction, Content-Range handling."""

from __future__ import annotations

import random

import pytest

from scanner.io.http_session import redact, redact_url
from scanner.sources.base import SourceError
from scanner.sources.hf import parse_hf
from scanner.sources.url import split_url

pytestmark = pytest.mark.fuzz

ALPHABET = "abcAZ09-_./@:#?=&%~+ \\\0\n\u00e9"


def _random_strings(seed: int, n: int = 2000):
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 40)))


def test_parse_hf_never_raises_anything_but_source_error():
    for s in _random_strings(1):
        try:
            ref = parse_hf("hf://" + s)
        except SourceError:
            continue
        assert ".." not in ref.repo_id and not ref.repo_id.startswith("/")


def test_split_url_and_redact_never_crash_and_never_echo_passwords():
    for s in _random_strings(2):
        url = f"https://user:pw{abs(hash(s)) % 10**8:08d}xyz@host/{s}"
        try:
            fetch, _expected, headers, display = split_url(url)
        except SourceError as exc:
            assert "xyz@" not in str(exc)
            continue
        assert "xyz@" not in display and "xyz@" not in fetch
        assert headers.get("Authorization", "").startswith("Basic ")
        assert "xyz@" not in redact(url) and "xyz@" not in redact_url(url)
