"""Which prompts each step trains on: a stateless, seeded order over the training examples.

Step s takes the global positions s*B .. s*B+B-1 of an endless stream made of one shuffled permutation
of the data set per epoch (seeded by (seed, epoch)). Being a pure function of (seed, step), the order is
the same after `--resume`, including across epoch boundaries, and on every process: under DDP each rank
takes its contiguous shard of the step's B prompts.
"""

from __future__ import annotations

import torch

from ladkit.errors import LadkitError


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator).tolist()


def step_indices(num_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Global example indices for (0-based) `step`: B of them, wrapping into the next epoch's order."""
    if num_examples < 1:
        raise LadkitError("the task has no training examples; check the data set and its field mapping")
    indices, position = [], step * batch_size
    while len(indices) < batch_size:
        epoch, offset = divmod(position, num_examples)
        take = min(batch_size - len(indices), num_examples - offset)
        indices += epoch_permutation(num_examples, seed, epoch)[offset : offset + take]
        position += take
    return indices


def shard(items: list, rank: int, world_size: int) -> list:
    """Rank `rank`'s contiguous share of `items` (the global batch must divide evenly)."""
    if len(items) % world_size:
        raise LadkitError(
            f"prompts_per_step ({len(items)}) must be divisible by the number of processes ({world_size})"
        )
    size = len(items) // world_size
    return items[rank * size : (rank + 1) * size]


def sample_seed(seed: int, step: int, index: int) -> int:
    """Sampling seed of one prompt of one step: independent of batching, sharding and resume."""
    return (seed * 1_000_003 + step * 10_007 + index) % (2**31 - 1)
