"""RolloutBatch.to moves every tensor it holds: on a GPU, a field left on the CPU (rewards once was) makes the
step's metrics fail with "Expected all tensors to be on the same device". The meta device stands in for a GPU."""

import dataclasses

import torch

from ladkit.rollout.base import Completion, RolloutGroup
from ladkit.tasks.base import Example, RewardResult
from ladkit.training.batch import RolloutBatch
from ladkit.training.collect import build_batch

torch.set_num_threads(1)


def _batch() -> RolloutBatch:
    groups = [
        RolloutGroup([1, 2], [Completion([3, 4], "ab", [-0.1, -0.2], "stop"), Completion([5], "c", [-0.3], "length")]),
        RolloutGroup([6], [Completion([7], "d", [-0.4], "stop"), Completion([8, 9, 10], "efg", [-1.0] * 3, "stop")]),
    ]
    results = [[RewardResult(1.0), RewardResult(0.0)], [RewardResult(float("nan")), RewardResult(0.5)]]
    examples = [Example("e0", "p0"), Example("e1", "p1")]
    return build_batch(groups, results, examples, 0, "grpo", "group", lambda ids: "x" * len(ids))


def test_to_moves_every_tensor_field():
    batch = _batch()
    tensor_fields = [f.name for f in dataclasses.fields(batch) if isinstance(getattr(batch, f.name), torch.Tensor)]
    # every tensor the dataclass declares is present here (valid too: one reward is NaN)
    assert set(tensor_fields) == {
        "input_ids",
        "attention_mask",
        "response_mask",
        "sampler_logprobs",
        "rewards",
        "advantages",
        "group_index",
        "valid",
    }
    moved = batch.to(torch.device("meta"))
    assert {name: getattr(moved, name).device.type for name in tensor_fields} == dict.fromkeys(tensor_fields, "meta")
    assert moved.records and moved.prompt_length == 2  # non-tensors untouched


def test_rows_of_a_moved_batch_stay_on_its_device():
    batch = _batch().to(torch.device("meta"))
    part = batch.rows(torch.tensor([1, 2]))
    assert part.input_ids.device.type == part.valid.device.type == part.rewards.device.type == "meta"
    assert part.input_ids.shape == (2, batch.input_ids.shape[1])
