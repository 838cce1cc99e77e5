"""Metrics of one training step, computed from the rollout batch and pi_old's recomputed log-probs.

Keys are documented once, in the README's glossary. The metric maths lives in ladkit.metrics, the
correctness rule in ladkit.scoring; the tracked prompts are training/tracking.py's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from ladkit.metrics import dist_n, distinct_correct_answers, zero_variance_frac
from ladkit.scoring import is_correct
from ladkit.training.batch import RolloutBatch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    mask = mask.bool()
    return float(torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1))


def rollout_metrics(batch: RolloutBatch) -> dict[str, float]:
    """Reward, its parts, group statistics, lengths and truncation of the sampled completions."""
    rewards, valid = batch.rewards, batch.valid.view_as(batch.rewards)  # [B, G] each
    lengths = batch.response_mask.sum(-1).float()  # [N]
    metrics = {
        "reward/mean": masked_mean(rewards, valid),
        "reward/std": float(rewards[valid].std()) if int(valid.sum()) > 1 else 0.0,
        "reward/failed": float((~valid).sum()),
        "reward/zero_variance_frac": zero_variance_frac(rewards),
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
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_prompt[record["example_id"]].append(record)
    counts = [
        distinct_correct_answers([r["extracted"] for r in group], [is_correct(r["reward"]) for r in group])
        for group in by_prompt.values()
    ]
    return sum(counts) / max(len(counts), 1)


def diversity_metrics(records: list[dict], group_size: int, tokenize: Callable[[str], list]) -> dict[str, float]:
    """dist-3 and dist-4 within each group of G completions (records are grouped contiguously), averaged
    over groups: diversity across different prompts says nothing about the policy collapsing on one answer."""
    groups = [records[i : i + group_size] for i in range(0, len(records), group_size)]
    texts = [[r["completion"] for r in group] for group in groups]
    return {f"diversity/dist{n}": sum(dist_n(t, n, tokenize) for t in texts) / max(len(texts), 1) for n in (3, 4)}


def policy_metrics(batch: RolloutBatch, old_logprobs: torch.Tensor, entropy: torch.Tensor) -> dict[str, float]:
    """Token entropy of the policy and the sampler-vs-trainer log-prob gap (should be ~0 in fp32)."""
    mask = batch.response_mask
    return {
        "policy/entropy": masked_mean(entropy, mask),
        "rollout/logprob_diff": masked_mean((old_logprobs - batch.sampler_logprobs).abs(), mask),
    }
