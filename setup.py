"""Ship the rule database and shipped policies inside the wheel (as scanner/_data/).

The design card keeps signatures/ and policies/ at the repository root, outside
the package; a checkout (and an editable install) reads them there, an
installed wheel from scanner/_data/ (see scanner/resources.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_DIRS = ("signatures", "policies")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in DATA_DIRS:
            dst = Path(self.build_lib) / "scanner" / "_data" / name
            shutil.copytree(ROOT / name, dst, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.py", "__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
