"""Tracked prompts: a fixed handful of held-out prompts whose G completions and per-group distributions
(pi_old, pi_theta after the update, the LAD target P_A) are recorded each step in tracked.jsonl.

Tracked samples use their own seeds (TRACKED_SEED_OFFSET), no gradient, and a forked RNG: training is the
same with tracking on or off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ladkit.metrics import group_distributions
from ladkit.scoring import generate
from ladkit.training import collect
from ladkit.training.batch import RolloutBatch
from ladkit.training.config import TrainConfig
from ladkit.training.data import sample_seed
from ladkit.training.optimise import recompute

if TYPE_CHECKING:
    from ladkit.training.setup import TrainContext

TRACKED_SEED_OFFSET = 2  # training rollouts use seed, evaluation seed + 1: tracked samples never share theirs


@dataclass
class TrackedRollouts:
    """The tracked prompts' groups of one step, scored, with pi_old's sequence log-probs."""

    step: int
    batch: RolloutBatch
    old_sequence_logprobs: torch.Tensor  # [N]


def tracked_due(config: TrainConfig, step: int, is_main: bool) -> bool:
    return bool(is_main and config.tracked_prompts and step % config.tracked_every == 0)


@torch.no_grad()
def track_before(ctx: TrainContext, step: int) -> TrackedRollouts | None:
    """Sample, score and get pi_old log-probs for the first `tracked_prompts` held-out prompts (before the
    step's update). No gradient, and the global RNG is restored so training does not see these draws."""
    config = ctx.config
    examples = list(ctx.task.eval_examples())[: config.tracked_prompts]
    if not tracked_due(config, step, ctx.info.is_main) or not examples:
        return None
    seeds = [sample_seed(config.seed + TRACKED_SEED_OFFSET, step, i) for i in range(len(examples))]
    with torch.random.fork_rng():
        prompts = [ctx.prompt_ids(e) for e in examples]
        groups = generate(ctx.backend, prompts, config.group_size, config.rollout.sampling(), seeds)
    batch = collect.scored_batch(ctx.task, groups, examples, ctx.tokenizer, config).to(ctx.device)
    return TrackedRollouts(step, batch, _sequence_logprobs(ctx, batch))


def track_after(ctx: TrainContext, pending: TrackedRollouts | None) -> list[dict[str, Any]]:
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
        dists = group_distributions(
            batch.advantages[rows], log_ratios[rows], new[rows], ctx.config.lad.inverse_temperature
        )
        out.append(
            {
                "step": pending.step,
                "example_id": records[0]["example_id"],
                "prompt": records[0]["prompt"],
                "completions": [r["completion"] for r in records],
                "rewards": batch.rewards[b].tolist(),
                "advantages": batch.advantages[rows].tolist(),
                **{k: v.tolist() for k, v in dists.items()},
            }
        )
    return out


def _sequence_logprobs(ctx: TrainContext, batch: RolloutBatch) -> torch.Tensor:
    """log pi(y) summed over each response's tokens, for the current weights. [N]"""
    temperature = ctx.config.rollout.temperature
    old = recompute(ctx.model, batch, temperature, batch.num_sequences, shared_prompt_pass=ctx.shared_prompt_pass)
    return old.logprobs.sum(-1).double()  # [N, T] -> [N] (masked entries are exactly 0)
