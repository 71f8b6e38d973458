"""AST analysis of repository Python: what importing or calling it would do."""

from __future__ import annotations

import time

import pytest

from scanner.analysis.python_ast import analyze_python
from scanner.findings import Severity

MODELING = '''
import math, logging, importlib.util
from dataclasses import dataclass
from typing import Optional
import torch
import torch.nn as nn
from transformers import PreTrainedModel
from transformers.utils import is_flash_attn_2_available
from .configuration_x import XConfig
logger = logging.getLogger(__name__)
_HAS = importlib.util.find_spec("flash_attn") is not None
if is_flash_attn_2_available():
    from flash_attn import flash_attn_func

@dataclass
class Out:
    logits: Optional[torch.Tensor] = None

class XModel(PreTrainedModel):
    config_class = XConfig
    def __init__(self, config):
        super().__init__(config)
        self.lin = nn.Linear(4, 4)
        self.re = __import__("re").compile("x")
    def forward(self, x):
        self.eval()
        torch.compile(self.lin)
        return Out(self.lin(x) * math.sqrt(2))
'''


def _rules(src: str) -> dict[str, Severity]:
    a = analyze_python(src)
    assert a.parsed, a.error
    out: dict[str, Severity] = {}
    for i in a.issues:
        if i.rule_id not in out or i.severity > out[i.rule_id]:
            out[i.rule_id] = i.severity
    return out


def test_ordinary_modeling_code_is_at_most_low() -> None:
    a = analyze_python(MODELING)
    assert a.parsed
    assert all(i.severity <= Severity.LOW for i in a.issues), [(i.message, i.severity) for i in a.issues]
    assert (1, "configuration_x") in a.relative_imports
    assert "XModel" in a.classes


@pytest.mark.parametrize(("src", "rule", "sev"), [
    ('import os\nos.system("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('import os\ndef f():\n    os.system("id")\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('from subprocess import Popen as P\ndef f():\n    P(["id"])\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('import base64\nx = base64.b64decode("aWQ=")\ny = x\nexec(y)\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('import codecs\ndef f():\n    eval(codecs.decode("vq", "rot13"))\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('import zlib\ndef f(b):\n    exec(zlib.decompress(b))\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('__import__("os").system("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('import importlib\ndef f(n):\n    importlib.import_module(n)\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('import ctypes\ndef f():\n    ctypes.CDLL("x.so")\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('import pickle\ndef f(b):\n    return pickle.loads(b)\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('import marshal\ndef f(b):\n    return marshal.loads(b)\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('import requests\nrequests.get("http://x")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
    ('import socket\ns = socket.create_connection(("h", 1))\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
    ('import urllib.request\ndef f():\n    urllib.request.urlopen("http://x")\n', "PY-NETWORK-CALL", Severity.MEDIUM),
    ('open("/tmp/x", "w").write("a")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
    ('import shutil\nshutil.rmtree("/tmp/x")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
    ('from os import *\nsystem("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('import os\ngetattr(os, "sys" + "tem")("id")\n', "PY-DANGEROUS-CALL", Severity.HIGH),
    ('eval("__import__(\'os\').system(\'id\')")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('class A:\n    import subprocess\n    subprocess.call("id", shell=True)\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
    ('x = ().__class__.__base__.__subclasses__()\n', "PY-DANGEROUS-CALL", Severity.HIGH),
])
def test_dangerous_constructs(src: str, rule: str, sev: Severity) -> None:
    got = _rules(src)
    assert got.get(rule) == sev, got


def test_main_guard_is_not_import_time() -> None:
    got = _rules('import os\nif __name__ == "__main__":\n    os.system("id")\n')
    assert got == {"PY-DANGEROUS-CALL": Severity.HIGH}


def test_method_names_are_not_builtins() -> None:
    got = _rules('import re\nclass M:\n    def eval(self):\n        return 1\nm = M()\nm.eval()\nre.compile("x")\n')
    assert got == {}


def test_shadowed_builtin_is_not_flagged() -> None:
    assert _rules("def exec(x):\n    return x\nexec(1)\n") == {}


def test_unparseable_is_reported() -> None:
    a = analyze_python('print "python 2"\n')
    assert not a.parsed and a.error


def test_null_bytes_and_bad_encoding_do_not_raise() -> None:
    assert not analyze_python(b"import os\x00\n").parsed
    assert analyze_python(b"\xff\xfe garbage").parsed is False


def test_hostile_nesting_is_bounded() -> None:
    t0 = time.monotonic()
    a = analyze_python("x = " + "+".join(["a"] * 50_000) + "\n")
    b = analyze_python("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert time.monotonic() - t0 < 20
    assert a.parsed or a.error
    assert not b.parsed


def test_oversized_source_is_not_parsed() -> None:
    a = analyze_python("x = 1\n" * 10, max_bytes=10)
    assert not a.parsed and "larger" in (a.error or "")
