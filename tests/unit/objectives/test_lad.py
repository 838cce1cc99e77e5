"""LAD objective (docs/design.md 2): the sanity anchor, autograd vs finite differences, robustness, padding,
and the eta -> infinity limit to GRPO in an exact-expectation softmax bandit."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import LADConfig, aggregate, grpo_loss, lad_loss
from ladkit.objectives.divergences import DIVERGENCES

NAMES = ["kl", "rkl", "jf", "tv", "hd", "js"]
MODES = ["grpo", "bnpo", "dr_grpo", "dapo"]
# (level, aggregation): sequence-level losses ignore the mode, token-level ones use each of the four
LEVEL_MODES = [("sequence", "grpo"), *[("token", m) for m in MODES]]

# f' written out again from the table in docs/design.md 2.3 (float64), independent of the library.
F_PRIME = {
    "kl": lambda x: math.log(x) + 1,
    "rkl": lambda x: -1 / x,
    "jf": lambda x: math.log(x) + 1 - 1 / x,
    "tv": lambda x: 0.5 * (x > 1) - 0.5 * (x < 1),
    "hd": lambda x: 1 - 1 / math.sqrt(x),
    "js": lambda x: 0.5 * math.log(2 * x / (x + 1)),
}


def _batch(mask: torch.Tensor, seed: int = 0, scale: float = 0.3):
    """float64 (logprobs leaf, old_logprobs, advantages) with token log-ratios ~ N(0, scale^2)."""
    g = torch.Generator().manual_seed(seed)
    n, t = mask.shape
    old = -torch.rand(n, t, generator=g, dtype=torch.float64) * 3 - 0.1  # [N, T] log-probs < 0
    logprobs = (old + scale * torch.randn(n, t, generator=g, dtype=torch.float64)).requires_grad_(True)
    advantages = torch.randn(n, generator=g, dtype=torch.float64)  # [N]
    return logprobs, old, advantages


def _scalar(logprobs, old, advantages, mask, config, **aggregate_kwargs):
    return aggregate(lad_loss(logprobs, old, advantages, mask, config), mask, config.aggregation, **aggregate_kwargs)


# ---------------------------------------------------------------- sanity anchor at ratio 1


def test_sanity_anchor_js_inv_eta_4_matches_the_design_numbers():
    # At r = 1 the ascent weight on grad log pi(y) is -f'(exp(-A/eta)). By hand for A = 1, 1/eta = 4:
    # u = 4, x = e^-4 = 0.0183156; 2x/(x+1) = 0.0366313/1.0183156 = 0.0359724; log = -3.32500;
    # f'(x) = -3.32500/2 = -1.66250, so the ascent weight is +1.6625 (docs/design.md 2.4: ~1.663).
    advantages = torch.tensor([0.5, 1.0, 2.0, -0.5, -1.0, -2.0], dtype=torch.float64)
    expected = torch.tensor([0.7169, 1.6625, 3.6536, -0.2831, -0.3375, -0.3464], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0]] * 3 + [[1, 0, 0], [1, 1, 1], [1, 1, 0]], dtype=torch.bool)  # [6, 3]
    logprobs = torch.full((6, 3), -1.3, dtype=torch.float64, requires_grad=True)
    loss = _scalar(logprobs, logprobs.detach().clone(), advantages, mask, LADConfig(divergence="js", inv_eta=4.0))
    (grad,) = torch.autograd.grad(loss, logprobs)
    # Sequence level: d loss / d logprobs[i, t] = f'(x_i) / N on every real token (l_i = sum_t), N = 6.
    ascent = -grad * 6  # [6, 3]
    torch.testing.assert_close(ascent, expected[:, None].expand(6, 3) * mask, atol=1e-4, rtol=0)
    assert grad[~mask].abs().max().item() == 0.0  # padding gets nothing
    # the numbers of docs/design.md 2.4, to the three decimals it quotes
    assert [round(v, 3) for v in ascent[:, 0].tolist()] == [0.717, 1.663, 3.654, -0.283, -0.337, -0.346]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("level", ["sequence", "token"])
@pytest.mark.parametrize("centered", [False, True])
def test_sanity_anchor_every_divergence(name, level, centered, ragged_mask):
    # logprobs == old_logprobs: every ratio is 1, so d loss_i / d l_i = 1 * f'(exp(-A_i / eta)), less f'(1)
    # when centred (g'(x) = f'(x) - f'(1)).
    inv_eta = 4.0
    advantages = torch.tensor([0.7, -1.3, 0.2], dtype=torch.float64)
    logprobs = torch.full(ragged_mask.shape, -0.8, dtype=torch.float64, requires_grad=True)
    config = LADConfig(divergence=name, inv_eta=inv_eta, level=level, centered=centered)
    loss = _scalar(logprobs, logprobs.detach().clone(), advantages, ragged_mask, config)
    (grad,) = torch.autograd.grad(loss, logprobs)
    shift = F_PRIME[name](1.0) if centered else 0.0
    f_prime = torch.tensor([F_PRIME[name](math.exp(-a * inv_eta)) - shift for a in advantages], dtype=torch.float64)
    lengths = ragged_mask.sum(-1).to(torch.float64)  # [3] = 3, 2, 4
    # sequence: mean over N = 3 sequences; token ('grpo' mode): token mean per sequence, then mean over N
    per_token = f_prime / 3 if level == "sequence" else f_prime / (3 * lengths)
    torch.testing.assert_close(grad, per_token[:, None] * ragged_mask, rtol=1e-10, atol=1e-12)


def test_weight_metrics_report_the_ascent_weight(ragged_mask):
    # lad/weight_* are -r f'(x) over sequences; at r = 1 with js, 1/eta = 4: A = 0.5 -> 0.7169, A = -1 -> -0.3375,
    # A = 2 -> 3.6536 (see the anchor above).
    advantages = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    logprobs = torch.full(ragged_mask.shape, -0.8, dtype=torch.float64)
    metrics = lad_loss(logprobs, logprobs.clone(), advantages, ragged_mask, LADConfig()).metrics
    assert metrics["lad/weight_max"].item() == pytest.approx(3.6536, abs=1e-4)
    assert metrics["lad/weight_min"].item() == pytest.approx(-0.3375, abs=1e-4)
    assert metrics["lad/weight_mean"].item() == pytest.approx((0.7169 - 0.3375 + 3.6536) / 3, abs=1e-4)
    assert metrics["lad/frac_past_target"].item() == pytest.approx(1 / 3)  # l = 0 > u only for A = -1
    assert metrics["ratio/mean"].item() == 1.0
    assert metrics["kl/old_k1"].item() == 0.0


@pytest.mark.parametrize("name", ["jf", "tv", "hd", "js", "kl-centred", "rkl-centred"])
def test_positive_sample_is_braked_once_its_ratio_reaches_exp_a_over_eta(name):
    # One sequence, A = 1, 1/eta = 2: target log-ratio u = 2. Below it the sample is pushed up (ascent > 0),
    # at it the push is r f'(1) = 0, above it the sample is pushed down (f' increasing, f'(1) = 0). kl and rkl
    # have f'(1) = +-1: only their centred generators (g'(1) = 0) brake at exp(A/eta).
    config = LADConfig(divergence=name.split("-")[0], inv_eta=2.0, centered=name.endswith("-centred"))
    mask = torch.ones(1, 2, dtype=torch.bool)
    advantages = torch.tensor([1.0], dtype=torch.float64)
    ascent = []
    for seq_log_ratio in (1.0, 2.0, 3.0):
        old = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
        logprobs = (old + seq_log_ratio / 2).requires_grad_(True)  # two tokens share the log-ratio
        loss = _scalar(logprobs, old, advantages, mask, config)
        ascent.append(-torch.autograd.grad(loss, logprobs)[0][0, 0].item())
    assert ascent[0] > 0.1 and abs(ascent[1]) < 1e-12 and ascent[2] < -0.1


def test_uncentred_kl_brakes_one_nat_early_and_rkl_never():
    # Same sample (A = 1, 1/eta = 2, u = 2), the paper's generators. kl: r f'(x) = e^l (l - u + 1) = 0 at
    # l = u - 1 = 1, i.e. at r = exp(A/eta - 1); at l = 2 it is e^2 (0 + 1) = 7.389 (pushed down).
    # rkl: r f'(x) = -e^u = -e^2 = -7.389 whatever l is (pushed up at every ratio).
    mask = torch.ones(1, 1, dtype=torch.bool)
    old = torch.tensor([[-3.0]], dtype=torch.float64)
    for name, expected in (("kl", [0.0, -math.exp(2)]), ("rkl", [math.exp(2), math.exp(2)])):
        ascent = []
        for log_ratio in (1.0, 2.0):
            logprobs = (old + log_ratio).requires_grad_(True)
            config = LADConfig(divergence=name, inv_eta=2.0, centered=False)
            loss = _scalar(logprobs, old, torch.tensor([1.0], dtype=torch.float64), mask, config)
            ascent.append(-torch.autograd.grad(loss, logprobs)[0].item())
        assert ascent == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- zero advantages: centred generators


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("level", "mode"), LEVEL_MODES)
def test_a_group_with_equal_rewards_moves_nothing_when_centred(name, level, mode, ragged_mask):
    # A = 0 and r = 1 (the first mini-batch of a group whose rewards are all equal): the centred weight is
    # g'(1) = 0 exactly for all six. Uncentred, kl's weight is f'(1) = +1 and rkl's -1 on every sample
    # (sequence level: d loss / d logprobs = f'(1) / N = +-1/3 on every real token), the others 0.
    logprobs = torch.full(ragged_mask.shape, -0.8, dtype=torch.float64, requires_grad=True)
    advantages = torch.zeros(3, dtype=torch.float64)
    for centered in (True, False):
        config = LADConfig(divergence=name, level=level, aggregation=mode, centered=centered)
        loss = _scalar(logprobs, logprobs.detach().clone(), advantages, ragged_mask, config, max_completion_length=4)
        (grad,) = torch.autograd.grad(loss, logprobs)
        slope = 0.0 if centered else {"kl": 1.0, "rkl": -1.0}.get(name, 0.0)
        if slope == 0.0:
            assert grad.abs().max().item() == 0.0 and loss.item() == 0.0
        else:
            assert (torch.sign(grad[ragged_mask]) == slope).all()  # every real token pushed the same way
            if level == "sequence":
                torch.testing.assert_close(grad, slope / 3 * ragged_mask.double(), rtol=1e-12, atol=0)


# ---------------------------------------------------------------- autograd vs finite differences


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("level", "mode"), LEVEL_MODES)
@pytest.mark.parametrize("clamp", [None, 5.0])
@pytest.mark.parametrize("centered", [False, True])
def test_gradient_matches_finite_differences_of_the_reported_loss(
    name, level, mode, clamp, centered, ragged_mask, central_diff
):
    # The forward value is exp(u) f(x) (the surrogate term is zero forward), so its derivative must be the
    # backpropagated r f'(x) grad l. With clamp = 5 every |l| here is < 2, so the clamp is inactive.
    logprobs, old, advantages = _batch(ragged_mask, seed=1)
    token_l = (logprobs - old).detach() * ragged_mask  # [N, T]
    assert token_l.abs().max().item() < 2.0 and token_l.sum(-1).abs().max().item() < 2.0
    config = LADConfig(
        divergence=name, inv_eta=2.0, level=level, aggregation=mode, log_ratio_clamp=clamp, centered=centered
    )
    (autograd,) = torch.autograd.grad(_scalar(logprobs, old, advantages, ragged_mask, config), logprobs)
    numeric = central_diff(lambda lp: _scalar(lp, old, advantages, ragged_mask, config), logprobs)
    torch.testing.assert_close(autograd, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("seq_log_ratio", "value", "gradient"),
    [
        # kl, one token, clamp c = 1, A = 0.5, 1/eta = 2 so u = 1. The clamp acts inside the weight only
        # (the gradient still flows through l), so the reported value is frozen at loss(+-1, u) and the
        # gradient is weight(+-1, u) = e^(+-1) (+-1 - 1 + 1):
        (3.0, 0.0, math.e),  # value e^1 (1 - 1) = 0; gradient e (not e^3 (3 - 1 + 1) = 60.3)
        (-3.0, -2 / math.e, -1 / math.e),  # value e^-1 (-1 - 1) = -2/e; gradient e^-1 (-1) = -1/e
    ],
)
def test_active_clamp_freezes_the_value_and_clamps_the_weight(seq_log_ratio, value, gradient):
    mask = torch.ones(1, 1, dtype=torch.bool)
    old = torch.tensor([[-4.0]], dtype=torch.float64)
    logprobs = (old + seq_log_ratio).requires_grad_(True)
    config = LADConfig(divergence="kl", inv_eta=2.0, log_ratio_clamp=1.0, centered=False)
    loss = _scalar(logprobs, old, torch.tensor([0.5], dtype=torch.float64), mask, config)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert loss.item() == pytest.approx(value, rel=1e-12, abs=1e-15)
    assert grad.item() == pytest.approx(gradient, rel=1e-12)


# ---------------------------------------------------------------- robustness: extremes and padding


def _extreme_batch(per_token: float, dtype=torch.float32):
    """fp32 batch with sequence log-ratios +-5*per_token, |A| = 50 (1/eta = 1) and NaN/inf in the padding."""
    mask = torch.tensor([[1] * 5 + [0]] * 4 + [[0] * 6], dtype=torch.bool)  # [5, 6]; last row all padding
    signs = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])[:, None]  # [5, 1]
    old = torch.full((5, 6), -2.0, dtype=dtype)
    logprobs = old + signs * per_token  # [5, 6]
    logprobs[:, -1], old[:, -1] = float("nan"), float("inf")  # garbage where mask = 0
    logprobs[-1], old[-1] = float("-inf"), float("nan")
    advantages = torch.tensor([50.0, -50.0, 50.0, -50.0, 50.0], dtype=dtype)
    return logprobs.requires_grad_(True), old, advantages, mask


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("level", "mode"), LEVEL_MODES)
@pytest.mark.parametrize("per_token", [100.0, 500.0])  # sequence log-ratio +-500, or +-500 on every token
def test_extremes_and_nan_padding_stay_finite(name, level, mode, per_token):
    logprobs, old, advantages, mask = _extreme_batch(per_token)
    output = lad_loss(logprobs, old, advantages, mask, LADConfig(divergence=name, inv_eta=1.0, level=level))
    loss = aggregate(output, mask, mode)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert all(torch.isfinite(v).all() for v in output.metrics.values()), output.metrics
    assert grad[~mask].abs().max().item() == 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("level", "mode"), LEVEL_MODES)
def test_appending_padded_columns_changes_nothing(name, level, mode, ragged_mask):
    # Reference: the ragged batch with clean zeros in its padding. Test: the same batch with garbage (NaN,
    # inf) in its padding and three more padded columns. Loss, metrics and real-token gradients must match.
    logprobs, old, advantages = _batch(ragged_mask, seed=2)
    clean = logprobs.detach().masked_fill(~ragged_mask, 0.0).requires_grad_(True)
    config = LADConfig(divergence=name, level=level, aggregation=mode)
    kwargs = {"max_completion_length": 4} if mode == "dr_grpo" else {}
    out_ref = lad_loss(clean, old.masked_fill(~ragged_mask, 0.0), advantages, ragged_mask, config)
    loss_ref = aggregate(out_ref, ragged_mask, mode, **kwargs)
    (grad_ref,) = torch.autograd.grad(loss_ref, clean)

    wide_mask = torch.cat([ragged_mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)  # [3, 7]
    garbage = torch.tensor([float("nan"), float("inf"), float("-inf")], dtype=torch.float64)
    wide_lp = torch.cat([logprobs.detach(), garbage.expand(3, 3)], dim=1).masked_fill(~wide_mask, float("nan"))
    wide_old = torch.cat([old, garbage.flip(0).expand(3, 3)], dim=1).masked_fill(~wide_mask, float("inf"))
    wide_lp.requires_grad_(True)
    out = lad_loss(wide_lp, wide_old, advantages, wide_mask, config)
    loss = aggregate(out, wide_mask, mode, **kwargs)
    (grad,) = torch.autograd.grad(loss, wide_lp)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad[:, :4], grad_ref, rtol=1e-12, atol=1e-14)
    assert grad[~wide_mask].abs().max().item() == 0.0
    for key, value in out_ref.metrics.items():
        torch.testing.assert_close(out.metrics[key], value, rtol=1e-12, atol=1e-14, msg=key)


# ---------------------------------------------------------------- eta -> infinity: LAD becomes GRPO


THETA = torch.tensor([0.3, -0.5, 1.2, 0.0, -1.0, 0.7], dtype=torch.float64)  # K = 6 logits
ADVANTAGES = torch.tensor([1.5, -0.3, 0.8, -1.2, 0.1, -0.9], dtype=torch.float64)  # [K]


def _bandit_grad(objective: str, advantages: torch.Tensor = ADVANTAGES, **config) -> torch.Tensor:
    """Exact E_{y ~ pi_old}[grad loss] with pi_old = pi_theta (detached), T = 1, weights = pi_old."""
    theta = THETA.clone().requires_grad_(True)
    logprobs = torch.log_softmax(theta, dim=0)[:, None]  # [K, 1]
    mask = torch.ones(len(THETA), 1, dtype=torch.bool)
    if objective == "grpo":
        output = grpo_loss(logprobs, logprobs.detach(), advantages, mask)  # ratio 1: clip inactive
    else:
        output = lad_loss(logprobs, logprobs.detach(), advantages, mask, LADConfig(**config))
    loss = aggregate(output, mask, "grpo", weights=logprobs.detach().exp()[:, 0])
    return torch.autograd.grad(loss, theta)[0]  # [K]


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a @ b / (a.norm() * b.norm())).item()


@pytest.mark.parametrize("name", ["rkl", "jf", "hd", "js"])
def test_large_eta_lad_gradient_is_grpo_scaled_by_curvature_over_eta(name):
    # f'(e^-u) = f'(1) - f''(1) u + O(u^2); the f'(1) term is f'(1) sum_k pi_k grad log pi_k = 0 exactly,
    # leaving -(f''(1)/eta) sum_k pi_k A_k grad log pi_k = (f''(1)/eta) * GRPO's gradient at ratio 1.
    eta = 1e4
    lad, grpo = _bandit_grad("lad", divergence=name, eta=eta), _bandit_grad("grpo")
    assert _cosine(lad, grpo) > 0.999
    curvature = DIVERGENCES.get(name).curvature
    assert (lad.norm() / grpo.norm()).item() == pytest.approx(curvature / eta, rel=1e-3)
    # ... and at 1/eta = 4 the nonlinearity of f' shows: the directions differ (measured cos: rkl 0.47,
    # jf 0.50, hd 0.73, js 0.97 for this bandit)
    assert _cosine(_bandit_grad("lad", divergence=name, inv_eta=4.0), grpo) < 0.99


@pytest.mark.parametrize("eta", [1e4, 0.25])
def test_kl_gradient_is_grpo_times_inv_eta_at_every_eta(eta):
    # kl is the exception to "small eta differs": f'(e^-u) = -u + 1 is affine in u, so on-policy
    # E[(1 - A/eta) grad log pi] = -(1/eta) E[A grad log pi] exactly: cosine 1 and norm ratio 1/eta for any eta.
    lad, grpo = _bandit_grad("lad", divergence="kl", eta=eta), _bandit_grad("grpo")
    torch.testing.assert_close(lad, grpo / eta, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("eta", [1e4, 0.25])
def test_tv_gradient_is_grpo_with_sign_advantage_over_two(eta):
    # tv: f'(e^-u) = sign(e^-u - 1)/2 = -sign(A)/2 for every eta, so LAD-tv is GRPO with A -> sign(A)/2
    # (not the curvature limit: f is not differentiable at 1, `curvature` is None).
    lad = _bandit_grad("lad", divergence="tv", eta=eta)
    torch.testing.assert_close(lad, _bandit_grad("grpo", advantages=torch.sign(ADVANTAGES) / 2), rtol=1e-12, atol=1e-15)
    assert DIVERGENCES.get("tv").curvature is None
    assert _cosine(lad, _bandit_grad("grpo")) < 0.99  # so it is not GRPO with A itself


@pytest.mark.parametrize("name", ["kl", "rkl"])
@pytest.mark.parametrize("inv_eta", [0.5, 4.0])
def test_centring_leaves_the_exact_expected_gradient_unchanged(name, inv_eta):
    # The centred weight drops f'(1) r grad l, and E_{pi_old}[r grad log pi_theta] = sum_y grad pi_theta(y) = 0,
    # also off-policy (pi_theta != pi_old): over a full softmax bandit weighted by pi_old both gradients agree.
    theta = (THETA + torch.tensor([0.4, -0.2, 0.1, 0.3, -0.5, 0.2], dtype=torch.float64)).requires_grad_(True)
    old = torch.log_softmax(THETA, dim=0)[:, None]  # [K, 1] pi_old != pi_theta
    mask = torch.ones(len(THETA), 1, dtype=torch.bool)
    grads = []
    for centered in (False, True):
        logprobs = torch.log_softmax(theta, dim=0)[:, None]  # [K, 1]
        config = LADConfig(divergence=name, inv_eta=inv_eta, centered=centered)
        output = lad_loss(logprobs, old, ADVANTAGES, mask, config)
        grads.append(torch.autograd.grad(aggregate(output, mask, "grpo", weights=old.exp()[:, 0]), theta)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-14)
    assert grads[0].abs().max().item() > 1e-2  # a real gradient, not two zeros


def test_centered_must_be_a_boolean():
    with pytest.raises(LadkitError, match="centered must be true or false, got 'yes'"):
        LADConfig(centered="yes")
