"""The f-divergence generators of LAD (docs/design.md 2.3), checked against f and f' written out here.

The library evaluates loss = exp(u) f(exp(l - u)) and weight = exp(l) f'(exp(l - u)) in log space; the
reference below forms x = exp(l - u) naively in float64, which is exact enough on a grid of |l|, |u| <= 8.
"""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.objectives.divergences import DIVERGENCES, EXP_CAP

NAMES = ["kl", "rkl", "jf", "tv", "hd", "js"]

# f and f' copied independently from the table in docs/design.md 2.3 (x > 0, float64).
GENERATORS = {
    "kl": (lambda x: x * torch.log(x), lambda x: torch.log(x) + 1),
    "rkl": (lambda x: -torch.log(x), lambda x: -1 / x),
    "jf": (lambda x: (x - 1) * torch.log(x), lambda x: torch.log(x) + 1 - 1 / x),
    "tv": (lambda x: 0.5 * (x - 1).abs(), lambda x: 0.5 * torch.sign(x - 1)),
    "hd": (lambda x: (x.sqrt() - 1) ** 2, lambda x: 1 - 1 / x.sqrt()),
    "js": (
        lambda x: 0.5 * (x * torch.log(x) - (x + 1) * torch.log((x + 1) / 2)),
        lambda x: 0.5 * torch.log(2 * x / (x + 1)),
    ),
}


def _grid(offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(l, u) on a 33 x 33 float64 grid over [-8, 8]^2; `offset` shifts l off the diagonal l = u."""
    axis = torch.linspace(-8.0, 8.0, 33, dtype=torch.float64)
    l, u = torch.meshgrid(axis + offset, axis, indexing="ij")
    return l.reshape(-1), u.reshape(-1)


def test_registry_holds_exactly_the_six_generators():
    assert DIVERGENCES.names() == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_exp_u_times_f_of_x(name):
    f, _ = GENERATORS[name]
    l, u = _grid(offset=0.1)
    expected = torch.exp(u) * f(torch.exp(l - u))
    torch.testing.assert_close(DIVERGENCES.get(name).loss(l, u), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_weight_is_exp_l_times_f_prime_of_x(name):
    _, f_prime = GENERATORS[name]
    l, u = _grid(offset=0.1)
    expected = torch.exp(l) * f_prime(torch.exp(l - u))
    torch.testing.assert_close(DIVERGENCES.get(name).weight(l, u), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_loss_vanishes_at_the_target_because_f_of_one_is_zero(name):
    # l = u means x = 1 and f(1) = 0 for every generator, so exp(u) f(1) = 0 whatever u is.
    u = torch.linspace(-8.0, 8.0, 33, dtype=torch.float64)
    loss = DIVERGENCES.get(name).loss(u, u)
    assert loss.abs().max().item() <= 1e-12 * math.exp(8.0)
    assert GENERATORS[name][0](torch.ones(1, dtype=torch.float64)).item() == 0.0  # the reference agrees


@pytest.mark.parametrize("name", NAMES)
def test_weight_is_the_derivative_of_the_loss_in_l(name):
    # d/dl [e^u f(e^(l-u))] = e^u f'(x) x = e^l f'(x): the weight the LAD surrogate backpropagates.
    l, u = _grid(offset=0.1)  # off the diagonal: tv has a kink at l = u
    l = l.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(DIVERGENCES.get(name).loss(l, u).sum(), l)
    torch.testing.assert_close(grad, DIVERGENCES.get(name).weight(l.detach(), u), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["jf", "tv", "hd", "js"])
def test_weight_is_zero_at_the_target_when_f_prime_of_one_is_zero(name):
    # f'(1) = 0 for jf (0 + 1 - 1), tv (sign 0), hd (1 - 1) and js (log 1 / 2): the brake of docs/design.md 2.2.
    u = torch.linspace(-8.0, 8.0, 33, dtype=torch.float64)
    assert DIVERGENCES.get(name).weight(u, u).abs().max().item() <= 1e-12 * math.exp(8.0)


@pytest.mark.parametrize(("name", "f_prime_at_one"), [("kl", 1.0), ("rkl", -1.0)])
def test_kl_and_rkl_keep_a_constant_baseline_weight_at_the_target(name, f_prime_at_one):
    # kl: f'(1) = log 1 + 1 = 1; rkl: f'(1) = -1/1. At l = u the weight is e^u f'(1) = +-e^u, a term
    # whose expectation under pi_theta is zero (sum_y pi grad log pi = 0), so it does not brake.
    u = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(DIVERGENCES.get(name).weight(u, u), f_prime_at_one * torch.exp(u))


@pytest.mark.parametrize("name", NAMES)
def test_curvature_is_f_second_derivative_at_one(name):
    # Hand values: kl f'' = 1/x -> 1; rkl 1/x^2 -> 1; jf 1/x + 1/x^2 -> 2; hd x^(-3/2)/2 -> 1/2;
    # js (1/x - 1/(x+1))/2 -> (1 - 1/2)/2 = 1/4; tv is not differentiable at 1 (None).
    hand = {"kl": 1.0, "rkl": 1.0, "jf": 2.0, "hd": 0.5, "js": 0.25, "tv": None}[name]
    curvature = DIVERGENCES.get(name).curvature
    assert curvature == hand
    if hand is not None:  # and the test's own f' agrees, by central differences
        _, f_prime = GENERATORS[name]
        h = 1e-5
        x = torch.tensor([1 - h, 1 + h], dtype=torch.float64)
        fd = (f_prime(x[1:]) - f_prime(x[:1])).item() / (2 * h)
        assert fd == pytest.approx(hand, rel=1e-6)


def test_strict_flag_marks_the_bounded_generators():
    # The paper's "strict" family: f' bounded above as x -> inf (tv: 1/2, hd: 1, js: log(2)/2), so a
    # sample far above its target gets a bounded push; kl, rkl and jf grow like log x or x.
    assert {n for n in NAMES if DIVERGENCES.get(n).strict} == {"tv", "hd", "js"}
    for name in ["tv", "hd", "js"]:
        big = GENERATORS[name][1](torch.tensor([1e12], dtype=torch.float64)).item()
        assert big <= 1.0 + 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_extreme_exponents_stay_finite_in_fp32(name):
    # Sequence log-ratios of +-500 and |A/eta| up to 50: every exponent is capped at EXP_CAP = 30.
    values = torch.tensor([-500.0, -50.0, -1.0, 0.0, 1.0, 50.0, 500.0])
    l, u = torch.meshgrid(values, values, indexing="ij")
    divergence = DIVERGENCES.get(name)
    assert torch.isfinite(divergence.loss(l, u)).all()
    assert torch.isfinite(divergence.weight(l, u)).all()
    assert EXP_CAP == 30.0
