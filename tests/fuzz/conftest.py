"""The ``fuzz`` marker: coverage-guided runs in a subprocess (deselect with ``-m 'not fuzz'``)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fuzz: short coverage-guided atheris run (a few seconds, in a subprocess)"
    )
