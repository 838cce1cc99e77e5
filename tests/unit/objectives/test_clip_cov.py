"""ClipCov (Cui et al. 2025): the covariance by hand, which tokens qualify, the seeded random pick, the PPO
clip's interplay, autograd vs finite differences, edge cases (one, none, all masked) and bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import ClipCovConfig, GRPOConfig, aggregate, clip_cov_loss, grpo_loss, make_config
from ladkit.objectives.covariance import random_pick, selection_count, token_covariance

F64 = torch.float64


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_candidate_batch():
    # N = 2, T = 2, every token real. A = [2, -2] per sequence, so the token mean of A is 0 and the
    # centred advantages are [[2, 2], [-2, -2]]. log pi = [[-0.5, -2.5], [-1.5, -1.5]] has mean -1.5,
    # centred [[1, -1], [0, 0]]. C = centred A * centred log pi = [[2, -2], [0, 0]]: only token (0, 0)
    # lies in (w_low, w_high) = (1, 5).
    logprobs = torch.tensor([[-0.5, -2.5], [-1.5, -1.5]], dtype=F64)
    advantages = torch.tensor([2.0, -2.0], dtype=F64)
    return logprobs, advantages, torch.ones(2, 2, dtype=torch.bool)


def test_covariance_by_hand():
    logprobs, advantages, mask = _one_candidate_batch()
    covariance = token_covariance(advantages[:, None].expand(2, 2), logprobs, mask)
    torch.testing.assert_close(covariance, torch.tensor([[2.0, -2.0], [0.0, 0.0]], dtype=F64))


def test_covariance_ignores_padding():
    # Row 1's second token is padding holding 100: it must enter neither mean. Valid: A = [1, 1, -1],
    # log pi = [-1, -2, -3] -> means 1/3 and -2; C = [(2/3)(1), (2/3)(0), (-4/3)(-1)] = [2/3, 0, 4/3].
    advantages = torch.tensor([[1.0, 1.0], [-1.0, 100.0]], dtype=F64)
    logprobs = torch.tensor([[-1.0, -2.0], [-3.0, 100.0]], dtype=F64)
    mask = torch.tensor([[True, True], [True, False]])
    covariance = token_covariance(advantages, logprobs, mask)
    torch.testing.assert_close(covariance, torch.tensor([[2 / 3, 0.0], [4 / 3, 0.0]], dtype=F64))


def test_the_one_qualifying_token_loses_its_loss_and_gradient():
    # At r = 1 the surrogate is -A r: [[-2, -2], [2, 2]]; token (0, 0) (C = 2) is the only candidate and
    # max(1, int(2e-4 * 4)) = 1 token is picked, so the losses are [[0, -2], [2, 2]]. 'dapo' divides the
    # sum by the 4 real tokens: 2 / 4 = 0.5; d loss / d log pi_t = -A_t r_t / 4 except the dropped token.
    logprobs, advantages, mask = _one_candidate_batch()
    logprobs = logprobs.clone().requires_grad_(True)
    output = clip_cov_loss(logprobs, logprobs.detach(), advantages, mask, generator=_seeded())
    torch.testing.assert_close(output.losses.detach(), torch.tensor([[0.0, -2.0], [2.0, 2.0]], dtype=F64))
    loss = aggregate(output, mask, "dapo")
    assert loss.item() == pytest.approx(0.5)
    grad = torch.autograd.grad(loss, logprobs)[0]
    torch.testing.assert_close(grad, torch.tensor([[0.0, -0.5], [0.5, 0.5]], dtype=F64))
    assert output.metrics["clip_cov/detached_frac"].item() == pytest.approx(1 / 4)
    assert output.metrics["clip_cov/candidate_frac"].item() == pytest.approx(1 / 4)
    assert output.metrics["clip_cov/covariance"].item() == pytest.approx(0.0)  # (2 - 2 + 0 + 0) / 4


def test_a_token_the_ppo_clip_holds_is_never_a_candidate():
    # Same batch, but token (0, 0) has r = 3 > 1 + eps_high = 2 with A = 2 > 0: the clip binds (loss
    # -A (1 + eps_high) = -4, no gradient), so it is excluded from the candidates and nothing is picked.
    logprobs, advantages, mask = _one_candidate_batch()
    old = logprobs.clone()
    old[0, 0] -= math.log(3.0)
    output = clip_cov_loss(logprobs, old, advantages, mask, generator=_seeded())
    torch.testing.assert_close(output.losses, torch.tensor([[-4.0, -2.0], [2.0, 2.0]], dtype=F64))
    assert output.metrics["clip_cov/detached_frac"].item() == 0.0
    assert output.metrics["clip_cov/clip_frac"].item() == pytest.approx(1 / 4)


def test_no_candidate_is_the_plain_clipped_surrogate(ragged_mask):
    # Bounds (50, 60) that no |C| here reaches: ClipCov is exactly the PPO-clip surrogate (GRPO's, same eps).
    g = _seeded(5)
    old = -torch.rand(3, 4, generator=g, dtype=F64) - 0.5
    logprobs = old + 0.6 * torch.randn(3, 4, generator=g, dtype=F64)
    advantages = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    config = ClipCovConfig(covariance_low=50.0, covariance_high=60.0, epsilon_low=0.2, epsilon_high=0.2)
    output = clip_cov_loss(logprobs, old, advantages, ragged_mask, config, generator=_seeded())
    reference = grpo_loss(logprobs, old, advantages, ragged_mask, GRPOConfig())
    torch.testing.assert_close(output.losses, reference.losses)
    assert output.metrics["clip_cov/detached_frac"].item() == 0.0


def test_all_masked_is_zero_and_finite():
    mask = torch.zeros(2, 3, dtype=torch.bool)
    logprobs = torch.full((2, 3), float("nan"), dtype=F64, requires_grad=True)  # padding may hold NaN
    output = clip_cov_loss(logprobs, torch.zeros(2, 3, dtype=F64), torch.tensor([1.0, -1.0], dtype=F64), mask)
    assert output.losses.abs().sum().item() == 0.0
    loss = aggregate(output, mask, "dapo")
    assert loss.item() == 0.0
    assert torch.autograd.grad(loss, logprobs)[0].abs().sum().item() == 0.0
    assert all(math.isfinite(value.item()) for value in output.metrics.values())


# ---------------------------------------------------------------- the count and the seeded pick


@pytest.mark.parametrize(
    ("ratio", "valid", "expected"),
    [(2e-4, 4, 1), (2e-4, 5000, 1), (2e-4, 10_000, 2), (2e-4, 12_499, 2), (0.5, 7, 3), (1.0, 7, 7)],
)
def test_selection_count_is_max_one_int(ratio, valid, expected):
    # max(1, int(ratio * #valid)): 2e-4 * 12499 = 2.4998 -> 2; 0.5 * 7 = 3.5 -> 3.
    assert selection_count(ratio, valid) == expected


def test_pick_is_deterministic_given_the_seed_and_stays_among_candidates():
    candidates = torch.tensor([[True, False, True, True], [False, True, True, False]])  # 5 candidates
    first = random_pick(candidates, 2, _seeded(7))
    again = random_pick(candidates, 2, _seeded(7))
    assert torch.equal(first, again)
    assert first.sum().item() == 2 and not (first & ~candidates).any()
    picks = {tuple(random_pick(candidates, 2, _seeded(seed)).flatten().tolist()) for seed in range(20)}
    assert len(picks) > 1  # other seeds pick other tokens
    assert random_pick(candidates, 9, _seeded(0)).sum().item() == 5  # never more than the candidates


def test_pick_is_uniform_over_candidates():
    # One of 4 candidates, 800 seeds: each is picked 200 times in expectation (binomial sd 12.2); a band
    # of +-50 (4 sd) fails for a pick that favours any position.
    candidates = torch.tensor([[True, True], [True, True]])
    counts = sum(random_pick(candidates, 1, _seeded(seed)).to(torch.int64) for seed in range(800))
    assert counts.sum().item() == 800
    assert (counts - 200).abs().max().item() < 50


def test_seeded_pick_equals_the_default_generator_seeded_alike():
    # generator=None draws from torch's default generator (what verl does): same permutation as a
    # Generator seeded with the same number.
    candidates = torch.ones(3, 5, dtype=torch.bool)
    torch.manual_seed(11)
    default = random_pick(candidates, 4, None)
    assert torch.equal(default, random_pick(candidates, 4, _seeded(11)))


def test_clip_ratio_sets_how_many_are_dropped():
    # 8 real tokens, A = [1, -1] per row of 4, log pi spread so all 8 have C in (0.1, 10): with
    # clip_ratio 0.5, int(0.5 * 8) = 4 of them lose their loss.
    logprobs = torch.tensor([[-0.1, -0.2, -0.3, -0.4], [-3.1, -3.2, -3.3, -3.4]], dtype=F64)
    advantages = torch.tensor([1.0, -1.0], dtype=F64)
    mask = torch.ones(2, 4, dtype=torch.bool)
    config = ClipCovConfig(clip_ratio=0.5, covariance_low=0.1, covariance_high=10.0)
    output = clip_cov_loss(logprobs, logprobs, advantages, mask, config, generator=_seeded(3))
    assert output.metrics["clip_cov/candidate_frac"].item() == 1.0
    assert output.metrics["clip_cov/detached_frac"].item() == pytest.approx(4 / 8)
    assert (output.losses == 0).sum().item() == 4


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("mode", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_gradient_matches_finite_differences(mode, ragged_mask, central_diff):
    # Ratios away from the kinks 0.8 / 1.2 (eps = 0.2); bounds (0.05, 5) and clip_ratio 0.3 drop a few
    # tokens. The pick is re-drawn with the same seed at every evaluation, so it is the same set of tokens
    # (no C sits within 1e-6 of a bound): the selection is a constant mask, as in the paper.
    log_ratios = torch.tensor([[-0.5, -0.1, 0.05, 0.4], [0.4, -0.3, 0.1, -0.5], [0.05, 0.1, -0.1, -0.3]], dtype=F64)
    old = -torch.rand(3, 4, generator=_seeded(4), dtype=F64) * 2 - 0.5
    logprobs = (old + log_ratios).requires_grad_(True)
    advantages = torch.tensor([1.3, -0.7, 0.4], dtype=F64)
    config = ClipCovConfig(clip_ratio=0.3, covariance_low=0.05, epsilon_low=0.2, epsilon_high=0.2, aggregation=mode)

    def scalar(lp: torch.Tensor) -> torch.Tensor:
        return aggregate(
            clip_cov_loss(lp, old, advantages, ragged_mask, config, generator=_seeded(9)), ragged_mask, mode
        )

    output = clip_cov_loss(logprobs, old, advantages, ragged_mask, config, generator=_seeded(9))
    assert 0 < output.metrics["clip_cov/detached_frac"].item() < 0.5  # some dropped, some not
    autograd = torch.autograd.grad(scalar(logprobs), logprobs)[0]
    torch.testing.assert_close(autograd, central_diff(scalar, logprobs), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"clip_ratio": 0.0}, "clip_cov.clip_ratio"),
        ({"clip_ratio": 1.5}, "clip_cov.clip_ratio"),
        ({"clip_ratio": -2e-4}, "clip_cov.clip_ratio"),
        ({"covariance_low": 5.0, "covariance_high": 1.0}, "clip_cov.covariance_low"),
        ({"epsilon_low": -0.1}, "clip_cov.epsilon_low"),
        ({"aggregation": "mean"}, "aggregation"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_key(overrides, key):
    with pytest.raises(LadkitError, match=key.replace(".", r"\.")) as error:
        make_config("clip_cov", **overrides)
    assert "\n" not in str(error.value)


def test_defaults_are_the_authors():
    config = ClipCovConfig()
    assert (config.clip_ratio, config.covariance_low, config.covariance_high) == (2e-4, 1.0, 5.0)
    assert (config.epsilon_low, config.epsilon_high, config.aggregation) == (1.0, 1.0, "dapo")
