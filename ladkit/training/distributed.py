"""Multi-process training through the launcher (torchrun / accelerate launch), not home-made process code.

Both launchers export RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; when WORLD_SIZE > 1 we join
the process group (NCCL on GPUs, gloo on CPUs) and, by `distributed.strategy`:
- ddp (default): wrap the policy in DistributedDataParallel, so gradients are averaged across ranks;
- fsdp: shard it with torch FSDP2 (`fully_shard` on each transformer block, then the root), the frozen base
  and the adapter alike, so each rank holds 1/world of every weight, gradient and optimiser state.
Under fsdp the parameters are gathered (`unshard`) for everything but the update: rollouts, pi_old, tracked
prompts, evaluation and weight sync (each rank's vLLM engine reads the gathered tensors through
`models.loading.current_state_dict`) then run on full weights without collectives, so ranks may generate
different lengths and the main process may run its forwards alone; `reshard` before the update gives the
memory back. Checkpoints hold the gathered adapter and the gathered optimiser state (written by rank 0, in
the same files as ddp's), and a resume shards them again (`load_sharded`). Everything else in the loop is
rank-agnostic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ladkit.errors import LadkitError
from ladkit.models.loading import fsdp_modules


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup() -> DistInfo:
    """Join the process group if the launcher started several processes."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)


def device_for(info: DistInfo) -> torch.device:
    return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")


STRATEGIES = ("ddp", "fsdp")


def wrap(model: torch.nn.Module, info: DistInfo, strategy: str = "ddp") -> torch.nn.Module:
    """DDP-wrap for training (generation and saving use the unwrapped model); under fsdp the model, sharded in
    place by `shard`, is its own training module, gathered here for the first rollout (after the optimiser
    took the sharded parameters)."""
    if info.world_size == 1:
        return model
    if strategy == "fsdp":
        unshard(model)
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.local_rank] if torch.cuda.is_available() else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over ranks (identity on one process)."""
    if info.world_size == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if torch.cuda.is_available():
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / info.world_size).tolist()))


def all_gather_list(items: list, info: DistInfo) -> list:
    """Every rank's `items`, concatenated in rank order (the list itself on one process)."""
    if info.world_size == 1:
        return items
    gathered: list = [None] * info.world_size
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def barrier(info: DistInfo) -> None:
    if info.world_size > 1:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group: every process calls it once, at the end of training (after a barrier on a
    normal end, so none tears its connections down while another still uses them)."""
    if info.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def shard(model: torch.nn.Module, info: DistInfo, strategy: str) -> torch.nn.Module:
    """FSDP2 in place: `fully_shard` each transformer block (the model's `_no_split_modules` classes), then the
    root. Nothing for ddp or one process. Build the optimiser afterwards (sharding replaces the parameters),
    before `wrap` gathers them for sampling (gathered parameters are temporary buffers)."""
    if info.world_size == 1 or strategy != "fsdp":
        return model
    from torch.distributed.fsdp import fully_shard

    blocks = set(getattr(model, "_no_split_modules", None) or ())
    for module in list(model.modules()):
        if type(module).__name__ in blocks:
            fully_shard(module)
    fully_shard(model)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    return bool(fsdp_modules(model))


def unshard(model: torch.nn.Module) -> None:
    """Gather every sharded module's parameters and keep them gathered through forwards (no collectives until
    `reshard`): called by every rank at once. Nothing for an unsharded model or one already gathered."""
    for module in fsdp_modules(model):
        module.unshard()
        module.set_reshard_after_forward(False)


def reshard(model: torch.nn.Module) -> None:
    """Free the gathered parameters (before the update, whose forwards gather block by block)."""
    for module in fsdp_modules(model):
        module.reshard()
        module.set_reshard_after_forward(True)


class FullState:
    """The model and optimiser as checkpoint.save / load_state see them under fsdp: the gathered adapter (or
    full weights) and optimiser state, built on every rank at once (`gather`), held on rank 0 only."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.model, self.optimizer = model, optimizer
        self.weights: dict = {}
        self.optimizer_state: dict = {}

    def gather(self) -> FullState:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        self.weights = get_model_state_dict(self.model, options=options)  # trainable weights, model names
        self.optimizer_state = get_optimizer_state_dict(self.model, self.optimizer, options=options)
        unshard(self.model)  # reading the state dicts reshards the root: gather again for what samples next
        return self

    def save_pretrained(self, folder: Path) -> None:
        """The model's own save (peft: the adapter files) of the gathered weights."""
        self.model.save_pretrained(folder, state_dict=self.weights)

    def state_dict(self) -> dict:
        """The gathered optimiser state (parameter names as keys, plain tensors: loads with weights_only)."""
        return self.optimizer_state

    def load_state_dict(self, state: dict) -> None:
        """Shard a gathered optimiser state back onto this rank's parameters."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(self.model, self.optimizer, state, options=StateDictOptions(full_state_dict=True))


def load_sharded(model: torch.nn.Module, optimizer: torch.optim.Optimizer, folder: Path, scheduler, heads) -> None:
    """Resume under fsdp: every rank reads the checkpoint's adapter (or full weights) and optimiser state and
    keeps its shard of each."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from ladkit.training import checkpoint

    state = {key: value for file in checkpoint.weight_files(folder) for key, value in load_file(file).items()}
    adapter = getattr(model, "active_adapter", None)
    if adapter is not None:  # peft files drop the adapter name: lora_A.weight is lora_A.<adapter>.weight here
        names = {key.replace(f".{adapter}.", "."): key for key in model.state_dict() if f".{adapter}." in key}
        missing = [key for key in state if key not in names]
        if missing:
            raise LadkitError(
                f"checkpoint {folder} has {len(missing)} weights the model lacks, e.g. {missing[0]}; delete it to "
                "fall back to an earlier checkpoint"
            )
        state = {names[key]: value for key, value in state.items()}
    reshard(model)
    set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, strict=False))
    checkpoint.load_state(folder, FullState(model, optimizer), scheduler, heads)
    unshard(model)


def agreed_max(value: int, model: torch.nn.Module) -> int:
    """The largest `value` over ranks when the model is sharded (every rank must then run the same number of
    forwards: micro-batches are sized from the widest rank's batch); the value itself otherwise."""
    if not is_sharded(model):
        return value
    tensor = torch.tensor([value], device="cuda" if torch.cuda.is_available() else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())
