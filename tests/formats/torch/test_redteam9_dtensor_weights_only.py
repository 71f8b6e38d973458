"""Red team 9 (torch ``weights_only=True``): a real DTensor state dict, which torch 2.13 loads with the default
``torch.load(weights_only=True)`` and modelward blocks (a false alarm on real FSDP2 / tensor-parallel checkpoints).

``torch.distributed.tensor`` registers its classes with ``torch.serialization.add_safe_globals`` when imported (as
``torch.distributed.checkpoint`` and FSDP2 code do): DTensor, DeviceMesh, DTensorSpec, TensorMeta, ShardOrderEntry,
Shard, Replicate, Partial, _StridedShard, and ``torch.distributed.device_mesh`` adds _MeshLayout/_FlatLayout. The
file here is ``torch.save`` of ``{'w': distribute_tensor(randn(4, 4), mesh, [Shard(0)]), 'b': ...[Replicate()]}``
on a one-process gloo mesh (``data/redteam9_make_dtensor.py``, torch 2.13 cpu); ``import torch.distributed.tensor``
then ``torch.load(path, weights_only=True)`` returns both DTensors (confirmed in a throwaway venv). DeviceMesh's
``__setstate__`` only updates its dict and looks process groups up by name (no creation).

The shapes written: ``_rebuild_from_type_v2(_rebuild_wrapper_subclass, DTensor, (DTensor, dtype, size, stride,
offset, layout, device, requires_grad), {'_local_tensor': <tensor>, '_spec': DTensorSpec})``; DTensorSpec,
DeviceMesh, _MeshLayout, _FlatLayout, Shard, Replicate as NEWOBJ + BUILD; TensorMeta and ShardOrderEntry as NEWOBJ
with their fields as arguments. Profile ``torch-distributed-tensor`` allows those 11 globals (DTensor data-only:
only the class argument of the rebuild helpers, ``invoked: class`` in gadgets.yaml; the rest newobj-only).
"""

from __future__ import annotations

from pathlib import Path

from scanner.findings import Severity
from tests.harness import inspect_file

SAMPLE = Path(__file__).parent / "data" / "redteam9_dtensor_state_dict.pt"


def test_real_dtensor_state_dict_that_weights_only_loads_is_allowed() -> None:
    fr = inspect_file(SAMPLE)
    above = [(f.rule_id, f.message[:120]) for f in fr.findings if f.severity > Severity.LOW]
    assert not above, above


def test_dtensor_state_dict_is_read_in_full() -> None:
    fr = inspect_file(SAMPLE)
    assert fr.format == "pytorch-zip" and fr.coverage == "full"


def _rebuild_with(cls_module: str, cls_name: str) -> bytes:
    """``_rebuild_from_type_v2(_rebuild_wrapper_subclass, <cls>, (<cls>,), {})`` with a chosen class."""
    g = f"c{cls_module}\n{cls_name}\n".encode()
    return (
        b"\x80\x02ctorch._utils\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_wrapper_subclass\n"
        + g
        + b"("
        + g
        + b"t}tR."
    )


def test_dtensor_called_directly_still_blocks(tmp_path: Path) -> None:
    from tests.harness import scan_on_disk, verdict

    called = b"\x80\x02ctorch.distributed.tensor\nDTensor\n(tR."
    assert verdict(scan_on_disk(tmp_path, called, "called.pt")).value == "block"
    assert (
        verdict(
            scan_on_disk(tmp_path, _rebuild_with("torch.distributed.device_mesh", "DeviceMesh"), "mesh.pt")
        ).value
        == "block"
    )
