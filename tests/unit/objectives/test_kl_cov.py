"""KLCov (Cui et al. 2025): the top-covariance tokens by hand, the |log r| penalty's value and gradient,
autograd vs finite differences, edge cases (one token, all masked) and bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import KLCovConfig, aggregate, kl_cov_loss, make_config
from ladkit.objectives.covariance import top_pick

F64 = torch.float64


def _batch():
    # N = 2, T = 2. A = [2, -2]: token mean 0, centred [[2, 2], [-2, -2]]. log pi = [[-0.5, -2.5],
    # [-1.5, -1.5]]: mean -1.5, centred [[1, -1], [0, 0]], so C = [[2, -2], [0, 0]]: token (0, 0) is
    # the top one. log r = [[0.1, 0.2], [-0.3, 0.0]] (old = log pi - log r).
    logprobs = torch.tensor([[-0.5, -2.5], [-1.5, -1.5]], dtype=F64)
    log_ratio = torch.tensor([[0.1, 0.2], [-0.3, 0.0]], dtype=F64)
    return logprobs, logprobs - log_ratio, torch.tensor([2.0, -2.0], dtype=F64), torch.ones(2, 2, dtype=torch.bool)


def test_penalty_on_the_top_token_by_hand():
    # loss_t = -A_t r_t + kl_coef |log r_t| on the top token (max(1, int(2e-4 * 4)) = 1 of them):
    # (0, 0): -2 e^0.1 + 0.1; (0, 1): -2 e^0.2; (1, 0): 2 e^-0.3; (1, 1): 2 e^0 = 2.
    # Gradients: d(-A r)/d log pi = -A r, d|log r|/d log pi = sign(log r) = +1 at (0, 0); 'dapo' divides by 4.
    logprobs, old, advantages, mask = _batch()
    logprobs.requires_grad_(True)
    output = kl_cov_loss(logprobs, old, advantages, mask)
    expected = torch.tensor([[-2 * math.exp(0.1) + 0.1, -2 * math.exp(0.2)], [2 * math.exp(-0.3), 2.0]], dtype=F64)
    torch.testing.assert_close(output.losses.detach(), expected)
    grad = torch.autograd.grad(aggregate(output, mask, "dapo"), logprobs)[0]
    expected_grad = (
        torch.tensor([[-2 * math.exp(0.1) + 1.0, -2 * math.exp(0.2)], [2 * math.exp(-0.3), 2.0]], dtype=F64) / 4
    )
    torch.testing.assert_close(grad, expected_grad)
    assert output.metrics["kl_cov/penalised_frac"].item() == pytest.approx(1 / 4)
    assert output.metrics["kl_cov/penalty"].item() == pytest.approx(0.1 / 4)
    assert output.metrics["kl_cov/abs_log_ratio"].item() == pytest.approx((0.1 + 0.2 + 0.3 + 0.0) / 4)


def test_kl_coef_scales_the_penalty_and_zero_is_the_unclipped_surrogate():
    logprobs, old, advantages, mask = _batch()
    plain = kl_cov_loss(logprobs, old, advantages, mask, KLCovConfig(kl_coef=0.0)).losses
    torch.testing.assert_close(plain, -advantages[:, None] * (logprobs - old).exp())  # no clip at all
    triple = kl_cov_loss(logprobs, old, advantages, mask, KLCovConfig(kl_coef=3.0)).losses
    assert (triple - plain)[0, 0].item() == pytest.approx(3 * 0.1)
    assert (triple - plain)[~torch.tensor([[True, False], [False, False]])].abs().max().item() == 0.0


def test_kl_ratio_picks_the_largest_covariances():
    # C = [[3, 1, -1], [2, 0.5, 4]] all valid; kl_ratio 0.5 -> int(0.5 * 6) = 3 tokens: 4, 3 and 2.
    covariance = torch.tensor([[3.0, 1.0, -1.0], [2.0, 0.5, 4.0]], dtype=F64)
    picked = top_pick(covariance, torch.ones(2, 3, dtype=torch.bool), 3)
    assert picked.tolist() == [[True, False, False], [True, False, True]]
    # masked tokens are never picked, even with the largest value
    mask = torch.tensor([[False, True, True], [True, True, True]])
    assert top_pick(covariance, mask, 1).tolist() == [[False, False, False], [False, False, True]]


def test_a_single_valid_token_is_penalised():
    # One real token: its C is 0 (it is its own mean) but max(1, ...) = 1 token is still picked, as in
    # verl. loss = -A r + |log r| = -1 * e^0.5 + 0.5.
    logprobs = torch.tensor([[-1.0, 7.0]], dtype=F64)
    old = torch.tensor([[-1.5, 0.0]], dtype=F64)
    mask = torch.tensor([[True, False]])
    output = kl_cov_loss(logprobs, old, torch.tensor([1.0], dtype=F64), mask)
    torch.testing.assert_close(output.losses, torch.tensor([[-math.exp(0.5) + 0.5, 0.0]], dtype=F64))


def test_all_masked_is_zero_and_finite():
    mask = torch.zeros(2, 3, dtype=torch.bool)
    logprobs = torch.full((2, 3), float("nan"), dtype=F64, requires_grad=True)
    output = kl_cov_loss(logprobs, torch.zeros(2, 3, dtype=F64), torch.tensor([1.0, -1.0], dtype=F64), mask)
    loss = aggregate(output, mask, "dapo")
    assert loss.item() == 0.0
    assert torch.autograd.grad(loss, logprobs)[0].abs().sum().item() == 0.0
    assert all(math.isfinite(value.item()) for value in output.metrics.values())


@pytest.mark.parametrize("mode", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_gradient_matches_finite_differences(mode, ragged_mask, central_diff):
    # kl_ratio 0.4 penalises int(0.4 * 9) = 3 tokens; no log r is 0 (|.| has a kink there) and the
    # covariances are distinct, so the top-3 set does not move under a 1e-6 perturbation.
    log_ratios = torch.tensor([[-0.5, -0.1, 0.05, 0.4], [0.4, -0.3, 0.1, -0.5], [0.05, 0.1, -0.1, -0.3]], dtype=F64)
    old = -torch.rand(3, 4, generator=torch.Generator().manual_seed(4), dtype=F64) * 2 - 0.5
    logprobs = (old + log_ratios).requires_grad_(True)
    advantages = torch.tensor([1.3, -0.7, 0.4], dtype=F64)
    config = KLCovConfig(kl_ratio=0.4, kl_coef=0.7, aggregation=mode)

    def scalar(lp: torch.Tensor) -> torch.Tensor:
        return aggregate(kl_cov_loss(lp, old, advantages, ragged_mask, config), ragged_mask, mode)

    assert kl_cov_loss(logprobs, old, advantages, ragged_mask, config).metrics[
        "kl_cov/penalised_frac"
    ].item() == pytest.approx(3 / 9)
    autograd = torch.autograd.grad(scalar(logprobs), logprobs)[0]
    torch.testing.assert_close(autograd, central_diff(scalar, logprobs), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"kl_ratio": 0.0}, "kl_cov.kl_ratio"),
        ({"kl_ratio": 2.0}, "kl_cov.kl_ratio"),
        ({"kl_coef": -1.0}, "kl_cov.kl_coef"),
        ({"kl_coef": float("inf")}, "kl_cov.kl_coef"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(overrides, key):
    with pytest.raises(LadkitError, match=key.replace(".", r"\.")) as error:
        make_config("kl_cov", **overrides)
    assert "\n" not in str(error.value)


def test_defaults_are_the_authors():
    config = KLCovConfig()
    assert (config.kl_ratio, config.kl_coef, config.aggregation) == (2e-4, 1.0, "dapo")
