"""EntAdv (Cheng et al. 2025, "Reasoning with Exploration: An Entropy Perspective", arXiv 2506.14758):
the PPO-clip surrogate with each token's advantage raised by a capped bonus from its entropy.

    psi_t = min(alpha * H_t, |A_t| / kappa)          H_t detached: the bonus carries no gradient
    A'_t  = A_t + psi_t
    loss_t = max(-A'_t r_t, -A'_t clip(r_t, 1 - eps_low, 1 + eps_high))

H_t = -sum_v pi_theta(v | y_<t) log pi_theta(v | y_<t) is the current policy's entropy at token t,
which the caller passes as `entropy` [N, T] (Needs.entropy = "detached"). The cap |A_t| / kappa with
kappa > 1 keeps the sign: for A_t < 0, A'_t <= A_t (1 - 1/kappa) < 0; for A_t = 0 there is no bonus.
So the shaping only re-weights the learning signal toward uncertain tokens (the paper: pivotal and
reflective tokens), it never turns a wrong answer into a rewarded one. Defaults alpha 0.4 and kappa 2
are the paper's; the clip and aggregation are GRPO's defaults here (0.2, 'grpo').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import check_aggregation
from ladkit.objectives.common import check_inputs, masked_means, ratio_metrics, token_log_ratio
from ladkit.objectives.surrogate import check_epsilons, check_nonnegative, clipped_surrogate
from ladkit.types import ObjectiveOutput


@dataclass
class EntAdvConfig:
    """Hyperparameters of EntAdv (the paper's alpha and kappa)."""

    alpha: float = 0.4
    """Scale of the entropy bonus alpha * H_t; 0 gives back the clipped GRPO surrogate."""
    kappa: float = 2.0
    """Cap: the bonus is at most |A_t| / kappa; kappa > 1 so it never flips or cancels A_t."""
    epsilon_low: float = 0.2
    """PPO lower clip (GRPO's default)."""
    epsilon_high: float = 0.2
    """PPO upper clip (GRPO's default). `inf` turns it off."""
    aggregation: str = "grpo"
    """Token reduction: grpo, bnpo, dr_grpo or dapo."""

    def __post_init__(self) -> None:
        check_nonnegative("ent_adv.alpha", self.alpha)
        if not 1 < self.kappa < math.inf:
            raise LadkitError(
                f"ent_adv.kappa must be a finite number > 1 (the bonus is capped at |A|/kappa, so it never "
                f"flips the advantage's sign), got {self.kappa}"
            )
        check_epsilons("ent_adv", self.epsilon_low, self.epsilon_high)
        check_aggregation(self.aggregation)


def entropy_bonus(
    advantages: torch.Tensor,  # [N, T] A_t
    entropy: torch.Tensor,  # [N, T] H_t
    alpha: float,
    kappa: float,
) -> torch.Tensor:
    """psi_t = min(alpha * H_t.detach(), |A_t| / kappa). [N, T]"""
    return torch.minimum(alpha * entropy.detach(), advantages.abs() / kappa)  # [N, T]


def ent_adv_loss(
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: EntAdvConfig | None = None,
    *,
    entropy: torch.Tensor | None = None,  # [N, T] current policy's token entropies (detached here)
    ref_logprobs: torch.Tensor | None = None,  # unused
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-token clipped surrogate on the entropy-shaped advantages A_t + psi_t. [N, T]"""
    config = config or EntAdvConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    if entropy is None or entropy.shape != logprobs.shape:
        got = "none" if entropy is None else f"shape {tuple(entropy.shape)}"
        raise LadkitError(f"ent_adv needs the policy's token entropies [N, T]={tuple(logprobs.shape)}, got {got}")
    valid = mask.bool()  # [N, T]
    log_ratio = token_log_ratio(logprobs, old_logprobs, mask)  # [N, T]
    ratio = torch.exp(log_ratio.clamp(max=30.0))  # [N, T]
    adv = advantages.to(ratio.dtype).detach()[:, None].expand_as(ratio)  # [N, T] A broadcast over tokens
    # padding may hold anything (NaN included): zero it before it meets the advantages
    token_entropy = torch.where(valid, entropy.detach().to(ratio.dtype), 0.0)  # [N, T]
    bonus = entropy_bonus(adv, token_entropy, config.alpha, config.kappa)  # [N, T] psi_t
    shaped = adv + bonus  # [N, T] A'_t = A_t + psi_t
    surrogate, clip_low, clip_high = clipped_surrogate(ratio, shaped, config.epsilon_low, config.epsilon_high)
    losses = torch.where(valid, surrogate, 0.0)  # [N, T]
    if not with_metrics:
        return ObjectiveOutput(losses=losses, level="token")
    fractions = {
        "ent_adv/bonus": bonus,
        "ent_adv/capped_frac": (config.alpha * token_entropy > adv.abs() / config.kappa).to(ratio.dtype),
        "ent_adv/entropy": token_entropy,
        "ent_adv/clip_frac": (clip_low | clip_high).to(ratio.dtype),
    }
    return ObjectiveOutput(
        losses=losses, level="token", metrics=masked_means(fractions, valid) | ratio_metrics(log_ratio, valid)
    )
