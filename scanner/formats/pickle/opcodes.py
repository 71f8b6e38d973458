"""The pickle opcode table (protocols 0-5), as the C unpickler reads them.

Each opcode maps to the shape of its inline argument. The walker decodes
arguments itself (never via ``pickletools``) so that it can bound every
declared length against the bytes that remain before reading anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Arg(Enum):
    NONE = 0
    U1 = 1  # unsigned byte
    U2 = 2  # unsigned 16-bit LE
    U4 = 3  # unsigned 32-bit LE
    I4 = 4  # signed 32-bit LE
    U8 = 5  # unsigned 64-bit LE
    F8 = 6  # big-endian double
    LINE = 7  # one '\n'-terminated line
    TWO_LINES = 8  # GLOBAL / INST: module line, name line
    BYTES_U1 = 9  # length u1, then bytes
    BYTES_U4 = 10  # length u4, then bytes
    BYTES_I4 = 11  # length i4 (negative = error), then bytes
    BYTES_U8 = 12  # length u8, then bytes


@dataclass(frozen=True)
class Op:
    code: int
    name: str
    arg: Arg
    proto: int


_TABLE: list[tuple[int | str, str, Arg, int]] = [
    # protocol 0
    ("(", "MARK", Arg.NONE, 0),
    (".", "STOP", Arg.NONE, 0),
    ("0", "POP", Arg.NONE, 0),
    ("1", "POP_MARK", Arg.NONE, 1),
    ("2", "DUP", Arg.NONE, 0),
    ("F", "FLOAT", Arg.LINE, 0),
    ("I", "INT", Arg.LINE, 0),
    ("L", "LONG", Arg.LINE, 0),
    ("N", "NONE", Arg.NONE, 0),
    ("P", "PERSID", Arg.LINE, 0),
    ("R", "REDUCE", Arg.NONE, 0),
    ("S", "STRING", Arg.LINE, 0),
    ("V", "UNICODE", Arg.LINE, 0),
    ("a", "APPEND", Arg.NONE, 0),
    ("b", "BUILD", Arg.NONE, 0),
    ("c", "GLOBAL", Arg.TWO_LINES, 0),
    ("d", "DICT", Arg.NONE, 0),
    ("g", "GET", Arg.LINE, 0),
    ("i", "INST", Arg.TWO_LINES, 0),
    ("l", "LIST", Arg.NONE, 0),
    ("p", "PUT", Arg.LINE, 0),
    ("s", "SETITEM", Arg.NONE, 0),
    ("t", "TUPLE", Arg.NONE, 0),
    # protocol 1
    ("J", "BININT", Arg.I4, 1),
    ("K", "BININT1", Arg.U1, 1),
    ("M", "BININT2", Arg.U2, 1),
    ("Q", "BINPERSID", Arg.NONE, 1),
    ("T", "BINSTRING", Arg.BYTES_I4, 1),
    ("U", "SHORT_BINSTRING", Arg.BYTES_U1, 1),
    ("X", "BINUNICODE", Arg.BYTES_U4, 1),
    ("}", "EMPTY_DICT", Arg.NONE, 1),
    ("e", "APPENDS", Arg.NONE, 1),
    ("h", "BINGET", Arg.U1, 1),
    ("j", "LONG_BINGET", Arg.U4, 1),
    ("]", "EMPTY_LIST", Arg.NONE, 1),
    ("o", "OBJ", Arg.NONE, 1),
    ("q", "BINPUT", Arg.U1, 1),
    ("r", "LONG_BINPUT", Arg.U4, 1),
    ("u", "SETITEMS", Arg.NONE, 1),
    (")", "EMPTY_TUPLE", Arg.NONE, 1),
    ("G", "BINFLOAT", Arg.F8, 1),
    # protocol 2
    (0x80, "PROTO", Arg.U1, 2),
    (0x81, "NEWOBJ", Arg.NONE, 2),
    (0x82, "EXT1", Arg.U1, 2),
    (0x83, "EXT2", Arg.U2, 2),
    (0x84, "EXT4", Arg.I4, 2),
    (0x85, "TUPLE1", Arg.NONE, 2),
    (0x86, "TUPLE2", Arg.NONE, 2),
    (0x87, "TUPLE3", Arg.NONE, 2),
    (0x88, "NEWTRUE", Arg.NONE, 2),
    (0x89, "NEWFALSE", Arg.NONE, 2),
    (0x8A, "LONG1", Arg.BYTES_U1, 2),
    (0x8B, "LONG4", Arg.BYTES_I4, 2),
    # protocol 3
    ("B", "BINBYTES", Arg.BYTES_U4, 3),
    ("C", "SHORT_BINBYTES", Arg.BYTES_U1, 3),
    # protocol 4
    (0x8C, "SHORT_BINUNICODE", Arg.BYTES_U1, 4),
    (0x8D, "BINUNICODE8", Arg.BYTES_U8, 4),
    (0x8E, "BINBYTES8", Arg.BYTES_U8, 4),
    (0x8F, "EMPTY_SET", Arg.NONE, 4),
    (0x90, "ADDITEMS", Arg.NONE, 4),
    (0x91, "FROZENSET", Arg.NONE, 4),
    (0x92, "NEWOBJ_EX", Arg.NONE, 4),
    (0x93, "STACK_GLOBAL", Arg.NONE, 4),
    (0x94, "MEMOIZE", Arg.NONE, 4),
    (0x95, "FRAME", Arg.U8, 4),
    # protocol 5
    (0x96, "BYTEARRAY8", Arg.BYTES_U8, 5),
    (0x97, "NEXT_BUFFER", Arg.NONE, 5),
    (0x98, "READONLY_BUFFER", Arg.NONE, 5),
]

OPCODES: dict[int, Op] = {}
for _code, _name, _arg, _proto in _TABLE:
    _c = ord(_code) if isinstance(_code, str) else _code
    OPCODES[_c] = Op(_c, _name, _arg, _proto)

#: byte -> Op for O(1) lookup in the hot loop (None = not an opcode)
BY_BYTE: tuple[Op | None, ...] = tuple(OPCODES.get(i) for i in range(256))

HIGHEST_PROTOCOL = 5
PROTO = 0x80
STOP = ord(".")
