"""Writes redteam9_dtensor_state_dict.pt (run with torch 2.13 cpu in a throwaway venv, from this folder)."""

import os

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard, distribute_tensor


def main() -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", RANK="0", WORLD_SIZE="1")
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (1,))
    sd = {
        "w": distribute_tensor(torch.randn(4, 4), mesh, [Shard(0)]),
        "b": distribute_tensor(torch.randn(4), mesh, [Replicate()]),
    }
    torch.save(sd, "redteam9_dtensor_state_dict.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
