"""Tracked-group distributions for a TRL run, in ladkit's tracked.jsonl form (training/tracking.py).

ladkit's trainer tracks held-out prompts with their own samples. TRL samples nothing outside its training batch,
so a TRL run tracks the first training group of each step (its prompt changes every step; example_id
`trl-train-group`): the G completions with pi_old's sequence log-probs at sampling time and pi_theta's after the
step's updates, giving the advantage-induced distribution softmax(A/eta) against the policy-induced
softmax(log pi_theta - log pi_old) (ladkit.metrics.group_distributions), as ladkit records them. Only the main
process computes it, with one extra no-grad forward of G rows after the step; not under FSDP or DeepSpeed, where a
forward on one process alone would wait for the others' shards forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ladkit.metrics import group_distributions
from ladkit.objectives import LADConfig

EXAMPLE_ID = "trl-train-group"


@dataclass
class PendingGroup:
    """One training group between its sampling and the end of its step's updates."""

    input_ids: torch.Tensor  # [G, P + T]
    attention_mask: torch.Tensor  # [G, P + T]
    completion_mask: torch.Tensor  # [G, T]
    old_sequence_logprobs: torch.Tensor  # [G]
    advantages: torch.Tensor  # [G]
    prompt: str
    completions: list[str]
    rewards: list[float]


def can_track(trainer) -> bool:
    return bool(trainer.accelerator.is_main_process and not (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled))


@torch.no_grad()
def sequence_logprobs(trainer, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """log pi(y) of each completion under the trainer's current weights, summed over its tokens. [G]"""
    logprobs, _, _ = trainer._get_per_token_logps_and_entropies(
        trainer.model, input_ids, attention_mask, completion_mask.size(1)
    )  # [G, T]
    return torch.where(completion_mask.bool(), logprobs, 0.0).sum(-1).double()


def track_before(trainer, output: dict[str, Any], prompts: list[str], texts: list[str], rewards) -> PendingGroup | None:
    """The first group of this process's batch (its G rows share one prompt), with pi_old's sequence log-probs."""
    size = trainer.num_generations
    if len(prompts) < size or len(set(prompts[:size])) != 1:
        return None
    rows = slice(0, size)
    input_ids = torch.cat([output["prompt_ids"][rows], output["completion_ids"][rows]], dim=1)  # [G, P + T]
    attention_mask = torch.cat([output["prompt_mask"][rows], output["completion_mask"][rows]], dim=1)
    completion_mask = output["completion_mask"][rows]  # [G, T]
    old = output.get("old_per_token_logps")  # [N, T] when TRL kept pi_old; else the weights have not moved yet
    if old is not None:
        old_sequence = torch.where(completion_mask.bool(), old[rows], 0.0).sum(-1).double()  # [G]
    else:
        old_sequence = sequence_logprobs(trainer, input_ids, attention_mask, completion_mask)
    return PendingGroup(
        input_ids, attention_mask, completion_mask, old_sequence, output["advantages"][rows].detach(),
        prompts[0], texts[:size], [float(r) for r in rewards[:size]],
    )  # fmt: skip


def track_after(trainer, pending: PendingGroup, step: int) -> dict[str, Any]:
    """One tracked.jsonl record: the group with its distributions after the step's updates."""
    new = sequence_logprobs(trainer, pending.input_ids, pending.attention_mask, pending.completion_mask)  # [G]
    config = trainer.objective_config if isinstance(trainer.objective_config, LADConfig) else LADConfig()
    dists = group_distributions(
        pending.advantages.cpu(), (new - pending.old_sequence_logprobs).cpu(), new.cpu(), config.inverse_temperature
    )  # eta is the LAD config's whatever the objective, as in ladkit's trainer
    return {
        "step": step,
        "example_id": EXAMPLE_ID,
        "prompt": pending.prompt,
        "completions": pending.completions,
        "rewards": pending.rewards,
        "advantages": pending.advantages.tolist(),
        **{key: value.tolist() for key, value in dists.items()},
    }
