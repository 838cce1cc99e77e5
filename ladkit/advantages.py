"""Advantage estimators by name: rewards [B, G] -> advantages [B, G].

    grpo     group z-score (r - mean_g) / (std_g + eps); `scale` = "group" (default), "batch" or "none"
    dr_grpo  group mean-centred r - mean_g (Dr. GRPO drops the std division)
    rloo     leave-one-out baseline r_i - mean_{j != i} r_j = G/(G-1) (r_i - mean_g)
    none     the rewards themselves

A group whose rewards are all equal carries no signal: every estimator but `none` gives it exact
zeros (never NaN). The std is the unbiased one, as in TRL, with eps = 1e-4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ladkit.errors import LadkitError
from ladkit.registry import Registry

EPS = 1e-4
Estimator = Callable[..., torch.Tensor]
ESTIMATORS: Registry[Estimator] = Registry("advantage estimator")


def _centred(rewards: torch.Tensor) -> torch.Tensor:
    centred = rewards - rewards.mean(dim=1, keepdim=True)  # [B, G]
    # The float mean of equal rewards can miss them by an ulp (seven 0.1s), and / (0 + eps) would blow
    # that up to ~1e-5..1e-1: zero the constant groups exactly instead.
    constant = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)  # [B, 1]
    return torch.where(constant, torch.zeros_like(centred), centred)


@ESTIMATORS.register("grpo")
def group_zscore(rewards: torch.Tensor, scale: str = "group") -> torch.Tensor:
    centred = _centred(rewards)  # [B, G]
    if scale == "group":
        std = rewards.std(dim=1, keepdim=True)  # [B, 1]
    elif scale == "batch":
        std = rewards.std().expand(rewards.shape[0], 1)  # [B, 1]
    elif scale == "none":
        return centred
    else:
        raise LadkitError(f"unknown advantage scale {scale!r}; valid: group, batch, none")
    return centred / (std + EPS)  # zero-variance group: 0 / eps = 0


@ESTIMATORS.register("dr_grpo")
def group_mean_centred(rewards: torch.Tensor) -> torch.Tensor:
    return _centred(rewards)


@ESTIMATORS.register("rloo")
def leave_one_out(rewards: torch.Tensor) -> torch.Tensor:
    g = rewards.shape[1]
    return _centred(rewards) * (g / (g - 1))  # [B, G]


@ESTIMATORS.register("none")
def raw_rewards(rewards: torch.Tensor) -> torch.Tensor:
    return rewards.clone()


def compute_advantages(name: str, rewards: torch.Tensor, **options) -> torch.Tensor:
    """Advantages [B, G] from rewards [B, G] with the named estimator (options: `scale` for grpo)."""
    estimator = ESTIMATORS.get(name)
    if rewards.dim() != 2:
        raise LadkitError(f"rewards must be [B, G] (prompts x samples), got shape {tuple(rewards.shape)}")
    if rewards.shape[1] < 2 and name != "none":
        raise LadkitError(f"group size must be >= 2 for the {name!r} estimator, got {rewards.shape[1]}")
    if not torch.isfinite(rewards).all():
        raise LadkitError("rewards contain NaN or inf; fix the reward function or drop those samples")
    return estimator(rewards.float() if not rewards.is_floating_point() else rewards, **options)
