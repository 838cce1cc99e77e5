"""f-divergence generators for LAD, evaluated in log space.

LAD (Li & Li 2026, Lemma 3.2) minimises D_f(P_pi || P_A) with both normalisers removed. Per sample,
with u = A/eta, l = log pi_theta(y) - log pi_old(y) and log x = d = l - u:

    loss   = exp(u) * f(x)        (its value, for reporting)
    weight = r * f'(x)            (d loss / d l; the coefficient on grad log pi_theta)

Each entry below writes both as a sum of single exponentials (of l, u or a mix) times a factor that
is linear in d or bounded, never forming x = exp(d) or a product of two exponentials. Every exponent
goes through `_exp`, which caps it at `EXP_CAP`: a ratio above e^30 is numerically meaningless, and the
cap keeps sequence log-ratios of +-500 and |A/eta| of 50 finite in fp32 (use the objective's
`log_ratio_clamp` to bound weights at a sensible scale; this cap is only a guard).

| name | f(x)                                  | f'(x)              | bounded f' ("strict") |
|------|---------------------------------------|--------------------|-----------------------|
| kl   | x log x                               | log x + 1          | no                    |
| rkl  | -log x                                | -1/x               | no                    |
| jf   | (x-1) log x                           | log x + 1 - 1/x    | no                    |
| tv   | 1/2 |x-1|                             | 1/2 sign(x-1)      | yes                   |
| hd   | (sqrt x - 1)^2                        | 1 - 1/sqrt x       | yes (above)           |
| js   | 1/2 [x log x - (x+1) log((x+1)/2)]    | 1/2 log(2x/(x+1))  | yes                   |

These are the paper's generators ("uncentred"). kl (f'(1) = 1) and rkl (f'(1) = -1) give a sample at its
target, and every sample of a group whose advantages are all zero, the weight r f'(1) != 0: a push with
no reward signal behind it. The centred generator

    g(x) = f(x) - f'(1) (x - 1),   g(1) = 0,   g'(1) = 0

is the same divergence between normalised distributions (sum_y q g(p/q) = D_f(p||q) - f'(1)(sum p - sum q)),
and per sample it subtracts f'(1) (e^l - e^u) from the loss and f'(1) e^l from the weight. The weight it
removes, f'(1) r grad l, has expectation f'(1) sum_y pi_theta grad log pi_theta = 0 under pi_old: centring
changes no expected gradient, only the noise (a baseline). jf, tv, hd and js have f'(1) = 0 (tv: sign(0) = 0
at its kink), so for them centred and uncentred are the same functions. LADConfig.centered picks one
(default: centred; the paper's formulas are the uncentred f).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ladkit.registry import Registry

EXP_CAP = 30.0  # largest exponent ever passed to exp(); e^30 ~ 1e13
LOG2 = math.log(2.0)

Tensor = torch.Tensor


@dataclass(frozen=True)
class Divergence:
    """One f-divergence in the (l, u) parametrisation used by LAD."""

    name: str
    loss: Callable[[Tensor, Tensor], Tensor]  # (l, u) -> exp(u) f(exp(l - u))
    weight: Callable[[Tensor, Tensor], Tensor]  # (l, u) -> exp(l) f'(exp(l - u))
    strict: bool  # bounded f': the paper's better-behaved family (TV, HD, JS)
    curvature: float | None  # f''(1): LAD -> REINFORCE with advantage curvature * A/eta as eta -> inf
    slope_at_one: float  # f'(1): the weight r f'(1) of a sample at its target (zero once centred)
    centered_loss: Callable[[Tensor, Tensor], Tensor]  # (l, u) -> exp(u) g(exp(l - u)), g centred
    centered_weight: Callable[[Tensor, Tensor], Tensor]  # (l, u) -> exp(l) g'(exp(l - u))

    def terms(self, l: Tensor, u: Tensor, centered: bool) -> tuple[Tensor, Tensor]:
        """(loss, weight) of the centred generator g or of the paper's f."""
        if centered:
            return self.centered_loss(l, u), self.centered_weight(l, u)
        return self.loss(l, u), self.weight(l, u)


DIVERGENCES: Registry[Divergence] = Registry("divergence")


def _exp(z: Tensor) -> Tensor:
    """exp with the exponent capped at EXP_CAP (a numerical guard, see the module docstring)."""
    return torch.exp(z.clamp(max=EXP_CAP))


def _exp_diff(a: Tensor, b: Tensor) -> Tensor:
    """exp(a) - exp(b) without cancellation: factor out the larger exponential (capped)."""
    gap = a - b
    # a >= b: e^a (1 - e^(b-a)) = -e^a expm1(-(a-b)); a < b: e^b expm1(a-b). Second factors in (-1, 1).
    return torch.where(gap >= 0, -_exp(a) * torch.expm1(-gap.clamp(min=0)), _exp(b) * torch.expm1(gap.clamp(max=0)))


def _add(name: str, loss, weight, strict: bool, curvature: float | None, slope: float = 0.0, centered=None) -> None:
    """Register f with f'(1) = `slope`; `centered` = (loss, weight) of g when the slope is not 0 (else g = f)."""
    centered_loss, centered_weight = centered or (loss, weight)
    DIVERGENCES.add(name, Divergence(name, loss, weight, strict, curvature, slope, centered_loss, centered_weight))


# kl: e^u x log x = e^l d;  r (log x + 1) = e^l (d + 1)
# centred, g(x) = x log x - (x - 1):  e^u g(x) = e^l d - (e^l - e^u);  r g'(x) = r log x = e^l d
_add(
    "kl",
    lambda l, u: _exp(l) * (l - u),
    lambda l, u: _exp(l) * (l - u + 1),
    False,
    1.0,
    slope=1.0,  # f'(1) = log 1 + 1
    centered=(lambda l, u: _exp(l) * (l - u) - _exp_diff(l, u), lambda l, u: _exp(l) * (l - u)),
)
# rkl: -e^u log x = -e^u d;  r (-1/x) = -e^u (the weight never depends on the policy)
# centred, g(x) = -log x + (x - 1):  e^u g(x) = -e^u d + (e^l - e^u);  r g'(x) = r (1 - 1/x) = e^l - e^u
_add(
    "rkl",
    lambda l, u: -_exp(u) * (l - u),
    lambda l, u: -_exp(u) + 0 * l,
    False,
    1.0,
    slope=-1.0,  # f'(1) = -1/1
    centered=(lambda l, u: _exp_diff(l, u) - _exp(u) * (l - u), lambda l, u: _exp_diff(l, u)),
)
# jf: e^u (x-1) log x = (e^l - e^u) d;  r (log x + 1 - 1/x) = e^l (d + 1) - e^u
_add(
    "jf",
    lambda l, u: _exp_diff(l, u) * (l - u),
    lambda l, u: _exp(l) * (l - u) + _exp_diff(l, u),
    False,
    2.0,
)
# tv: e^u |x-1| / 2 = |e^l - e^u| / 2;  r sign(x-1) / 2 = e^l sign(d) / 2
_add(
    "tv",
    lambda l, u: 0.5 * _exp_diff(l, u).abs(),
    lambda l, u: 0.5 * _exp(l) * torch.sign(l - u),
    True,
    None,  # f is not differentiable at 1: its large-eta limit is sign(A)/2, not A
)
# hd: e^u (sqrt x - 1)^2 = (e^(l/2) - e^(u/2))^2;  r (1 - x^(-1/2)) = e^l - e^((l+u)/2)
_add(
    "hd",
    lambda l, u: _exp_diff(l / 2, u / 2).square(),
    lambda l, u: _exp_diff(l, (l + u) / 2),
    True,
    0.5,
)
# js: log(2x/(x+1)) = log 2 - softplus(-d) and log((x+1)/2) = softplus(d) - log 2, so
#   e^u f(x) = [e^l (log 2 - softplus(-d)) - e^u (softplus(d) - log 2)] / 2
#   r f'(x)  =  e^l (log 2 - softplus(-d)) / 2
_add(
    "js",
    lambda l, u: 0.5 * (_exp(l) * (LOG2 - F.softplus(u - l)) - _exp(u) * (F.softplus(l - u) - LOG2)),
    lambda l, u: 0.5 * _exp(l) * (LOG2 - F.softplus(u - l)),
    True,
    0.25,
)
