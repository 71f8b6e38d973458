"""The ``modelward`` console script: keeps the dataclass code cache in place, then runs the command.

The cache must be installed before the CLI's modules import (they define the dataclasses), which is why the
console script does not point at ``scanner.cli:main`` directly. A ``scan`` whose options ``scan_argv`` can
read runs without importing typer (issue #13); every other command line goes to typer.
"""

from __future__ import annotations

import sys


def main() -> None:
    from .dataclass_code import install

    install()
    from .scan_argv import scan_arguments

    kwargs = scan_arguments(sys.argv[1:])
    if kwargs is not None:
        from .scan_command import run_scan_console

        run_scan_console(kwargs)
    from .cli import main as cli_main

    cli_main()
