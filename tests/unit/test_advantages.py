"""Advantage estimators (docs/design.md section 6): hand-computed values, zero-variance groups, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.advantages import EPS, ESTIMATORS, compute_advantages
from ladkit.errors import LadkitError, UnknownNameError

# B = 3 prompts, G = 3 samples each.
REWARDS = torch.tensor([[0.0, 1.0, 2.0], [3.0, 3.0, 3.0], [1.0, 1.0, 4.0]], dtype=torch.float64)
# group means 1, 3, 2 -> centred rows [-1, 0, 1], [0, 0, 0], [-1, -1, 2]
CENTRED = torch.tensor([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, 2.0]], dtype=torch.float64)


def test_eps_is_trl_value():
    assert EPS == 1e-4


def test_grpo_group_scale_by_hand():
    # unbiased group stds: row 0 sqrt((1 + 0 + 1)/2) = 1; row 1 0; row 2 sqrt((1 + 1 + 4)/2) = sqrt 3
    std = torch.tensor([[1.0], [0.0], [math.sqrt(3.0)]], dtype=torch.float64)
    expected = CENTRED / (std + 1e-4)  # row 0: +-1/1.0001 = +-0.99990001; row 1: exactly 0
    advantages = compute_advantages("grpo", REWARDS)
    torch.testing.assert_close(advantages, expected, rtol=1e-12, atol=0.0)
    assert advantages[0, 2].item() == pytest.approx(0.99990001, rel=1e-8)
    assert advantages[2, 2].item() == pytest.approx(2 / (1.7320508 + 1e-4), rel=1e-7)  # 1.1546345


def test_grpo_batch_scale_by_hand():
    # still group-centred, but divided by the unbiased std of all 9 rewards: mean 18/9 = 2, squared
    # deviations 4+1+0+1+1+1+1+1+4 = 14, variance 14/8 = 1.75, std 1.3228757
    expected = CENTRED / (math.sqrt(1.75) + 1e-4)
    torch.testing.assert_close(compute_advantages("grpo", REWARDS, scale="batch"), expected, rtol=1e-12, atol=0.0)


def test_grpo_no_scale_and_dr_grpo_are_group_centred():
    torch.testing.assert_close(compute_advantages("grpo", REWARDS, scale="none"), CENTRED, rtol=0.0, atol=0.0)
    torch.testing.assert_close(compute_advantages("dr_grpo", REWARDS), CENTRED, rtol=0.0, atol=0.0)


def test_rloo_is_the_leave_one_out_baseline():
    # r_i - mean_{j != i} r_j, e.g. row 2, sample 2: 4 - (1 + 1)/2 = 3; row 0, sample 0: 0 - (1 + 2)/2 = -1.5
    expected = torch.tensor([[-1.5, 0.0, 1.5], [0.0, 0.0, 0.0], [-1.5, -1.5, 3.0]], dtype=torch.float64)
    advantages = compute_advantages("rloo", REWARDS)
    torch.testing.assert_close(advantages, expected, rtol=1e-12, atol=0.0)
    g = REWARDS.shape[1]  # and the same from the definition, written out
    loo = REWARDS - (REWARDS.sum(1, keepdim=True) - REWARDS) / (g - 1)
    torch.testing.assert_close(advantages, loo, rtol=1e-12, atol=1e-15)


def test_none_returns_the_rewards_as_a_copy():
    advantages = compute_advantages("none", REWARDS)
    torch.testing.assert_close(advantages, REWARDS, rtol=0.0, atol=0.0)
    advantages[0, 0] = 99.0
    assert REWARDS[0, 0].item() == 0.0


def test_integer_rewards_become_float():
    advantages = compute_advantages("dr_grpo", torch.tensor([[0, 1, 1, 0]]))
    assert advantages.is_floating_point()
    assert advantages.tolist() == [[-0.5, 0.5, 0.5, -0.5]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("value", [0.0, 0.1, 1 / 3, 123.456])
@pytest.mark.parametrize("g", [3, 7])
@pytest.mark.parametrize(
    ("name", "options"), [("grpo", {}), ("grpo", {"scale": "batch"}), ("dr_grpo", {}), ("rloo", {})]
)
def test_zero_variance_groups_give_exact_zeros(dtype, value, g, name, options):
    # A group of equal rewards carries no signal. The float mean of e.g. seven 0.1s is not exactly 0.1,
    # so a naive r - mean leaves ~1e-9 which /(0 + eps) turns into ~1e-5 (fp32, 123.456: 0.07): must be 0.
    rewards = torch.cat([torch.full((1, g), value, dtype=dtype), torch.arange(g, dtype=dtype)[None]], dim=0)
    advantages = compute_advantages(name, rewards, **options)
    assert torch.isfinite(advantages).all()
    assert advantages[0].abs().max().item() == 0.0
    assert advantages[1].abs().max().item() > 1e-3  # the informative group is untouched


def test_all_equal_batch_gives_zeros_with_batch_scale():
    advantages = compute_advantages("grpo", torch.full((2, 4), 0.3), scale="batch")
    assert advantages.abs().max().item() == 0.0


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_group_size_one_is_an_error(name):
    with pytest.raises(LadkitError, match="group size"):
        compute_advantages(name, torch.tensor([[1.0], [0.0]]))


def test_group_size_one_is_fine_for_raw_rewards():
    assert compute_advantages("none", torch.tensor([[1.0], [0.0]])).tolist() == [[1.0], [0.0]]


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo", "none"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_rewards_are_an_error(name, bad):
    with pytest.raises(LadkitError, match="NaN or inf"):
        compute_advantages(name, torch.tensor([[1.0, bad], [0.0, 1.0]]))


def test_rewards_must_be_two_dimensional():
    with pytest.raises(LadkitError, match=r"\[B, G\]"):
        compute_advantages("grpo", torch.tensor([1.0, 0.0]))


def test_unknown_estimator_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as info:
        compute_advantages("ppo", REWARDS)
    message = str(info.value)
    assert "'ppo'" in message and "\n" not in message
    assert "dr_grpo, grpo, none, rloo" in message
    assert ESTIMATORS.names() == ["dr_grpo", "grpo", "none", "rloo"]


def test_unknown_scale_lists_the_valid_scales():
    with pytest.raises(LadkitError, match="group, batch, none"):
        compute_advantages("grpo", REWARDS, scale="prompt")
