"""One step's experience as tensors: scored rollout groups -> advantages -> a RolloutBatch.

Sampling and scoring are ladkit.scoring's (generate, score). Samples whose reward could not be computed
(the reward raised, timed out or returned NaN or a wrong type; ladkit.tasks.faults.score_safely turns each
of these into a NaN reward) are kept out of the group baseline and get
advantage 0; their count is a metric (`reward/failed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ladkit.advantages import compute_advantages
from ladkit.rollout.base import RolloutGroup
from ladkit.scoring import score
from ladkit.tasks.base import Example
from ladkit.training.batch import RolloutBatch, pad_groups
from ladkit.training.config import TrainConfig


def scored_batch(
    task, groups: Sequence[RolloutGroup], examples: Sequence[Example], tokenizer, config: TrainConfig
) -> RolloutBatch:
    """Score the groups with the task and pack them, with their advantages, into a RolloutBatch (on the CPU)."""
    results = score(task, groups, examples)
    pad_id, estimator, scale = tokenizer.pad_token_id, config.advantage, config.advantage_scale
    return build_batch(groups, results, examples, pad_id, estimator, scale, tokenizer.decode)


def advantages_for(rewards: torch.Tensor, valid: torch.Tensor, estimator: str, scale: str) -> torch.Tensor:
    """Advantages [B, G]; invalid samples are replaced by their group's valid mean before the estimator
    (so they do not move the baseline) and then zeroed."""
    counts = valid.sum(1, keepdim=True).clamp(min=1)  # [B, 1]
    mean = torch.where(valid, rewards, 0.0).sum(1, keepdim=True) / counts  # [B, 1]
    filled = torch.where(valid, rewards, mean)  # [B, G]
    options = {"scale": scale} if estimator == "grpo" else {}
    return torch.where(valid, compute_advantages(estimator, filled, **options), 0.0)  # [B, G]


def build_batch(groups, results, examples, pad_id: int, estimator: str, scale: str, decode) -> RolloutBatch:
    """Pad the rollouts into tensors and attach rewards, advantages and per-sample records."""
    rewards = torch.tensor([[_finite(r.reward) for r in row] for row in results], dtype=torch.float32)  # [B, G]
    valid = torch.isfinite(rewards)  # [B, G]
    rewards = torch.where(valid, rewards, 0.0)
    advantages = advantages_for(rewards, valid, estimator, scale)  # [B, G]
    input_ids, attention, response_mask, sampler, p = pad_groups(groups, pad_id)
    g = rewards.shape[1]
    records = []
    for b, (group, row, example) in enumerate(zip(groups, results, examples)):
        prompt = decode(group.prompt_ids)
        for j, (completion, result) in enumerate(zip(group.completions, row)):
            records.append(
                {
                    "example_id": example.id, "prompt": prompt, "completion": completion.text,
                    "reward": result.reward, "parts": result.parts, "reason": result.reason,
                    "extracted": result.extracted, "advantage": float(advantages[b, j]),
                    "length": len(completion.token_ids), "finish_reason": completion.finish_reason,
                }
            )  # fmt: skip
    return RolloutBatch(
        input_ids=input_ids,
        attention_mask=attention,
        response_mask=response_mask,
        sampler_logprobs=sampler,
        rewards=rewards,
        advantages=advantages.flatten(),  # [N]
        prompt_length=p,
        group_index=torch.arange(len(groups)).repeat_interleave(g),  # [N]
        records=records,
        valid=valid.flatten(),  # [N]
    )


def _finite(value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
