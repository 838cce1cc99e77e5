"""GRPO objective (docs/design.md 3): REINFORCE at ratio 1 under each TRL normaliser, the clip, the k3 KL,
autograd vs finite differences, robustness and padding."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import GRPOConfig, aggregate, grpo_loss

MODES = ["grpo", "bnpo", "dr_grpo", "dapo"]


def _grad(logprobs, old, advantages, mask, config, **aggregate_kwargs):
    output = grpo_loss(logprobs, old, advantages, mask, config)
    loss = aggregate(output, mask, config.aggregation, **aggregate_kwargs)
    return loss, torch.autograd.grad(loss, logprobs)[0], output


# ---------------------------------------------------------------- REINFORCE with the group baseline


@pytest.mark.parametrize(
    ("mode", "kwargs", "expected_rows"),
    [
        # lengths 3, 2, 4 (ragged_mask), N = 3, 9 real tokens, A = [1, -2, 0.5]; gradient = -A_i / normaliser
        ("grpo", {}, [-1 / 9, 2 / 6, -0.5 / 12]),  # normaliser len_i * N: 3*3, 2*3, 4*3
        ("bnpo", {}, [-1 / 9, 2 / 9, -0.5 / 9]),  # all real tokens of the batch: 9
        ("dr_grpo", {"max_completion_length": 8}, [-1 / 24, 2 / 24, -0.5 / 24]),  # N * max length = 3 * 8
        ("dr_grpo", {}, [-1 / 12, 2 / 12, -0.5 / 12]),  # max length defaults to T = 4
        ("dapo", {}, [-1 / 9, 2 / 9, -0.5 / 9]),  # one micro-batch: its own 9 tokens, as bnpo
        ("dapo", {"num_tokens": 18}, [-1 / 18, 2 / 18, -0.5 / 18]),  # a global count over two micro-batches
    ],
)
def test_ratio_one_is_reinforce_with_each_normaliser(mode, kwargs, expected_rows, ragged_mask):
    # At r = 1 the clip is inactive: loss_t = -r_t A and d loss_t / d logprob_t = -r_t A = -A.
    logprobs = torch.full(ragged_mask.shape, -0.7, dtype=torch.float64, requires_grad=True)
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    _, grad, output = _grad(
        logprobs, logprobs.detach().clone(), advantages, ragged_mask, GRPOConfig(aggregation=mode), **kwargs
    )
    expected = torch.tensor(expected_rows, dtype=torch.float64)[:, None] * ragged_mask
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=0.0)
    assert output.metrics["grpo/clip_frac"].item() == 0.0


def test_inactive_clip_is_importance_weighted_reinforce(ragged_mask):
    # epsilon_low = 10 (lower bound -9) and epsilon_high = inf never bind: loss_t = -r_t A_i, so
    # d / d logprob_t = -A_i r_t / (len_i N) under the 'grpo' aggregation.
    g = torch.Generator().manual_seed(3)
    old = -torch.rand(3, 4, generator=g, dtype=torch.float64) - 0.5
    logprobs = (old + 0.8 * torch.randn(3, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    config = GRPOConfig(epsilon_low=10.0, epsilon_high=math.inf)
    _, grad, output = _grad(logprobs, old, advantages, ragged_mask, config)
    ratio = torch.exp(logprobs.detach() - old)
    lengths = ragged_mask.sum(-1, keepdim=True).to(torch.float64)
    torch.testing.assert_close(grad, -advantages[:, None] * ratio * ragged_mask / (lengths * 3), rtol=1e-12, atol=1e-15)
    assert output.metrics["grpo/clip_frac"].item() == 0.0


# ---------------------------------------------------------------- the clip


def test_clip_cases_by_hand():
    # eps = 0.2 so the trust region is [0.8, 1.2]. Two sequences of three tokens, ratios 1.5, 0.5, 1.1 each.
    # A = +1: r = 1.5 is clipped high (loss -1.2, no gradient); r = 0.5: -min(0.5, 0.8) = -0.5 (gradient
    #         flows, min picks the unclipped term); r = 1.1 inside: -1.1.
    # A = -1: r = 1.5: -min(-1.5, -1.2) = 1.5 (gradient flows: a bad sample pushed down is never clipped);
    #         r = 0.5 is clipped low: -min(-0.5, -0.8) = 0.8 (no gradient); r = 1.1: 1.1.
    ratios = torch.tensor([[1.5, 0.5, 1.1], [1.5, 0.5, 1.1]], dtype=torch.float64)
    old = torch.full((2, 3), -1.0, dtype=torch.float64)
    logprobs = (old + ratios.log()).requires_grad_(True)
    mask = torch.ones(2, 3, dtype=torch.bool)
    advantages = torch.tensor([1.0, -1.0], dtype=torch.float64)
    loss, grad, output = _grad(logprobs, old, advantages, mask, GRPOConfig())
    torch.testing.assert_close(output.losses, torch.tensor([[-1.2, -0.5, -1.1], [1.5, 0.8, 1.1]], dtype=torch.float64))
    # 'grpo' aggregation divides by len * N = 6; gradient of -r A is -A r
    expected = torch.tensor([[0.0, -0.5, -1.1], [1.5, 0.0, 1.1]], dtype=torch.float64) / 6
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)
    assert output.metrics["grpo/clip_frac_high"].item() == pytest.approx(1 / 6)
    assert output.metrics["grpo/clip_frac_low"].item() == pytest.approx(1 / 6)
    assert output.metrics["grpo/clip_frac"].item() == pytest.approx(2 / 6)
    assert loss.item() == pytest.approx((-1.2 - 0.5 - 1.1 + 1.5 + 0.8 + 1.1) / 6)


def test_zero_advantage_tokens_are_never_counted_as_clipped():
    # TRL counts a token as clipped only when the clip binds: (r > 1 + eps_high) & (A > 0), or
    # (r < 1 - eps_low) & (A < 0). With A = 0 the loss is 0 whatever r is, so r = 1.5 and r = 0.5 count as neither.
    old = torch.full((1, 2), -1.0, dtype=torch.float64)
    logprobs = old + torch.tensor([[math.log(1.5), math.log(0.5)]], dtype=torch.float64)
    output = grpo_loss(logprobs, old, torch.zeros(1, dtype=torch.float64), torch.ones(1, 2, dtype=torch.bool))
    assert output.metrics["grpo/clip_frac"].item() == 0.0
    assert output.losses.abs().max().item() == 0.0


def test_clip_higher_uses_epsilon_high():
    # DAPO's clip-higher: eps_high = 0.28 lets r = 1.25 through for A > 0 (it would be clipped at 1.2).
    old = torch.full((1, 1), -1.0, dtype=torch.float64)
    logprobs = (old + math.log(1.25)).requires_grad_(True)
    mask = torch.ones(1, 1, dtype=torch.bool)
    advantages = torch.tensor([2.0], dtype=torch.float64)
    _, grad_high, out_high = _grad(logprobs, old, advantages, mask, GRPOConfig(epsilon_high=0.28))
    _, grad_sym, out_sym = _grad(logprobs, old, advantages, mask, GRPOConfig())
    assert grad_high.item() == pytest.approx(-2.0 * 1.25) and out_high.metrics["grpo/clip_frac_high"].item() == 0.0
    assert grad_sym.item() == 0.0 and out_sym.metrics["grpo/clip_frac_high"].item() == 1.0


# ---------------------------------------------------------------- k3 KL to the reference


def test_k3_value_and_gradient_by_hand():
    # k3 = exp(ref - logp) - 1 - (ref - logp). Token 1: ref - logp = log(1/2): 0.5 - 1 + log 2 = 0.193147;
    # token 2: ref - logp = log 2: 2 - 1 - log 2 = 0.306853. Their mean is exactly (0.5 + 2 - 2)/2 = 0.25.
    # With A = 0 and r = 1 the policy term is 0, so the loss per token is beta * k3, beta = 0.1.
    # d k3 / d logp = 1 - exp(ref - logp): 0.5 and -1; the 'grpo' aggregation divides by len * N = 2.
    logprobs = torch.tensor([[math.log(0.5), math.log(0.25)]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[math.log(0.25), math.log(0.5)]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    config = GRPOConfig(beta=0.1)
    output = grpo_loss(logprobs, logprobs.detach().clone(), torch.zeros(1, dtype=torch.float64), mask, config, ref)
    k3 = torch.tensor([[0.5 - 1 + math.log(2), 2 - 1 - math.log(2)]], dtype=torch.float64)
    torch.testing.assert_close(output.losses, 0.1 * k3, rtol=1e-12, atol=0.0)
    assert output.metrics["kl/ref_k3"].item() == pytest.approx(0.25, rel=1e-12)
    (grad,) = torch.autograd.grad(aggregate(output, mask, "grpo"), logprobs)
    torch.testing.assert_close(grad, 0.1 * torch.tensor([[0.5, -1.0]], dtype=torch.float64) / 2, rtol=1e-12, atol=0.0)


def test_beta_without_reference_is_an_error(ragged_mask):
    logprobs = torch.zeros(ragged_mask.shape)
    with pytest.raises(LadkitError, match="ref_logprobs"):
        grpo_loss(logprobs, logprobs, torch.zeros(3), ragged_mask, GRPOConfig(beta=0.04))


# ---------------------------------------------------------------- autograd vs finite differences


@pytest.mark.parametrize("mode", MODES)
def test_gradient_matches_finite_differences_away_from_clip_kinks(mode, ragged_mask, central_diff):
    # Token log-ratios chosen so every ratio is >= 0.05 away from the kinks 0.8 and 1.2 (eps = 0.2):
    # e^-0.5 = 0.61, e^-0.1 = 0.90, e^0.05 = 1.05, e^0.4 = 1.49, e^-0.3 = 0.74, e^0.1 = 1.11.
    log_ratios = torch.tensor(
        [[-0.5, -0.1, 0.05, 0.4], [0.4, -0.3, 0.1, -0.5], [0.05, 0.1, -0.1, -0.3]], dtype=torch.float64
    )
    g = torch.Generator().manual_seed(4)
    old = -torch.rand(3, 4, generator=g, dtype=torch.float64) - 0.5
    ref = old + 0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    logprobs = (old + log_ratios).requires_grad_(True)
    advantages = torch.tensor([1.3, -0.7, 0.4], dtype=torch.float64)
    config = GRPOConfig(beta=0.2, aggregation=mode)

    def scalar(lp):
        return aggregate(grpo_loss(lp, old, advantages, ragged_mask, config, ref), ragged_mask, mode)

    (autograd,) = torch.autograd.grad(scalar(logprobs), logprobs)
    torch.testing.assert_close(autograd, central_diff(scalar, logprobs), rtol=1e-6, atol=1e-9)
    assert autograd[ragged_mask].abs().min().item() > 0  # the KL term reaches even clipped tokens


# ---------------------------------------------------------------- robustness: extremes and padding


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("beta", [0.0, 0.1])
@pytest.mark.parametrize("per_token", [100.0, 500.0])
def test_extremes_and_nan_padding_stay_finite(mode, beta, per_token):
    # fp32, token log-ratios (and reference gaps) of +-per_token, |A| = 50, NaN/inf where mask = 0.
    mask = torch.tensor([[1] * 5 + [0]] * 4 + [[0] * 6], dtype=torch.bool)  # [5, 6]
    signs = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])[:, None]
    old = torch.full((5, 6), -2.0)
    logprobs = old + signs * per_token
    ref = old - signs * per_token
    for t in (logprobs, old, ref):
        t.masked_fill_(~mask, float("nan"))
    logprobs[-1] = float("-inf")
    logprobs.requires_grad_(True)
    advantages = torch.tensor([50.0, -50.0, 50.0, -50.0, 50.0])
    output = grpo_loss(logprobs, old, advantages, mask, GRPOConfig(beta=beta, aggregation=mode), ref)
    loss = aggregate(output, mask, mode)
    (grad,) = torch.autograd.grad(loss, logprobs)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert all(torch.isfinite(v).all() for v in output.metrics.values()), output.metrics
    assert grad[~mask].abs().max().item() == 0.0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_appending_padded_columns_changes_nothing(mode, beta, ragged_mask):
    g = torch.Generator().manual_seed(5)
    old = -torch.rand(3, 4, generator=g, dtype=torch.float64) - 0.5
    logprobs = old + 0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    ref = old + 0.3 * torch.randn(3, 4, generator=g, dtype=torch.float64)
    advantages = torch.tensor([1.3, -0.7, 0.4], dtype=torch.float64)
    config = GRPOConfig(beta=beta, aggregation=mode)
    kwargs = {"max_completion_length": 4} if mode == "dr_grpo" else {}

    def run(lp, old_lp, ref_lp, mask):
        lp = lp.clone().requires_grad_(True)
        output = grpo_loss(lp, old_lp, advantages, mask, config, ref_lp)
        loss = aggregate(output, mask, mode, **kwargs)
        return loss, torch.autograd.grad(loss, lp)[0], output.metrics

    clean = [t.masked_fill(~ragged_mask, 0.0) for t in (logprobs, old, ref)]
    loss_ref, grad_ref, metrics_ref = run(*clean, ragged_mask)
    wide_mask = torch.cat([ragged_mask, torch.zeros(3, 3, dtype=torch.bool)], dim=1)  # [3, 7]
    garbage = (float("nan"), float("inf"), float("-inf"))
    wide = [
        torch.cat([t, torch.zeros(3, 3, dtype=torch.float64)], 1).masked_fill(~wide_mask, bad)
        for t, bad in zip((logprobs, old, ref), garbage, strict=True)
    ]
    loss, grad, metrics = run(*wide, wide_mask)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad[:, :4], grad_ref, rtol=1e-12, atol=1e-14)
    assert grad[~wide_mask].abs().max().item() == 0.0
    for key, value in metrics_ref.items():
        torch.testing.assert_close(metrics[key], value, rtol=1e-12, atol=1e-14, msg=key)
