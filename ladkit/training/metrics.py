"""Metrics of one training step, computed from the rollout batch and the recomputed log-probs.

Keys are documented once, in the README's glossary.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from ladkit.training.batch import RolloutBatch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    mask = mask.bool()
    return float(torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1))


def rollout_metrics(batch: RolloutBatch) -> dict[str, float]:
    """Reward, its parts, group statistics, lengths and truncation of the sampled completions."""
    rewards, valid = batch.rewards, batch.valid.view_as(batch.rewards)  # [B, G] each
    lengths = batch.response_mask.sum(-1).float()  # [N]
    spread = rewards.max(1).values - rewards.min(1).values  # [B]
    metrics = {
        "reward/mean": masked_mean(rewards, valid),
        "reward/std": float(rewards[valid].std()) if int(valid.sum()) > 1 else 0.0,
        "reward/failed": float((~valid).sum()),
        "reward/zero_variance_frac": float((spread == 0).float().mean()),
        "advantage/mean": float(batch.advantages.mean()),
        "advantage/abs_max": float(batch.advantages.abs().max()),
        "completion/length_mean": float(lengths.mean()),
        "completion/length_max": float(lengths.max()),
        "completion/truncated_frac": sum(r["finish_reason"] == "length" for r in batch.records) / len(batch.records),
    }
    parts = defaultdict(list)
    for record in batch.records:
        for name, value in (record["parts"] or {}).items():
            parts[name].append(float(value))
    metrics.update({f"reward/{name}": sum(v) / len(v) for name, v in parts.items()})
    metrics["diversity/distinct_correct"] = distinct_correct(batch.records)
    return metrics


def distinct_correct(records: list[dict]) -> float:
    """Mean over prompts of the number of distinct correct answers (canonical `extracted` forms)."""
    by_prompt: dict[str, set] = defaultdict(set)
    prompts = set()
    for record in records:
        prompts.add(record["example_id"])
        if record["reward"] is not None and record["reward"] > 0.5 and record["extracted"] is not None:
            by_prompt[record["example_id"]].add(record["extracted"])
    return sum(len(v) for v in by_prompt.values()) / max(len(prompts), 1)


def policy_metrics(batch: RolloutBatch, old_logprobs: torch.Tensor, entropy: torch.Tensor) -> dict[str, float]:
    """Token entropy of the policy and the sampler-vs-trainer log-prob gap (should be ~0 in fp32)."""
    mask = batch.response_mask
    return {
        "policy/entropy": masked_mean(entropy, mask),
        "rollout/logprob_diff": masked_mean((old_logprobs - batch.sampler_logprobs).abs(), mask),
    }


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k)/C(n, k) in the stable product form (Chen et al. 2021)."""
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong
