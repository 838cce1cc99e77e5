"""ClipCov and KLCov (Cui et al. 2025, "The Entropy Mechanism of Reinforcement Learning for Reasoning
Language Models", arXiv 2505.22617): restrain the few tokens whose covariance drives entropy down.

The paper's account: under a softmax policy the entropy changes, step to step, by about
-Cov(log pi(y_t), A_t); tokens that are both likely and advantaged (large positive covariance) collapse
the entropy. Per valid token of the batch

    C_t = (A_t - mean A) * (log pi_theta(y_t) - mean log pi_theta)        (means over valid tokens)

and the two methods act on a small fraction of tokens picked by C_t:

ClipCov  the PPO-clip surrogate; among tokens the clip leaves alone with w_low < C_t < w_high, pick
         max(1, int(clip_ratio * #valid)) uniformly at random and multiply their loss by 0 (no gradient).
KLCov    the unclipped surrogate -A_t r_t; for the max(1, int(kl_ratio * #valid)) tokens of largest
         C_t, add kl_coef * |log r_t|.

Defaults are the authors' (PRIME-RL/Entropy-Mechanism-of-RL recipes, merged into verl as the "clip_cov"
and "kl_cov" policy losses): clip_ratio 2e-4, w_low 1, w_high 5, the PPO clip at 1 +- 1 for ClipCov
(their scripts set clip_ratio_low = clip_ratio_high = 1), kl_ratio 2e-4 (their 32B recipe; the 7B one
uses 2e-3) and kl_coef 1, token-mean aggregation ('dapo' here). Advantages arrive per sequence [N] and
are broadcast over the response tokens, as GRPO's are. Means, counts and the pick are per call: per
micro-batch, as in verl. tests/unit/objectives/test_verl_parity.py checks equality with verl 0.9.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import check_aggregation
from ladkit.objectives.common import check_inputs, masked_mean, masked_means, ratio_metrics, token_log_ratio
from ladkit.objectives.surrogate import check_epsilons, check_fraction, check_nonnegative, clipped_surrogate
from ladkit.types import ObjectiveOutput


@dataclass
class ClipCovConfig:
    """Hyperparameters of ClipCov (the authors' defaults)."""

    clip_ratio: float = 2e-4
    """Fraction of the batch's valid tokens whose gradient is dropped (the paper's r), in (0, 1]."""
    covariance_low: float = 1.0
    """w_low: only tokens with covariance above this are candidates."""
    covariance_high: float = 5.0
    """w_high: only tokens with covariance below this are candidates (drops outliers)."""
    epsilon_low: float = 1.0
    """PPO lower clip; the authors' ClipCov scripts use 1 (the clip at 1 +- 1 rarely binds)."""
    epsilon_high: float = 1.0
    """PPO upper clip; the authors' ClipCov scripts use 1. `inf` turns it off."""
    aggregation: str = "dapo"
    """Token reduction (grpo, bnpo, dr_grpo, dapo); the authors' token-mean is 'dapo'."""

    def __post_init__(self) -> None:
        check_fraction("clip_cov.clip_ratio", self.clip_ratio)
        if not -math.inf < self.covariance_low < self.covariance_high < math.inf:
            raise LadkitError(
                f"clip_cov.covariance_low must be below clip_cov.covariance_high (both finite), "
                f"got {self.covariance_low} and {self.covariance_high}"
            )
        check_epsilons("clip_cov", self.epsilon_low, self.epsilon_high)
        check_aggregation(self.aggregation)


@dataclass
class KLCovConfig:
    """Hyperparameters of KLCov (the authors' defaults)."""

    kl_ratio: float = 2e-4
    """Fraction of the batch's valid tokens that get the penalty (the paper's k), in (0, 1]. The authors
    use 2e-4 for Qwen2.5-32B and 2e-3 for Qwen2.5-7B."""
    kl_coef: float = 1.0
    """beta, the weight of |log r_t| on the selected tokens (the authors' ppo_kl_coef = 1)."""
    aggregation: str = "dapo"
    """Token reduction (grpo, bnpo, dr_grpo, dapo); the authors' token-mean is 'dapo'."""

    def __post_init__(self) -> None:
        check_fraction("kl_cov.kl_ratio", self.kl_ratio)
        check_nonnegative("kl_cov.kl_coef", self.kl_coef)
        check_aggregation(self.aggregation)


def token_covariance(
    advantages: torch.Tensor,  # [N, T] A_t
    logprobs: torch.Tensor,  # [N, T] log pi_theta(y_t), detached
    valid: torch.Tensor,  # [N, T] bool
) -> torch.Tensor:
    """C_t = (A_t - mean A)(log pi_t - mean log pi), means over valid tokens; 0 off `valid`. [N, T]"""
    # C_t = (A_t - mean_valid A) * (log pi_t - mean_valid log pi): each token's term of Cov(A, log pi)
    centred_adv = advantages - masked_mean(advantages, valid)  # [N, T]
    centred_logp = logprobs - masked_mean(logprobs, valid)  # [N, T]
    return torch.where(valid, centred_adv * centred_logp, 0.0)  # [N, T]


def selection_count(ratio: float, num_valid: int) -> int:
    """max(1, int(ratio * #valid)): at least one token is acted on (verl's count, same float product)."""
    return max(int(ratio * num_valid), 1)


def random_pick(candidates: torch.Tensor, count: int, generator: torch.Generator | None) -> torch.Tensor:
    """min(count, #candidates) of the `candidates` [N, T], uniformly at random; a bool mask [N, T].

    A random permutation of the candidates in row-major order, first `count` kept: verl's draw, so with
    `generator` seeded s it equals verl under torch.manual_seed(s). None uses torch's default generator.
    """
    index = candidates.nonzero()  # [M, 2] row-major
    picked = torch.zeros_like(candidates)
    if index.shape[0] == 0:
        return picked
    order = torch.randperm(index.shape[0], generator=generator)[:count]  # [<= count] on the CPU
    chosen = index[order.to(index.device)]  # [<= count, 2]
    picked[chosen[:, 0], chosen[:, 1]] = True
    return picked


def top_pick(covariance: torch.Tensor, valid: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` valid tokens of largest covariance (all when fewer); a bool mask [N, T]."""
    values = covariance[valid]  # [M] valid tokens, row-major (verl's order, so ties break alike)
    picked = torch.zeros_like(valid)
    if values.numel() == 0:
        return picked
    top = torch.topk(values, min(count, values.numel()), largest=True).indices  # [<= count]
    chosen = valid.nonzero()[top]  # [<= count, 2]
    picked[chosen[:, 0], chosen[:, 1]] = True
    return picked


def clip_cov_loss(
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: ClipCovConfig | None = None,
    *,
    ref_logprobs: torch.Tensor | None = None,  # unused
    generator: torch.Generator | None = None,  # seeds the random pick; None: torch's default generator
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-token PPO-clip surrogate with a random few high-covariance tokens' loss multiplied by 0. [N, T]"""
    config = config or ClipCovConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    valid = mask.bool()  # [N, T]
    log_ratio = token_log_ratio(logprobs, old_logprobs, mask)  # [N, T]
    ratio = torch.exp(log_ratio.clamp(max=30.0))  # [N, T]; the cap only guards against overflow
    adv = advantages.to(ratio.dtype).detach()[:, None].expand_as(ratio)  # [N, T] A broadcast over tokens
    # max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))
    surrogate, clip_low, clip_high = clipped_surrogate(ratio, adv, config.epsilon_low, config.epsilon_high)
    clipped = (clip_low | clip_high) & valid  # [N, T] tokens the PPO clip already holds
    covariance = token_covariance(adv, logprobs.detach().to(ratio.dtype), valid)  # [N, T] C_t
    # candidates: valid, not clipped, w_low < C_t < w_high (strict, as the authors' code)
    candidates = valid & ~clipped & (covariance > config.covariance_low) & (covariance < config.covariance_high)
    count = selection_count(config.clip_ratio, int(valid.sum()))
    picked = random_pick(candidates, count, generator)  # [N, T]
    # loss_t = surrogate_t * (0 if picked else 1)
    losses = torch.where(valid & ~picked, surrogate, 0.0)  # [N, T]
    if not with_metrics:
        return ObjectiveOutput(losses=losses, level="token")
    fractions = {
        "clip_cov/detached_frac": picked,
        "clip_cov/candidate_frac": candidates,
        "clip_cov/clip_frac": clipped,
        "clip_cov/covariance": covariance,
    }
    metrics = masked_means({key: value.to(ratio.dtype) for key, value in fractions.items()}, valid)
    return ObjectiveOutput(losses=losses, level="token", metrics=metrics | ratio_metrics(log_ratio, valid))


def kl_cov_loss(
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: KLCovConfig | None = None,
    *,
    ref_logprobs: torch.Tensor | None = None,  # unused
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-token unclipped surrogate -A r plus kl_coef |log r| on the top-covariance tokens. [N, T]"""
    config = config or KLCovConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    valid = mask.bool()  # [N, T]
    log_ratio = token_log_ratio(logprobs, old_logprobs, mask)  # [N, T]
    ratio = torch.exp(log_ratio.clamp(max=30.0))  # [N, T]
    adv = advantages.to(ratio.dtype).detach()[:, None].expand_as(ratio)  # [N, T]
    covariance = token_covariance(adv, logprobs.detach().to(ratio.dtype), valid)  # [N, T] C_t
    picked = top_pick(covariance, valid, selection_count(config.kl_ratio, int(valid.sum())))  # [N, T]
    # loss_t = -A_t r_t + kl_coef * |log r_t| * [t among the top-C tokens]
    penalty = config.kl_coef * log_ratio.abs() * picked  # [N, T]
    losses = torch.where(valid, -adv * ratio + penalty, 0.0)  # [N, T]
    if not with_metrics:
        return ObjectiveOutput(losses=losses, level="token")
    fractions = {
        "kl_cov/penalised_frac": picked.to(ratio.dtype),
        "kl_cov/penalty": penalty.detach(),
        "kl_cov/abs_log_ratio": log_ratio.detach().abs(),
        "kl_cov/covariance": covariance,
    }
    return ObjectiveOutput(
        losses=losses, level="token", metrics=masked_means(fractions, valid) | ratio_metrics(log_ratio, valid)
    )
