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
with their fields as arguments. The fix is profile data (the benign-sweep engineer's files), hence xfail here:
add those 11 globals (module paths as in the file: torch.distributed.tensor:DTensor,
torch.distributed.tensor._dtensor_spec:{DTensorSpec,TensorMeta,ShardOrderEntry},
torch.distributed.device_mesh:DeviceMesh, torch.distributed._mesh_layout:{_MeshLayout,_FlatLayout},
torch.distributed.tensor.placement_types:{Shard,Replicate,Partial,_StridedShard}) to a default profile with audit
constraint newobj-only, and let gadgets.yaml's _rebuild_wrapper_subclass accept DTensor as its class.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.findings import Severity
from tests.harness import inspect_file

SAMPLE = Path(__file__).parent / "data" / "redteam9_dtensor_state_dict.pt"


@pytest.mark.xfail(
    strict=True, reason="profile data: DTensor safe globals (signatures/pickle/profiles, benign sweep)"
)
def test_real_dtensor_state_dict_that_weights_only_loads_is_allowed() -> None:
    fr = inspect_file(SAMPLE)
    above = [(f.rule_id, f.message[:120]) for f in fr.findings if f.severity > Severity.LOW]
    assert not above, above


def test_dtensor_state_dict_is_read_in_full() -> None:
    fr = inspect_file(SAMPLE)
    assert fr.format == "pytorch-zip" and fr.coverage == "full"
