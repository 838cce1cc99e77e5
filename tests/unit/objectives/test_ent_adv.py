"""EntAdv (Cheng et al. 2025): the capped entropy bonus by hand, the sign never flips, alpha = 0 is GRPO,
no gradient through the entropy, autograd vs finite differences, padding, bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import EntAdvConfig, GRPOConfig, aggregate, ent_adv_loss, grpo_loss, make_config, objective_loss

F64 = torch.float64


def test_shaped_advantages_by_hand():
    # alpha 0.4, kappa 2. Entropies [0.5, 3.0] in both rows: alpha H = [0.2, 1.2]. |A| = 1 so the cap is
    # |A| / kappa = 0.5 and psi = min(alpha H, 0.5) = [0.2, 0.5] (the second token is capped).
    # A = +1: A' = [1.2, 1.5]; A = -1: A' = [-0.8, -0.5]. At r = 1 the loss is -A' and its gradient -A' r;
    # 'grpo' aggregation divides by len * N = 2 * 2 = 4.
    logprobs = torch.full((2, 2), -1.0, dtype=F64, requires_grad=True)
    entropy = torch.tensor([[0.5, 3.0], [0.5, 3.0]], dtype=F64)
    mask = torch.ones(2, 2, dtype=torch.bool)
    output = ent_adv_loss(logprobs, logprobs.detach(), torch.tensor([1.0, -1.0], dtype=F64), mask, entropy=entropy)
    shaped = torch.tensor([[1.2, 1.5], [-0.8, -0.5]], dtype=F64)
    torch.testing.assert_close(output.losses.detach(), -shaped)
    grad = torch.autograd.grad(aggregate(output, mask, "grpo"), logprobs)[0]
    torch.testing.assert_close(grad, -shaped / 4)
    assert output.metrics["ent_adv/bonus"].item() == pytest.approx((0.2 + 0.5) * 2 / 4)
    assert output.metrics["ent_adv/capped_frac"].item() == pytest.approx(0.5)
    assert output.metrics["ent_adv/entropy"].item() == pytest.approx(1.75)


@pytest.mark.parametrize("advantage", [-3.0, -0.01, 0.0, 0.01, 3.0])
def test_the_bonus_never_flips_or_cancels_the_sign(advantage):
    # Whatever the entropy (here huge), psi <= |A| / kappa: A' = A (1 + 1/kappa) for A > 0,
    # A (1 - 1/kappa) for A < 0, and 0 for A = 0 (no bonus without a signal).
    logprobs = torch.zeros(1, 3, dtype=F64)
    entropy = torch.tensor([[1e6, 50.0, 7.0]], dtype=F64)
    output = ent_adv_loss(
        logprobs,
        logprobs,
        torch.tensor([advantage], dtype=F64),
        torch.ones(1, 3, dtype=torch.bool),
        EntAdvConfig(kappa=2.0),
        entropy=entropy,
    )
    shaped = -output.losses  # r = 1
    expected = advantage * (1.5 if advantage > 0 else 0.5)
    torch.testing.assert_close(shaped, torch.full((1, 3), expected, dtype=F64))


def test_alpha_zero_is_grpo(ragged_mask):
    g = torch.Generator().manual_seed(2)
    old = -torch.rand(3, 4, generator=g, dtype=F64) - 0.5
    logprobs = old + 0.5 * torch.randn(3, 4, generator=g, dtype=F64)
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    entropy = torch.rand(3, 4, generator=g, dtype=F64) * 3
    output = ent_adv_loss(logprobs, old, advantages, ragged_mask, EntAdvConfig(alpha=0.0), entropy=entropy)
    torch.testing.assert_close(output.losses, grpo_loss(logprobs, old, advantages, ragged_mask, GRPOConfig()).losses)


def test_no_gradient_flows_into_the_entropy():
    logprobs = torch.full((1, 2), -1.0, dtype=F64, requires_grad=True)
    entropy = torch.tensor([[0.3, 0.9]], dtype=F64, requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    output = ent_adv_loss(logprobs, logprobs.detach(), torch.tensor([1.0], dtype=F64), mask, entropy=entropy)
    grad_logprobs, grad_entropy = torch.autograd.grad(
        aggregate(output, mask, "grpo"), [logprobs, entropy], allow_unused=True
    )
    assert grad_entropy is None
    # the bonus still shapes the logprobs' gradient: -(1 + 0.4 H) / 2 = [-0.56, -0.68]
    torch.testing.assert_close(grad_logprobs, torch.tensor([[-0.56, -0.68]], dtype=F64))


@pytest.mark.parametrize("mode", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_gradient_matches_finite_differences(mode, ragged_mask, central_diff):
    # Ratios away from the clip kinks 0.8 / 1.2; shaped advantages keep the sign of A, so the clip sides are
    # those of GRPO. Entropy is a fixed input (the caller computes it with no gradient).
    log_ratios = torch.tensor([[-0.5, -0.1, 0.05, 0.4], [0.4, -0.3, 0.1, -0.5], [0.05, 0.1, -0.1, -0.3]], dtype=F64)
    g = torch.Generator().manual_seed(4)
    old = -torch.rand(3, 4, generator=g, dtype=F64) - 0.5
    entropy = torch.rand(3, 4, generator=g, dtype=F64) * 2
    logprobs = (old + log_ratios).requires_grad_(True)
    advantages = torch.tensor([1.3, -0.7, 0.4], dtype=F64)
    config = EntAdvConfig(aggregation=mode)

    def scalar(lp: torch.Tensor) -> torch.Tensor:
        return aggregate(ent_adv_loss(lp, old, advantages, ragged_mask, config, entropy=entropy), ragged_mask, mode)

    autograd = torch.autograd.grad(scalar(logprobs), logprobs)[0]
    torch.testing.assert_close(autograd, central_diff(scalar, logprobs), rtol=1e-6, atol=1e-9)


def test_nan_padding_and_all_masked_stay_finite():
    mask = torch.tensor([[True, False], [False, False]])
    logprobs = torch.tensor([[-1.0, float("nan")], [float("nan"), float("nan")]], dtype=F64, requires_grad=True)
    entropy = torch.tensor([[0.5, float("nan")], [float("inf"), float("nan")]], dtype=F64)
    output = ent_adv_loss(
        logprobs, torch.full((2, 2), -1.0, dtype=F64), torch.tensor([1.0, 2.0], dtype=F64), mask, entropy=entropy
    )
    loss = aggregate(output, mask, "bnpo")
    assert loss.item() == pytest.approx(-1.2)  # A' = 1 + min(0.2, 0.5) on the one real token
    assert torch.isfinite(torch.autograd.grad(loss, logprobs)[0]).all()
    assert all(math.isfinite(value.item()) for value in output.metrics.values())
    empty = ent_adv_loss(
        logprobs, logprobs.detach(), torch.ones(2, dtype=F64), torch.zeros(2, 2, dtype=torch.bool), entropy=entropy
    )
    assert empty.losses.abs().sum().item() == 0.0


def test_entropy_is_required_with_its_shape():
    logprobs = torch.zeros(2, 3)
    mask = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(LadkitError, match="entropies"):
        ent_adv_loss(logprobs, logprobs, torch.zeros(2), mask)
    with pytest.raises(LadkitError, match=r"\(2, 3\)"):
        ent_adv_loss(logprobs, logprobs, torch.zeros(2), mask, entropy=torch.zeros(2, 2))
    # through the registry: the caller must pass entropy (Needs.entropy = "detached")
    with pytest.raises(LadkitError, match="entropy"):
        objective_loss("ent_adv", EntAdvConfig(), logprobs, logprobs, torch.zeros(2), mask)
    loss, metrics = objective_loss(
        "ent_adv", EntAdvConfig(), logprobs, logprobs, torch.ones(2), mask, entropy=torch.ones(2, 3)
    )
    assert loss.item() == pytest.approx(-1.4) and "ent_adv/bonus" in metrics  # A' = 1 + min(0.4, 0.5)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"alpha": -0.1}, "ent_adv.alpha"),
        ({"kappa": 1.0}, "ent_adv.kappa"),
        ({"kappa": -2.0}, "ent_adv.kappa"),
        ({"epsilon_low": -0.2}, "ent_adv.epsilon_low"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(overrides, key):
    with pytest.raises(LadkitError, match=key.replace(".", r"\.")) as error:
        make_config("ent_adv", **overrides)
    assert "\n" not in str(error.value)


def test_defaults_are_the_papers():
    config = EntAdvConfig()
    assert (config.alpha, config.kappa) == (0.4, 2.0)
