"""Metrics of one training step, computed from the rollout batch and the recomputed log-probs, and the
tracked prompts: a fixed handful of held-out prompts whose per-group distributions are recorded each step.

Keys are documented once, in the README's glossary. The metric maths lives in ladkit.metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ladkit.metrics import dist_n, distinct_correct_answers, group_distributions, pass_at_k, zero_variance_frac
from ladkit.training import collect
from ladkit.training.batch import RolloutBatch
from ladkit.training.data import sample_seed
from ladkit.training.optimise import recompute

__all__ = ["pass_at_k"]  # re-exported: older callers import it from here

TRACKED_SEED_OFFSET = 2  # training rollouts use seed, evaluation seed + 1: tracked samples never share theirs


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


def is_correct(reward) -> bool:
    """The correctness convention of every accuracy metric: a reward above 0.5 (NaN and None are wrong)."""
    return reward is not None and reward > 0.5


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


@dataclass
class TrackedRollouts:
    """The tracked prompts' groups of one step, scored, with pi_old's sequence log-probs."""

    step: int
    batch: RolloutBatch
    old_sequence_logprobs: torch.Tensor  # [N]


def tracked_due(config, step: int, is_main: bool) -> bool:
    return bool(is_main and config.tracked_prompts and step % config.tracked_every == 0)


@torch.no_grad()
def track_before(ctx, step: int) -> TrackedRollouts | None:
    """Sample, score and get pi_old log-probs for the first `tracked_prompts` held-out prompts (before the
    step's update). No gradient, and the global RNG is restored so training does not see these draws."""
    config = ctx.config
    examples = list(ctx.task.eval_examples())[: config.tracked_prompts]
    if not tracked_due(config, step, ctx.info.is_main) or not examples:
        return None
    seeds = [sample_seed(config.seed + TRACKED_SEED_OFFSET, step, i) for i in range(len(examples))]
    with torch.random.fork_rng():
        groups = collect.generate(ctx.backend, [ctx.prompt_ids(e) for e in examples], config.group_size,
                                  config.rollout.sampling(), seeds)  # fmt: skip
    results = collect.score(ctx.task, groups, examples)
    batch = collect.build_batch(groups, results, examples, ctx.tokenizer.pad_token_id, config.advantage,
                                config.advantage_scale, ctx.tokenizer.decode).to(ctx.device)  # fmt: skip
    return TrackedRollouts(step, batch, _sequence_logprobs(ctx, batch))


def track_after(ctx, pending: TrackedRollouts | None) -> list[dict[str, Any]]:
    """One record a tracked prompt, with pi_theta (after the update) against the pi_old of track_before.

    eta is the LAD config's whatever the objective, so pictures of LAD, GRPO and FlowRL runs compare.
    """
    if pending is None:
        return []
    batch, g = pending.batch, ctx.config.group_size
    new = _sequence_logprobs(ctx, batch)  # [N]
    log_ratios = new - pending.old_sequence_logprobs  # [N]
    out = []
    for b in range(batch.num_sequences // g):
        rows = slice(b * g, (b + 1) * g)
        records = batch.records[rows]
        dists = group_distributions(batch.advantages[rows], log_ratios[rows], new[rows],
                                    ctx.config.lad.inverse_temperature)  # fmt: skip
        out.append({
            "step": pending.step, "example_id": records[0]["example_id"], "prompt": records[0]["prompt"],
            "completions": [r["completion"] for r in records], "rewards": batch.rewards[b].tolist(),
            "advantages": batch.advantages[rows].tolist(), **{k: v.tolist() for k, v in dists.items()},
        })  # fmt: skip
    return out


def _sequence_logprobs(ctx, batch: RolloutBatch) -> torch.Tensor:
    """log pi(y) summed over each response's tokens, for the current weights. [N]"""
    temperature = ctx.config.rollout.temperature
    old = recompute(ctx.model, batch, temperature, batch.num_sequences, share_prompts=ctx.share_prompts)
    return old.logprobs.sum(-1).double()  # [N, T] -> [N] (masked entries are exactly 0)
