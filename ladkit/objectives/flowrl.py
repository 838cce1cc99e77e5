"""FlowRL (Zhu et al. 2025): reward-weighted flow balancing with a learned partition function.

Per sequence, the squared trajectory-balance residual

    delta = log Z_phi(x) + mean_t log pi_theta - beta * A - mean_t log pi_ref
    loss  = w * delta^2,   w = stopgrad(min(pi_theta(y) / pi_old(y), importance_clip))

Log-probs are length-normalised (means over the response tokens) as in the published code, which
uses beta = 15 on GRPO advantages. log Z_phi(x) is computed by the caller (a small MLP head on the mean
prompt hidden state in the trainer, a scalar in the bandit) and arrives here as a tensor [N], so the
objective stays a pure function. Without `ref_logprobs`, pi_ref := pi_old (docs/design.md 2.6: with
f = x log x and beta = 1/eta, FlowRL's expected gradient is then twice LAD's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.common import check_inputs, compute_dtype, masked_means, ratio_metrics, token_log_ratio
from ladkit.types import ObjectiveOutput


@dataclass
class FlowRLConfig:
    """Hyperparameters of the FlowRL objective."""

    beta: float = 15.0
    """Reward scale inside the residual (the published code: 15 on GRPO advantages)."""
    importance_clip: float | None = 10.0
    """Upper clip of the detached sequence importance weight; None leaves it unclipped."""

    def __post_init__(self) -> None:
        if not 0 < self.beta < float("inf"):
            raise LadkitError(f"FlowRL beta must be a finite number > 0, got {self.beta}")
        if self.importance_clip is not None and not 0 < self.importance_clip < float("inf"):
            raise LadkitError(f"FlowRL importance_clip must be > 0 or unset, got {self.importance_clip}")


def flowrl_loss(
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: FlowRLConfig | None = None,
    ref_logprobs: torch.Tensor | None = None,  # [N, T]; defaults to old_logprobs
    log_z: torch.Tensor | None = None,  # [N] learned log partition of each sequence's prompt
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-sequence ([N]) importance-weighted squared trajectory-balance residual."""
    config = config or FlowRLConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    if log_z is None or log_z.shape != advantages.shape:
        raise LadkitError("FlowRL needs log_z of shape [N] (the log-partition head's output); pass log_z")
    dtype = compute_dtype(logprobs)
    valid_tok = mask.bool()
    lengths = valid_tok.sum(-1).clamp(min=1).to(dtype)  # [N]
    ref = old_logprobs if ref_logprobs is None else ref_logprobs
    mean_logp = torch.where(valid_tok, logprobs.to(dtype), 0.0).sum(-1) / lengths  # [N]
    mean_ref = torch.where(valid_tok, ref.to(dtype).detach(), 0.0).sum(-1) / lengths  # [N]
    delta = log_z.to(dtype) + mean_logp - config.beta * advantages.to(dtype).detach() - mean_ref  # [N]
    seq_log_ratio = token_log_ratio(logprobs, old_logprobs, mask).sum(-1).detach()  # [N]
    cap = math.log(config.importance_clip) if config.importance_clip is not None else 30.0
    weight = torch.exp(seq_log_ratio.clamp(max=min(cap, 30.0)))  # [N], detached
    valid = valid_tok.any(-1)  # [N]
    losses = torch.where(valid, weight * delta.square(), 0.0)  # [N]
    if not with_metrics:
        return ObjectiveOutput(losses=losses, level="sequence")
    metrics = {
        **masked_means(
            {"flowrl/residual_abs": delta.abs(), "flowrl/log_z_mean": log_z.to(dtype), "flowrl/weight_mean": weight},
            valid,
        ),
        **ratio_metrics(seq_log_ratio, valid),
    }
    return ObjectiveOutput(losses=losses, level="sequence", metrics=metrics)
