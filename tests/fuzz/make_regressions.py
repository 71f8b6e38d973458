"""Write the hand-made hard cases in ``tests/fuzz/regressions/`` (fuzzer crash inputs are saved beside them).

Run ``python -m tests.fuzz.make_regressions`` after changing a case. Each input is small and aims at a
parser's length fields, counts, nesting or recursion: the places crashes and blow-ups come from.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "regressions"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def cases() -> dict[str, dict[str, bytes]]:
    pickle_cases = {
        "deep-nesting-lists": b"\x80\x02" + b"]" * 50_000 + b".",
        "memo-get-unset": b"\x80\x02h\x05.",
        "stop-on-empty-stack": b"\x80\x02.",
        "huge-binunicode-length": b"\x80\x02X\xff\xff\xff\x7fabc.",
        "long4-negative-length": b"\x80\x04\x8b\xff\xff\xff\xff.",
        "frame-past-end": b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7f}.",
        "reduce-on-string": b"\x80\x02X\x01\x00\x00\x00a)R.",
        "truncated-global": b"cos\nsys",
    }
    zip_cases = {
        "eocd-only": b"PK\x05\x06" + b"\x00" * 18,
        "eocd-huge-counts": b"PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00",
        "member-named-dotdot": _zip({"../../data.pkl": b"\x80\x02N.", "archive/version": b"3\n"}),
        "nested-zip-in-zip": _zip({"inner.zip": _zip({"archive/data.pkl": b"\x80\x02N."})}),
        "zip64-locator-garbage": b"PK\x06\x07" + b"\xff" * 16 + b"PK\x05\x06" + b"\xff" * 18,
    }
    tar_cases = {
        "header-negative-size": _tar_header(b"data.pkl", b"-0000000001"),
        "header-base256-huge-size": _tar_header(b"data.pkl", b"\x80" + b"\xff" * 10),
        "longname-chain": _tar_header(b"././@LongLink", b"00000001000", typeflag=b"L") + b"\0" * 512,
        "pax-huge-record": _tar_header(b"pax", b"00000000020", typeflag=b"x")
        + b"99999999999 path=a\n".ljust(512, b"\0"),
        "sparse-garbage": _tar_header(b"s", b"00000001000", typeflag=b"S") + b"\xff" * 512,
    }
    safetensors_cases = {
        "header-len-max": struct.pack("<Q", (1 << 64) - 1) + b"{}",
        "header-len-past-end": struct.pack("<Q", 1000) + b'{"a": {"dtype": "F32"',
        "offsets-reversed": _st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, 8),
        "shape-overflow": _st(
            {"w": {"dtype": "F32", "shape": [1 << 62, 1 << 62], "data_offsets": [0, 8]}}, 8
        ),
        "deep-metadata": _st_raw(b'{"__metadata__": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        "duplicate-keys": _st_raw(b'{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "w": 1}', 4),
    }
    gguf_cases = {
        "kv-count-huge": b"GGUF" + struct.pack("<IQQ", 3, 0, (1 << 63) - 1),
        "tensor-count-huge": b"GGUF" + struct.pack("<IQQ", 3, (1 << 63) - 1, 0),
        "string-len-huge": b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", (1 << 63) - 1) + b"k",
        "array-of-arrays": b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", 1)
        + b"k"
        + struct.pack("<I", 9)
        + (struct.pack("<IQ", 9, 1) * 64)
        + struct.pack("<IQ", 4, 1)
        + b"\0" * 4,
        "version-1": b"GGUF" + struct.pack("<III", 1, 0, 0),
    }
    npy_cases = {
        "header-len-past-end": b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f4'",
        "shape-overflow": _npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 4), }"
        ),
        "object-dtype-empty-body": _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"),
        "descr-nested-struct": _npy(
            "{'descr': [('a', [('b', [('c', '<f4')])])], 'fortran_order': False, 'shape': (1,), }"
        ),
        "not-a-literal": _npy(
            "{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': (), }"
        ),
        "v3-utf8-header": b"\x93NUMPY\x03\x00" + struct.pack("<I", 16) + "{'descr': 'é'}  \n".encode(),
    }
    onnx_cases = {
        "varint-11-bytes": b"\x0a" + b"\xff" * 10 + b"\x01",
        "length-past-end": b"\x3a\xff\xff\xff\xff\x0f",
        "deep-subgraphs": _deep_onnx(60),
        "group-wiretype": b"\x0b\x0c" * 100,
        "graph-with-huge-node-count": b"\x3a\x06" + b"\x0a\x00" * 3,
    }
    json_cases = {
        "deep-arrays": b"[" * 30_000 + b"]" * 30_000,
        "template-in-config": json.dumps(
            {"chat_template": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}
        ).encode(),
        "template-list-of-dicts": json.dumps(
            {"chat_template": [{"name": "x", "template": "{% for a in b %}"}]}
        ).encode(),
        "lone-surrogate": b'{"chat_template": "\\ud800{{ x }}"}',
        "huge-number": b'{"a": 1' + b"0" * 10000 + b"}",
    }
    template_cases = {
        "unclosed-block": b"{% if x %}{% for y in z %}",
        "deep-parens": b"{{ " + b"(" * 2000 + b"1" + b")" * 2000 + b" }}",
        "attr-chain": b"{{ x" + b".a" * 5000 + b" }}",
        "macro-recursion": b"{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
        "raw-unterminated": b"{% raw %}{{ ''.__class__ }}",
    }
    return {
        "pickle": pickle_cases,
        "zip": zip_cases,
        "tar": tar_cases,
        "safetensors": safetensors_cases,
        "gguf": gguf_cases,
        "npy": npy_cases,
        "onnx": onnx_cases,
        "json": json_cases,
        "template": template_cases,
    }


def _tar_header(name: bytes, size_field: bytes, typeflag: bytes = b"0") -> bytes:
    """A ustar header with a raw size field (what tarfile would never write) and a correct checksum."""
    h = bytearray(512)
    h[0 : len(name)] = name
    h[100:108] = b"0000644\0"
    h[124 : 124 + len(size_field)] = size_field
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + b"\0" * 1024


def _st(header: dict, data_len: int) -> bytes:
    return _st_raw(json.dumps(header).encode(), data_len)


def _st_raw(header: bytes, data_len: int = 0) -> bytes:
    return struct.pack("<Q", len(header)) + header + b"\0" * data_len


def _npy(header: str) -> bytes:
    h = header.encode("latin1")
    pad = (64 - (10 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def _deep_onnx(depth: int) -> bytes:
    """ModelProto.graph -> node -> attribute(g=subgraph) -> node ... nested ``depth`` times."""

    def ld(field: int, payload: bytes) -> bytes:
        return bytes([(field << 3) | 2]) + _varint(len(payload)) + payload

    graph = b""
    for _ in range(depth):
        attr = ld(1, b"body") + ld(6, graph) + bytes([20 << 3]) + _varint(5)  # name, g, type=GRAPH
        node = ld(4, b"Loop") + ld(5, attr)
        graph = ld(1, node)
    return bytes([1 << 3]) + _varint(8) + ld(7, graph)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main() -> None:
    for target, items in cases().items():
        d = OUT / target
        d.mkdir(parents=True, exist_ok=True)
        for name, data in items.items():
            (d / f"hand-{name}").write_bytes(data)


if __name__ == "__main__":
    main()
