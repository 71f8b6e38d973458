"""The ``modelward`` console script: keeps the dataclass code cache in place, then runs the CLI.

The cache must be installed before the CLI's modules import (they define the dataclasses), which is why the
console script does not point at ``scanner.cli:main`` directly.
"""

from __future__ import annotations


def main() -> None:
    from .dataclass_code import install

    install()
    from .cli import main as cli_main

    cli_main()
