"""LAD: Learning Advantage Distribution (Li & Li 2026, arXiv 2602.20132).

How it departs from GRPO, in order:
1. The target is a distribution, not a direction: P_A(y) ∝ exp(A/eta), the trust-region optimum
   pi* ∝ pi_old exp(A/eta) expressed relative to pi_old.
2. The loss is an f-divergence D_f(P_pi || P_A) between the policy-induced distribution (the ratio
   pi_theta/pi_old) and P_A; normalisers are dropped (Lemma 3.2), leaving per sample
   exp(u) f(x) with u = A/eta and x = r / exp(u).
3. Its gradient r f'(x) grad log pi vanishes where f'(x) = 0: for js, tv, hd and jf (f'(1) = 0) once a
   sample's ratio reaches exp(A/eta), for the paper's kl at exp(A/eta - 1), for rkl never. Positive
   samples are not pushed up forever, which is why LAD needs no clip and no entropy bonus. With
   `centered=True` (the default) the generator f(x) - f'(1)(x - 1) puts that point at exp(A/eta) for
   all six, and a group whose rewards are all equal gets zero weight (see divergences.py).
4. The ratio is a sequence-level quantity by default (the theory); `level="token"` applies the same
   loss per token as a drop-in for token-level GRPO code.

We backpropagate the surrogate stopgrad(r f'(x)) * l (same gradient, better conditioned) but report the
value of exp(u) f(x): `loss = value.detach() + weight.detach() * l - (weight * l).detach()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import check_aggregation
from ladkit.objectives.common import check_inputs, masked_max, masked_means, masked_min, ratio_metrics, token_log_ratio
from ladkit.objectives.divergences import DIVERGENCES
from ladkit.types import ObjectiveOutput


@dataclass
class LADConfig:
    """Hyperparameters of the LAD objective."""

    divergence: str = "js"
    """f-divergence generator: kl, rkl, jf, tv, hd or js (the paper's main choice)."""
    eta: float | None = None
    """Temperature of the advantage-induced distribution P_A ∝ exp(A/eta). Give eta or inv_eta."""
    inv_eta: float | None = 4.0
    """1/eta, the paper's knob (4 for maths). Ignored when eta is given."""
    level: str = "sequence"
    """Where the ratio lives: "sequence" (sum of token log-ratios; the theory) or "token"."""
    log_ratio_clamp: float | None = None
    """If set, clamp the log-ratio to [-c, c] inside the weight (the gradient still flows through l)."""
    centered: bool = True
    """Use the centred generator g(x) = f(x) - f'(1)(x - 1) (docs/design.md 2.7; the default): the same
    divergence between normalised distributions and the same expected gradient, but a sample at its target
    ratio gets zero weight, so a group whose rewards are all equal (A = 0) moves nothing. Changes only kl
    and rkl (the others have f'(1) = 0). False: the paper's formulas (uncentred f), under which LAD-kl and
    LAD-rkl push every sample of an all-equal group (weight r f'(1) = +-1)."""
    aggregation: str = "grpo"
    """Token-level reduction (grpo, bnpo, dr_grpo, dapo); sequence-level losses are averaged over N."""

    def __post_init__(self) -> None:
        DIVERGENCES.get(self.divergence)  # unknown names fail here, listing the valid ones
        check_temperature(self.eta, self.inv_eta)
        if not isinstance(self.centered, bool):
            raise LadkitError(f"LAD centered must be true or false, got {self.centered!r}")
        if self.level not in ("sequence", "token"):
            raise LadkitError(f"LAD level must be 'sequence' or 'token', got {self.level!r}")
        if self.log_ratio_clamp is not None and not 0 < self.log_ratio_clamp < float("inf"):
            raise LadkitError(f"log_ratio_clamp must be > 0 or unset, got {self.log_ratio_clamp}")
        check_aggregation(self.aggregation)

    @property
    def inverse_temperature(self) -> float:
        """1/eta, whichever way it was given."""
        return 1.0 / self.eta if self.eta is not None else float(self.inv_eta)


def check_temperature(eta: float | None, inv_eta: float | None) -> None:
    """eta (if given) or else inv_eta must be a positive number (shared by every config that sets LAD's eta)."""
    if eta is not None and not 0 < eta < float("inf"):
        raise LadkitError(f"eta must be > 0, got {eta}; it is the temperature of exp(A/eta)")
    if eta is None and (inv_eta is None or not 0 < inv_eta < float("inf")):
        raise LadkitError(f"inv_eta (1/eta) must be > 0, got {inv_eta}; or give eta instead")


def _at_level(
    token_log_ratios: torch.Tensor,  # [N, T]
    scaled_advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    level: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log-ratio l, its target log-ratio u, valid) per sequence ([N] each) or per token ([N, T] each)."""
    if level == "sequence":
        # l = sum_t (log pi_theta - log pi_old): the log of the sequence ratio
        return token_log_ratios.sum(-1), scaled_advantages, mask.bool().any(-1)  # [N], [N], [N]
    return token_log_ratios, scaled_advantages[:, None].expand_as(token_log_ratios), mask.bool()  # [N, T] each


def lad_loss(
    logprobs: torch.Tensor,  # [N, T] log pi_theta of the response tokens
    old_logprobs: torch.Tensor,  # [N, T] log pi_old (the sampler), fixed over the rollout batch
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    config: LADConfig | None = None,
    ref_logprobs: torch.Tensor | None = None,  # unused: LAD needs no reference model
    log_z: torch.Tensor | None = None,  # unused (FlowRL only)
    with_metrics: bool = True,
) -> ObjectiveOutput:
    """Per-sequence ([N]) or per-token ([N, T]) LAD loss exp(u) f(x) with gradient r f'(x) grad l."""
    config = config or LADConfig()
    check_inputs(logprobs, old_logprobs, advantages, mask)
    divergence = DIVERGENCES.get(config.divergence)
    token_log_ratios = token_log_ratio(logprobs, old_logprobs, mask)  # [N, T]
    # u = A/eta: the log of the target ratio exp(A/eta) of each sample
    scaled_advantages = advantages.to(token_log_ratios.dtype).detach() * config.inverse_temperature  # [N]
    log_ratio, target_log_ratio, valid = _at_level(token_log_ratios, scaled_advantages, mask, config.level)
    weight_log_ratio = log_ratio.detach()  # l inside the weight: no gradient, optionally clamped to [-c, c]
    if config.log_ratio_clamp is not None:
        weight_log_ratio = weight_log_ratio.clamp(-config.log_ratio_clamp, config.log_ratio_clamp)
    # value = exp(u) f(x), weight = r f'(x) = d value / d l (f -> g = f - f'(1)(x - 1) when centred)
    value, weight = divergence.terms(weight_log_ratio, target_log_ratio, config.centered)
    losses = value + weight * log_ratio - (weight * log_ratio).detach()  # value forward, weight * grad l backward
    losses = torch.where(valid, losses, 0.0)
    if not with_metrics:
        return ObjectiveOutput(losses=losses, level=config.level)
    metrics = _metrics(log_ratio.detach(), target_log_ratio, value, weight, valid)
    return ObjectiveOutput(losses=losses, level=config.level, metrics=metrics)


def _metrics(log_ratio, target_log_ratio, value, weight, valid) -> dict[str, torch.Tensor]:
    """lad/* (the ascent weight -r f'(x), the share of samples past their target, the loss value) and ratio/*."""
    past_target = (log_ratio > target_log_ratio).to(log_ratio.dtype)  # ratio beyond exp(A/eta)
    ascent = -weight  # -r f'(x) plays the role of the advantage in a policy gradient
    return {
        **masked_means(
            {"lad/weight_mean": ascent, "lad/frac_past_target": past_target, "lad/loss_value": value}, valid
        ),
        "lad/weight_min": masked_min(ascent, valid),
        "lad/weight_max": masked_max(ascent, valid),
        **ratio_metrics(log_ratio, valid),
    }
