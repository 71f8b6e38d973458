"""Resource limits for hostile input. Hitting one is a finding, never a silent pass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_depth: int = 5  # nested containers (zip in 7z in gzip ...)
    max_members: int = 10_000  # per archive
    max_total_uncompressed: int = 8 << 30  # one byte budget shared across all nesting of one file
    max_ratio: int = 200  # per-entry compression ratio
    max_member_in_memory: int = 512 << 20  # a member a parser must hold whole in memory (protobuf)
    max_member_inflated: int = 4 << 30  # one decompressed member/stream, spooled to disk past spool_memory
    spool_memory: int = 4 << 20  # decompressed bytes kept in memory before spilling to an unlinked temp file
    max_pickle_opcodes: int = 10_000_000
    max_pickle_stack: int = 100_000
    max_pickle_memo: int = 1_000_000
    max_pickle_nesting: int = 4  # pickle-in-pickle recursion
    max_pickle_memory: int = 48 << 20  # symbolic state the walker may retain (~75k tensors in one data.pkl);
    # real cost runs ~1.1x this (3M memoized dicts peaked at 156 MB with 80 MiB), so the process stays < 150 MB
    max_json_bytes: int = 100_000_000
    max_safetensors_header: int = 4 << 20  # real headers are < 1 MB; parsing costs ~15x the header bytes
    max_json_values: int = 500_000  # JSON values one document may make json.loads build (<= ~60 MB)
    max_protobuf_bytes: int = 2 << 30
    # ONNX graph structure kept in memory (tensor data is never read); real graphs without weights are a
    # few MB. Parsing costs per node and per field, not per byte: max_onnx_nodes/fields bound that
    max_onnx_structure_bytes: int = 16 << 20
    max_graph_recursion: int = 64
    max_onnx_nodes: int = 40_000  # ~1.1 KB each parsed and walked; big LLM exports have ~30k
    max_onnx_fields: int = 400_000  # fields of nodes/attributes/graphs (~8 per real node), ~60 B each
    max_nodes: int = 1_000_000
    max_string: int = 16 << 20
    max_gguf_array_strings: int = 4_000_000  # per file (real: ~256k tokens + ~500k merges)
    max_gguf_tensors: int = 65_536  # tensor infos kept (~300 B each); real files have < 5k
    max_gguf_kvs: int = 65_536  # key/values (keys <= 64 KiB are kept for duplicate checks); real files ~50
    evidence_chars: int = 4_000  # size cap for decompiled/evidence text in reports
    fickling_seconds: float = 5.0
    file_seconds: float = 300.0  # wall-clock budget per top-level file
    network_seconds: float = (
        600.0  # wall-clock network budget per remote file or API call (requests, retries,
    )
    # waits), extended by 1 s per network_budget_rate bytes received so big pulls on good links finish
    network_budget_rate: int = 64 << 10
    network_stall_seconds: float = 30.0  # a transfer below network_min_rate bytes/s for this long is stalled
    network_min_rate: int = 1024


DEFAULT_LIMITS = Limits()
