"""The PPO-clip surrogate per token with token-level advantages, and the config checks it shares.

    loss_t = max(-A_t r_t, -A_t clip(r_t, 1 - eps_low, 1 + eps_high))

ClipCov (Cui et al. 2025) and EntAdv (Cheng et al. 2025) both start from this surrogate; they differ
in what they do to it (drop a few tokens' gradient; shape A_t per token), so it lives here once.
GRPO's own surrogate (ladkit.objectives.grpo) is the same formula with A broadcast from [N].
"""

from __future__ import annotations

import math

import torch

from ladkit.errors import LadkitError


def check_epsilons(key: str, epsilon_low: float, epsilon_high: float) -> None:
    """Clip epsilons: finite low >= 0, high >= 0 (inf turns the upper clip off); errors name `key`."""
    if not (epsilon_low >= 0 and epsilon_high >= 0):
        raise LadkitError(f"{key}.epsilon_low/epsilon_high must be >= 0, got {epsilon_low} and {epsilon_high}")
    if not math.isfinite(epsilon_low):
        raise LadkitError(f"{key}.epsilon_low must be finite (epsilon_high = inf is how to turn the clip off)")


def check_fraction(key: str, value: float) -> None:
    """A selection ratio: a fraction of the batch's valid tokens, in (0, 1]."""
    if not 0 < value <= 1:
        raise LadkitError(f"{key} must be in (0, 1] (a fraction of the batch's tokens), got {value}")


def check_nonnegative(key: str, value: float) -> None:
    if not 0 <= value < math.inf:
        raise LadkitError(f"{key} must be a finite number >= 0, got {value}")


def clipped_surrogate(
    ratio: torch.Tensor,  # [N, T] r_t = pi_theta / pi_old
    advantages: torch.Tensor,  # [N, T] A_t, detached
    epsilon_low: float,
    epsilon_high: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(losses [N, T], clip_low [N, T], clip_high [N, T]): the surrogate and where each clip binds.

    max(-A r, -A clip(r)) takes the clipped term exactly where it is strictly larger: r > 1 + eps_high
    with A > 0, or r < 1 - eps_low with A < 0 (verl's `clip_by_origin`); there the loss is constant in
    theta, elsewhere it is -A r with gradient -A r grad log pi.
    """
    low, high = 1.0 - epsilon_low, 1.0 + epsilon_high
    clip_high = (ratio > high) & (advantages > 0)  # [N, T]
    clip_low = (ratio < low) & (advantages < 0)  # [N, T]
    bound = torch.where(clip_high, high, low)  # [N, T] the clip value that binds
    losses = -advantages * torch.where(clip_high | clip_low, bound, ratio)  # [N, T]
    return losses, clip_low, clip_high
