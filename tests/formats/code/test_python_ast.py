"""AST analysis of repository Python: what importing or calling it would do."""

from __future__ import annotations

import time

import pytest

from scanner.analysis.python_ast import analyze_python
from scanner.findings import Severity

MODELING = """
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
"""


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


@pytest.mark.parametrize(
    ("src", "rule", "sev"),
    [
        ('import os\nos.system("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
        ('import os\ndef f():\n    os.system("id")\n', "PY-DANGEROUS-CALL", Severity.HIGH),
        ('from subprocess import Popen as P\ndef f():\n    P(["id"])\n', "PY-DANGEROUS-CALL", Severity.HIGH),
        (
            'import base64\nx = base64.b64decode("aWQ=")\ny = x\nexec(y)\n',
            "PY-DANGEROUS-CALL",
            Severity.CRITICAL,
        ),
        (
            'import codecs\ndef f():\n    eval(codecs.decode("vq", "rot13"))\n',
            "PY-DANGEROUS-CALL",
            Severity.CRITICAL,
        ),
        ("import zlib\ndef f(b):\n    exec(zlib.decompress(b))\n", "PY-DANGEROUS-CALL", Severity.CRITICAL),
        ('__import__("os").system("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
        ("import importlib\ndef f(n):\n    importlib.import_module(n)\n", "PY-DANGEROUS-CALL", Severity.HIGH),
        ('import ctypes\ndef f():\n    ctypes.CDLL("x.so")\n', "PY-DANGEROUS-CALL", Severity.HIGH),
        ("import pickle\ndef f(b):\n    return pickle.loads(b)\n", "PY-DANGEROUS-CALL", Severity.HIGH),
        ("import marshal\ndef f(b):\n    return marshal.loads(b)\n", "PY-DANGEROUS-CALL", Severity.HIGH),
        ('import requests\nrequests.get("http://x")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
        (
            'import socket\ns = socket.create_connection(("h", 1))\n',
            "PY-IMPORT-TIME-SIDE-EFFECT",
            Severity.HIGH,
        ),
        (
            'import urllib.request\ndef f():\n    urllib.request.urlopen("http://x")\n',
            "PY-NETWORK-CALL",
            Severity.MEDIUM,
        ),
        ('open("/tmp/x", "w").write("a")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
        ('import shutil\nshutil.rmtree("/tmp/x")\n', "PY-IMPORT-TIME-SIDE-EFFECT", Severity.HIGH),
        ('from os import *\nsystem("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
        ('import os\ngetattr(os, "sys" + "tem")("id")\n', "PY-DANGEROUS-CALL", Severity.CRITICAL),
        ("eval(\"__import__('os').system('id')\")\n", "PY-DANGEROUS-CALL", Severity.CRITICAL),
        (
            'class A:\n    import subprocess\n    subprocess.call("id", shell=True)\n',
            "PY-DANGEROUS-CALL",
            Severity.CRITICAL,
        ),
        ("x = ().__class__.__base__.__subclasses__()\n", "PY-DANGEROUS-CALL", Severity.HIGH),
    ],
)
def test_dangerous_constructs(src: str, rule: str, sev: Severity) -> None:
    got = _rules(src)
    assert got.get(rule) == sev, got


def test_main_guard_is_not_import_time() -> None:
    got = _rules('import os\nif __name__ == "__main__":\n    os.system("id")\n')
    assert got == {"PY-DANGEROUS-CALL": Severity.HIGH}


def test_method_names_are_not_builtins() -> None:
    got = _rules(
        'import re\nclass M:\n    def eval(self):\n        return 1\nm = M()\nm.eval()\nre.compile("x")\n'
    )
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


# --- names resolved the way Python binds them, not by spelling -------------------------------------------


def _worst(src: str) -> Severity | None:
    a = analyze_python(src)
    assert a.parsed, a.error
    return a.max_severity


@pytest.mark.parametrize(
    "src",
    [
        # aliases and re-exports
        "import os\n_r = os.system\n_r('id')\n",
        "import os as o\nrun = o.system\nrun('id')\n",
        "from os import system as s\ns('id')\n",
        "import shutil\nshutil.os.system('id')\n",
        "from shutil import os\nos.system('id')\n",
        "import os.path\nos.path.os.system('id')\n",
        "import subprocess as sp\nP = sp.Popen\nQ = P\nQ(['id'])\n",
        "import os\na = os\nb = a\nb.system('id')\n",
        "import os\nf, g = os.system, print\nf('id')\n",
        # subscripts and lookups
        "import os\nos.__dict__['system']('id')\n",
        "import sys\nsys.modules['os'].system('id')\n",
        "import sys\nsys.modules.get('subprocess').call('id')\n",
        "__builtins__['exec']('print(1)')\n",
        "__builtins__.__dict__['ev' + 'al']('1')\n",
        "import os\nvars(os)['system']('id')\n",
        "import os\nglobals()['os'].system('id')\n",
        "import os\nn = 'sys' + 'tem'\ngetattr(os, n)('id')\n",
        "import os\ngetattr(os, 'metsys'[::-1])('id')\n",
        "import os\ngetattr(os, ''.join(['sy', 'st', 'em']))('id')\n",
        "import os\ngetattr(os, f\"{'sys'}tem\")('id')\n",
        "import os\ngetattr(os, '%c%c%c%c%c%c' % (115, 121, 115, 116, 101, 109))('id')\n",
        "import operator, os\noperator.attrgetter('system')(os)('id')\n",
        "import importlib\nimportlib.import_module('o' + 's').system('id')\n",
        "getattr(__import__('os'), 'popen')('id')\n",
        # higher-order calls: the callable runs, called by someone else
        "import functools, os\nfunctools.partial(os.system, 'id')()\n",
        "import os\nlist(map(os.system, ['id']))\n",
        "import threading, os\nthreading.Thread(target=os.system, args=('id',)).start()\n",
        "import atexit, os\natexit.register(os.system, 'id')\n",
        "import signal, os\nsignal.signal(signal.SIGTERM, os.system)\n",
        "import concurrent.futures as cf, subprocess\ncf.ThreadPoolExecutor().submit(subprocess.run, ['id'])\n",
        "import os\nfrom concurrent.futures import ProcessPoolExecutor\nProcessPoolExecutor().map(os.system, ['id'])\n",
        "import os\nsorted(['id'], key=os.system)\n",
        "import operator, os\noperator.methodcaller('system', 'id')(os)\n",
        "import os\nhandlers = {'x': os.system}\nhandlers['x']('id')\n",
        "from os import system\nh = {'x': system}\nh['x']('id')\n",
        "import os\nos.__getattribute__('popen')('id')\n",
        "b = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__\nb['__import__']('os').system('id')\n",
        "import os\nrun = getattr(os, 'nothing', None) or os.system\nrun('id')\n",
        "import os\nif (r := os.system):\n    r('id')\n",
        "import torch\ndef f():\n    return torch.hub.load('someone/repo', 'model')\n",
        "from transformers import AutoModel\nclass M:\n    def __init__(self):\n"
        "        self.sub = AutoModel.from_pretrained('other/repo', trust_remote_code=True)\n",
        # string-executing helpers
        "import timeit\ntimeit.timeit(\"__import__('os').system('id')\", number=1)\n",
        "import cProfile\ncProfile.run(\"__import__('os').system('id')\")\n",
        "import code\ncode.InteractiveInterpreter().runsource('import os')\n",
        "import runpy\nrunpy.run_path('x.py')\n",
        "import pdb\npdb.run('import os')\n",
        "import os\nos.environ['PYTHONBREAKPOINT'] = 'os.system'\nbreakpoint('id')\n",
        "import importlib.util\nspec = importlib.util.spec_from_file_location('m', 'x.py')\nspec.loader.exec_module(m)\n",
        # factories and nested deserialization
        "import yaml\nyaml.load(open('c.yaml'), Loader=yaml.Loader)\n",
        "import yaml\nyaml.unsafe_load('!!python/object/apply:os.system [id]')\n",
        "import logging.config\nlogging.config.dictConfig({'version': 1, 'handlers': {'h': {'()': 'os.system'}}})\n",
        "import logging.config\nlogging.config.fileConfig('log.ini')\n",
        "import pickle, base64\npickle.loads(base64.b64decode('gASV'))\n",
        "import pickle\nBLOB = b'\\x80\\x04\\x95'\npickle.loads(BLOB)\n",
        "import torch, io, base64\ntorch.load(io.BytesIO(base64.b64decode('UEsD')))\n",
        "import marshal\nexec(marshal.loads(b'\\xe3\\x00'))\n",
        "import base64\nexec(base64.b64decode('aW1wb3J0IG9z'))\n",
    ],
)
def test_indirection_is_followed(src: str) -> None:
    worst = _worst(src)
    assert worst is not None and worst >= Severity.HIGH, src


@pytest.mark.parametrize(
    "src",
    [
        "import os\n_r = os.system\n_r('id')\n",
        "from shutil import os\nos.system('id')\n",
        "import sys\nsys.modules['os'].system('id')\n",
        "import os\nos.__dict__['sys' + 'tem']('id')\n",
        "import atexit, os\natexit.register(os.system, 'id')\n",
        "import threading, os\nthreading.Thread(target=os.system, args=('id',)).start()\n",
        "import pickle\npickle.loads(b'\\x80\\x04K\\x01.')\n",
    ],
)
def test_indirect_process_execution_on_import_is_critical(src: str) -> None:
    assert _worst(src) is Severity.CRITICAL, _rules(src)


@pytest.mark.parametrize(
    ("src", "rule"),
    [
        # effects in code loaders call: __init__, from_pretrained, what import-time code calls, registered callbacks
        (
            "import requests\nclass M:\n    def __init__(self):\n        requests.get('http://x')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import socket\nclass M:\n    @classmethod\n    def from_pretrained(cls, p):\n        socket.socket().connect(('h', 1))\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "from pathlib import Path\nclass M:\n    def __init__(self):\n        Path('/tmp/x').write_text('a')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import io\nclass M:\n    def __init__(self):\n        io.FileIO('/tmp/x', 'w').write(b'a')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "class M:\n    def __init__(self):\n        with open('/home/u/.bashrc', 'a') as f:\n            f.write('x')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import os\nclass B:\n    def __init_subclass__(cls, **kw):\n        os.remove('/tmp/x')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import urllib.request\ndef _setup():\n    urllib.request.urlopen('http://x')\n_setup()\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import http.client\ndef helper():\n    http.client.HTTPSConnection('x').request('GET', '/')\n"
            "class M:\n    def __init__(self):\n        helper()\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import atexit, shutil\n@atexit.register\ndef bye():\n    shutil.rmtree('/tmp/x')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import os\nclass M:\n    def __init__(self):\n        self.go()\n    def go(self):\n        os.system('id')\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        ("from pathlib import Path\nPath('x').open('wb').write(b'a')\n", "PY-IMPORT-TIME-SIDE-EFFECT"),
        ("import os\nfd = os.open('x', os.O_WRONLY | os.O_CREAT)\n", "PY-IMPORT-TIME-SIDE-EFFECT"),
        ("import os\nos.environ['LD_PRELOAD'] = '/tmp/x.so'\n", "PY-IMPORT-TIME-SIDE-EFFECT"),
        (
            "import os\ndef deco(f):\n    os.system('id')\n    return f\n@deco\ndef g():\n    pass\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
        (
            "import os\nclass Meta(type):\n    def __new__(m, n, b, d):\n        os.system('id')\n"
            "        return super().__new__(m, n, b, d)\nclass X(metaclass=Meta):\n    pass\n",
            "PY-LOAD-TIME-SIDE-EFFECT",
        ),
    ],
)
def test_effects_in_code_loaders_call(src: str, rule: str) -> None:
    """Import-time effects are high on their own; effects in loader-called functions are medium until the
    repository check knows a loader runs the file (then high: see test_hf_repo)."""
    got = _rules(src)
    want = Severity.HIGH if rule == "PY-IMPORT-TIME-SIDE-EFFECT" else Severity.MEDIUM
    assert got.get(rule) is not None and got[rule] >= want, got


def test_loader_reached_process_is_critical_but_unreached_is_high() -> None:
    reached = _rules("import os\nclass M:\n    def __init__(self):\n        os.system('id')\n")
    other = _rules("import os\nclass M:\n    def save(self):\n        os.system('id')\n")
    assert reached["PY-DANGEROUS-CALL"] is Severity.CRITICAL
    assert other == {"PY-DANGEROUS-CALL": Severity.HIGH}


@pytest.mark.parametrize(
    "src",
    [
        "import os\np = os.path.join('a', 'b')\nos.makedirs(p, exist_ok=True)\n",
        "import yaml\ncfg = yaml.load(open('c.yaml'), Loader=yaml.SafeLoader)\n",
        "import yaml\ncfg = yaml.safe_load('a: 1')\n",
        "import torch\nclass M:\n    def __init__(self, p):\n        self.w = torch.load(p, weights_only=True)\n",
        "import types\ndef f(x):\n    return isinstance(x, types.FunctionType)\n",
        "import subprocess\ndef f(e):\n    return isinstance(e, subprocess.CalledProcessError)\n",
        "import json\nclass T:\n    def __init__(self, vocab):\n        with open(vocab, encoding='utf-8') as f:\n            self.v = json.load(f)\n",
        "import os\nclass T:\n    def save_vocabulary(self, d):\n        with open(os.path.join(d, 'v.json'), 'w') as f:\n            f.write('{}')\n",
        "ACT = {'gelu': 1}\nname = 'ge' + 'lu'\nx = ACT[name]\n",
        "import operator\nkey = operator.attrgetter('size')\n",
        "import functools, math\nf = functools.partial(math.pow, 2)\n",
    ],
)
def test_benign_idioms_stay_below_high(src: str) -> None:
    worst = _worst(src)
    assert worst is None or worst < Severity.HIGH, _rules(src)


@pytest.mark.slow
def test_parse_memory_is_bounded_by_a_token_count() -> None:
    """ast.parse takes ~700 bytes per token: a 1 MiB 'a,a,a,...' list would need 720 MB. Count tokens first."""
    from scanner.analysis.python_ast import MAX_TOKENS
    from tests.memory import peak_rss_rise

    flood = b"x = [" + b"a," * 500_000 + b"]\n"
    (parsed, limit), peak = peak_rss_rise(lambda: (lambda a: (a.parsed, a.limit))(analyze_python(flood)))
    assert not parsed and limit == "python_tokens" and peak < 40 << 20
    at_cap = b"x = [" + b"a," * (MAX_TOKENS // 2 - 20) + b"]\n"
    (parsed, limit), peak = peak_rss_rise(lambda: (lambda a: (a.parsed, a.limit))(analyze_python(at_cap)))
    assert parsed and limit is None and peak < 110 << 20, peak >> 20


def test_token_limit_is_a_limit_finding_not_a_parse_error() -> None:
    from tests.harness import inspect_bytes

    fr = inspect_bytes(b"import os\n" + b"x = [" + b"a," * 200_000 + b"]\n", "big_modeling.py")
    assert "LIMIT-EXCEEDED" in {f.rule_id for f in fr.findings} and fr.coverage.value != "full"
