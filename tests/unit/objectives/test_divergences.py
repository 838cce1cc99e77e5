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


# ---------------------------------------------------------------- centred generators g(x) = f(x) - f'(1)(x - 1)


def _centred(name: str):
    """(g, g') of the test's own f: g(x) = f(x) - f'(1)(x - 1), g'(x) = f'(x) - f'(1)."""
    f, f_prime = GENERATORS[name]
    slope = f_prime(torch.ones(1, dtype=torch.float64))
    return (lambda x: f(x) - slope * (x - 1)), (lambda x: f_prime(x) - slope)


@pytest.mark.parametrize("name", NAMES)
def test_declared_slope_at_one_is_f_prime_of_one(name):
    # kl: log 1 + 1 = 1; rkl: -1/1 = -1; jf: 0 + 1 - 1 = 0; tv: sign(0)/2 = 0; hd: 1 - 1 = 0; js: log(2/2)/2 = 0
    hand = {"kl": 1.0, "rkl": -1.0}.get(name, 0.0)
    assert DIVERGENCES.get(name).slope_at_one == hand
    assert GENERATORS[name][1](torch.ones(1, dtype=torch.float64)).item() == hand


@pytest.mark.parametrize("name", NAMES)
def test_centred_loss_and_weight_are_those_of_g(name):
    g, g_prime = _centred(name)
    l, u = _grid(offset=0.1)
    x = torch.exp(l - u)
    loss, weight = DIVERGENCES.get(name).terms(l, u, centered=True)
    torch.testing.assert_close(loss, torch.exp(u) * g(x), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(weight, torch.exp(l) * g_prime(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("name", "l", "u", "loss", "weight"),
    [
        # kl centred, l = 1, u = 1/2 (d = 1/2): weight e^l d = e/2 = 1.3591409;
        # loss e^l d - (e^l - e^u) = 1.3591409 - (2.7182818 - 1.6487213) = 0.2895804
        ("kl", 1.0, 0.5, 0.2895804, 1.3591409),
        # rkl centred, l = 1/2, u = 1 (d = -1/2): weight e^l - e^u = 1.6487213 - 2.7182818 = -1.0695606;
        # loss -e^u d + (e^l - e^u) = 1.3591409 - 1.0695606 = 0.2895804
        ("rkl", 0.5, 1.0, 0.2895804, -1.0695606),
        # kl uncentred at the same point, for contrast: weight e (1/2 + 1) = 4.0774227, loss e/2 = 1.3591409
        ("kl-uncentred", 1.0, 0.5, 1.3591409, 4.0774227),
    ],
)
def test_centred_values_by_hand(name, l, u, loss, weight):
    centered = not name.endswith("-uncentred")
    got = DIVERGENCES.get(name.split("-")[0]).terms(torch.tensor([l]), torch.tensor([u]), centered)
    assert [v.item() for v in got] == pytest.approx([loss, weight], abs=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("centered", [False, True])
def test_weight_matches_finite_differences_of_the_loss(name, centered):
    # weight = d loss / d l, by central differences per point (each loss depends on its own l only),
    # float64, h = 1e-6, away from tv's kink at l = u (offset 0.1 > h).
    l, u = _grid(offset=0.1)
    h = 1e-6
    divergence = DIVERGENCES.get(name)
    numeric = (divergence.terms(l + h, u, centered)[0] - divergence.terms(l - h, u, centered)[0]) / (2 * h)
    scale = torch.exp(torch.maximum(l, u))  # both terms grow like e^max(l, u): compare relative to it
    torch.testing.assert_close(divergence.terms(l, u, centered)[1] / scale, numeric / scale, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_centred_weight_and_loss_are_exactly_zero_at_the_target(name, dtype):
    # l = u (r = exp(A/eta); A = 0 and r = 1 is u = l = 0): g(1) = 0 and g'(1) = 0 for all six, exactly.
    u = torch.tensor([0.0, -3.0, 0.5, 7.0], dtype=dtype)
    loss, weight = DIVERGENCES.get(name).terms(u, u, centered=True)
    assert weight.tolist() == [0.0] * 4 and loss.tolist() == [0.0] * 4


@pytest.mark.parametrize("name", NAMES)
def test_centred_losses_are_never_negative(name):
    # g is convex with g(1) = g'(1) = 0, so g >= 0: the centred loss is a distance to the target. The
    # uncentred kl is not (x log x < 0 for x < 1), which is why the paper's loss values can go negative.
    l, u = _grid(offset=0.1)
    assert DIVERGENCES.get(name).terms(l, u, centered=True)[0].min().item() >= -1e-12
    if name == "kl":
        assert DIVERGENCES.get(name).loss(l, u).min().item() < -1.0


@pytest.mark.parametrize("name", NAMES)
def test_centred_extreme_exponents_stay_finite_in_fp32(name):
    values = torch.tensor([-500.0, -50.0, -1.0, 0.0, 1.0, 50.0, 500.0])
    l, u = torch.meshgrid(values, values, indexing="ij")
    assert all(torch.isfinite(t).all() for t in DIVERGENCES.get(name).terms(l, u, centered=True))
