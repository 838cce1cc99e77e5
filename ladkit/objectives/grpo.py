"""GRPO (Shao et al. 2024) as TRL and verl implement it: the PPO-clip surrogate per token.

    loss_t = -min(r_t A, clip(r_t, 1 - eps_low, 1 + eps_high) A)  [+ beta * k3(pi_theta, pi_ref)]

with r_t = pi_theta / pi_old per token, A the sequence's advantage broadcast over its tokens. The
reference for the optional KL is the base model with the LoRA adapter disabled (no second model copy);
the trainer passes its log-probs as `ref_logprobs`. Reduction (grpo/bnpo/dr_grpo/dapo) is done by
`ladkit.objectives.aggregate` with `config.aggregation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import check_aggregation
from ladkit.objectives.common import check_inputs, masked_mean, masked_means, ratio_metrics, token_log_ratio
from ladkit.types import ObjectiveOutput


@dataclass
class GRPOConfig:
    """Hyperparameters of the GRPO objective (TRL names where they exist)."""

    epsilon_low: float = 0.2
    """Lower clip: ratios below 1 - epsilon_low stop receiving gradient for negative advantages."""
    epsilon_high: float = 0.2
    """Upper clip (DAPO's clip-higher uses 0.28). `inf` disables clipping."""
    beta: float = 0.0
    """Weight of the k3 KL to the reference policy; 0 (TRL's default) skips it."""
    aggregation: str = "grpo"
    """Token reduction: grpo, bnpo, dr_grpo or dapo (TRL's loss_type)."""

    def __post_init__(self) -> None:
        if not (self.epsilon_low >= 0 and self.epsilon_high >= 0):
            raise LadkitError(f"GRPO clip epsilons must be >= 0, got low={self.epsilon_low} high={self.epsilon_high}")
        if not 0 <= self.beta < float("inf"):
            raise LadkitError(f"GRPO beta (KL weight) must be a finite number >= 0, got {self.beta}")
        if not self.epsilon_low < float("inf"):
            raise LadkitError("GRPO epsilon_low must be finite (epsilon_high = inf is the way to turn the clip off)")
        check_aggregation(self.aggregation)


def grpo_loss(
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: GRPOConfig | None = None,
    ref_logprobs: torch.Tensor | None = None,  # [N, T], needed when beta > 0
    log_z: torch.Tensor | None = None,  # unused (FlowRL only)
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-token clipped surrogate [N, T] (and k3 KL when beta > 0)."""
    config = config or GRPOConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    log_ratio = token_log_ratio(logprobs, old_logprobs, mask)  # [N, T]
    ratio = torch.exp(log_ratio.clamp(max=30.0))  # [N, T]; the cap only guards against overflow
    adv = advantages.to(ratio.dtype).detach()[:, None]  # [N, 1]
    low, high = 1.0 - config.epsilon_low, 1.0 + config.epsilon_high
    # -min(r A, clip(r) A) picks the clipped term exactly where the clip binds: r above 1 + eps_high with
    # A > 0, or below 1 - eps_low with A < 0; there the loss is constant in theta (zero gradient).
    clip_high, clip_low = (ratio > high) & (adv > 0), (ratio < low) & (adv < 0)  # [N, T] each
    bound = torch.where(clip_high, high, low)  # [N, T] the clip value that binds
    losses = -adv * torch.where(clip_high | clip_low, bound, ratio)  # [N, T]
    valid = mask.bool()
    metrics: dict[str, torch.Tensor] = {}
    if with_metrics:
        metrics = _clip_metrics(clip_low.to(ratio.dtype), clip_high.to(ratio.dtype), valid) | ratio_metrics(
            log_ratio, valid
        )
    if config.beta > 0:
        if ref_logprobs is None:
            raise LadkitError("GRPO beta > 0 needs ref_logprobs; pass them or set beta=0")
        ref_gap = torch.where(valid, ref_logprobs.to(ratio.dtype).detach() - logprobs.to(ratio.dtype), 0.0)
        k3 = torch.expm1(ref_gap.clamp(max=30.0)) - ref_gap  # [N, T]; >= 0, unbiased for KL(pi||ref)
        losses = losses + config.beta * k3
        if with_metrics:
            metrics["kl/ref_k3"] = masked_mean(k3.detach(), valid)
    return ObjectiveOutput(losses=torch.where(valid, losses, 0.0), level="token", metrics=metrics)


def _clip_metrics(clip_low: torch.Tensor, clip_high: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """TRL's clip_ratio metrics: fractions of tokens where the clip, not the ratio, sets the loss."""
    fractions = {
        "grpo/clip_frac_low": clip_low,
        "grpo/clip_frac_high": clip_high,
        "grpo/clip_frac": clip_low + clip_high,
    }
    return masked_means(fractions, valid)
