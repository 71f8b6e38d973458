"""Resource limits for hostile input. Hitting one is a finding, never a silent pass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_depth: int = 5  # nested containers (zip in 7z in gzip ...)
    max_members: int = 10_000  # per archive
    max_total_uncompressed: int = 8 << 30  # one byte budget shared across all nesting of one file
    max_ratio: int = 200  # per-entry compression ratio
    max_member_in_memory: int = 512 << 20  # a compressed member we must inflate to inspect
    max_pickle_opcodes: int = 10_000_000
    max_pickle_stack: int = 100_000
    max_pickle_memo: int = 1_000_000
    max_pickle_nesting: int = 4  # pickle-in-pickle recursion
    max_pickle_memory: int = 80 << 20  # symbolic state the walker may retain (~130k tensors in one data.pkl)
    max_json_bytes: int = 100_000_000
    max_protobuf_bytes: int = 2 << 30
    max_onnx_structure_bytes: int = 16 << 20  # ONNX graph structure kept in memory (tensor data is never read);
    # parsing costs ~6x this, real graphs without weights are a few MB
    max_graph_recursion: int = 64
    max_nodes: int = 1_000_000
    max_string: int = 16 << 20
    evidence_chars: int = 4_000  # size cap for decompiled/evidence text in reports
    fickling_seconds: float = 5.0
    file_seconds: float = 300.0  # wall-clock budget per top-level file


DEFAULT_LIMITS = Limits()
