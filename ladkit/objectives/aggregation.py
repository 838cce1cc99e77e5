"""Reduce unreduced losses ([N] per sequence or [N, T] per token) to the scalar that is backpropagated.

Token-level modes follow TRL's GRPO `loss_type` definitions:

    grpo     mean over tokens of each sequence, then mean over sequences
    bnpo     mean over all real tokens of the (micro-)batch
    dr_grpo  sum over tokens / (N * max_completion_length)      (Dr. GRPO, Liu et al. 2025)
    dapo     sum over tokens / tokens in the whole generation batch (DAPO; `num_tokens`, global)

Sequence-level losses are averaged over sequences (the mode does not apply). Optional per-sequence
`weights` [N] turn the mean into a weighted one; the bandit uses them to take the exact expectation
over arms under pi_old instead of a sample. Weights are rescaled to mean 1, so uniform weights
reproduce the unweighted formulas exactly.
"""

from __future__ import annotations

import torch

from ladkit.errors import LadkitError
from ladkit.types import ObjectiveOutput

AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")


def check_aggregation(mode: str) -> None:
    if mode not in AGGREGATIONS:
        raise LadkitError(f"unknown loss aggregation {mode!r}; valid: {', '.join(AGGREGATIONS)}")


def aggregate(
    output: ObjectiveOutput,
    mask: torch.Tensor,
    mode: str = "grpo",
    weights: torch.Tensor | None = None,
    max_completion_length: int | None = None,
    num_tokens: float | None = None,
) -> torch.Tensor:
    """Scalar loss from `output.losses` (see the module docstring for the modes)."""
    check_aggregation(mode)
    losses = output.losses
    n = losses.shape[0]
    if output.level == "sequence":
        return losses.mean() if weights is None else (weights * losses).sum() / weights.sum()
    m = mask.to(losses.dtype)  # [N, T]
    per_token = torch.where(mask.bool(), losses, 0.0)  # [N, T]; where() drops NaN padding
    w = None if weights is None else weights.to(losses.dtype) * (n / weights.sum())  # [N], mean 1
    if mode == "grpo":
        per_sequence = per_token.sum(-1) / m.sum(-1).clamp(min=1.0)  # [N]
        return per_sequence.mean() if w is None else (w * per_sequence).mean()
    if w is not None:
        per_token, m = per_token * w[:, None], m * w[:, None]  # [N, T] each
    if mode == "bnpo":
        return per_token.sum() / m.sum().clamp(min=1.0)
    if mode == "dr_grpo":
        return per_token.sum() / (n * (max_completion_length or losses.shape[1]))
    # dapo: normalise by the token count of the whole generation batch (across micro-batches and ranks)
    return per_token.sum() / (num_tokens if num_tokens is not None else m.sum().clamp(min=1.0))
