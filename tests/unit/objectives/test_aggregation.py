"""Loss aggregation (TRL's loss_type modes) and exact-expectation weights, on hand-computed values."""

from __future__ import annotations

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import AGGREGATIONS, aggregate
from ladkit.types import ObjectiveOutput

NAN = float("nan")
# Ragged [3, 4] batch, lengths 3, 2, 1; NaN in the padding must never leak into the result.
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
TOKEN_LOSSES = torch.tensor([[1.0, 2.0, 3.0, NAN], [4.0, 5.0, NAN, NAN], [6.0, NAN, NAN, NAN]], dtype=torch.float64)
# row sums 6, 9, 6 (total 21); row means 2, 4.5, 6; 6 real tokens


def _token(losses: torch.Tensor = TOKEN_LOSSES) -> ObjectiveOutput:
    return ObjectiveOutput(losses=losses, level="token")


def _sequence(losses: list[float]) -> ObjectiveOutput:
    return ObjectiveOutput(losses=torch.tensor(losses, dtype=torch.float64), level="sequence")


def test_modes_are_the_four_trl_loss_types():
    assert AGGREGATIONS == ("grpo", "bnpo", "dr_grpo", "dapo")


@pytest.mark.parametrize(
    ("mode", "kwargs", "expected"),
    [
        ("grpo", {}, (2 + 4.5 + 6) / 3),  # mean of per-sequence token means = 4.1667
        ("bnpo", {}, 21 / 6),  # all real tokens of the batch: 3.5
        ("dr_grpo", {}, 21 / (3 * 4)),  # N * max length, max length defaulting to T = 4: 1.75
        ("dr_grpo", {"max_completion_length": 8}, 21 / (3 * 8)),  # 0.875
        ("dapo", {}, 21 / 6),  # local token count when no global one is given: 3.5
        ("dapo", {"num_tokens": 42}, 21 / 42),  # the generation batch's token count: 0.5
    ],
)
def test_token_level_modes_by_hand(mode, kwargs, expected):
    assert aggregate(_token(), MASK, mode, **kwargs).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_sequence_level_is_a_mean_over_sequences_in_every_mode(mode):
    assert aggregate(_sequence([1.0, 2.0, 6.0]), MASK, mode).item() == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize(
    ("mode", "kwargs", "expected"),
    [
        # weights [1, 1, 2] are rescaled to mean 1: [0.75, 0.75, 1.5]
        ("grpo", {}, (0.75 * 2 + 0.75 * 4.5 + 1.5 * 6) / 3),  # 4.625
        ("bnpo", {}, (0.75 * 6 + 0.75 * 9 + 1.5 * 6) / (0.75 * 3 + 0.75 * 2 + 1.5 * 1)),  # 20.25 / 5.25
        ("dr_grpo", {"max_completion_length": 4}, 20.25 / 12),
        ("dapo", {"num_tokens": 42}, 20.25 / 42),
    ],
)
def test_weighted_token_modes_by_hand(mode, kwargs, expected):
    weights = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64)
    assert aggregate(_token(), MASK, mode, weights=weights, **kwargs).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_weighted_sequence_level_is_the_exact_expectation(mode):
    # weights p = [0.1, 0.3, 0.6] (any scale): E_p[loss] = 0.1 * 1 + 0.3 * 2 + 0.6 * 6 = 4.3
    for scale in (1.0, 10.0):
        weights = scale * torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
        loss = aggregate(_sequence([1.0, 2.0, 6.0]), MASK, mode, weights=weights)
        assert loss.item() == pytest.approx(4.3, rel=1e-12)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_uniform_weights_reproduce_the_unweighted_result(level, mode):
    output = _token() if level == "token" else _sequence([1.0, 2.0, 6.0])
    weights = torch.full((3,), 7.0, dtype=torch.float64)
    kwargs = {"num_tokens": 42} if mode == "dapo" else {}
    weighted = aggregate(output, MASK, mode, weights=weights, **kwargs)
    torch.testing.assert_close(weighted, aggregate(output, MASK, mode, **kwargs), rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_integer_weights_equal_repeating_the_rows(mode):
    # Weights as multiplicities: weights [1, 2, 3] must give what the batch with row 1 twice and row 2
    # three times gives unweighted (6 rows, 3 + 2*2 + 3*1 = 10 real tokens). This is what "exact
    # expectation" means for token-level modes, including the bnpo/dapo token counts.
    counts = [1, 2, 3]
    repeated = torch.repeat_interleave(torch.arange(3), torch.tensor(counts))
    kwargs = {"max_completion_length": 4} if mode == "dr_grpo" else {}
    weighted = aggregate(_token(), MASK, mode, weights=torch.tensor(counts, dtype=torch.float64), **kwargs)
    unrolled = aggregate(_token(TOKEN_LOSSES[repeated]), MASK[repeated], mode, **kwargs)
    torch.testing.assert_close(weighted, unrolled, rtol=1e-12, atol=0.0)


def test_gradients_never_see_nan_padding():
    losses = TOKEN_LOSSES.clone().requires_grad_(True)
    for mode in AGGREGATIONS:
        (grad,) = torch.autograd.grad(aggregate(_token(losses), MASK, mode), losses)
        assert torch.isfinite(grad).all() and grad[~MASK].abs().max().item() == 0.0


def test_unknown_mode_is_an_error_listing_the_modes():
    with pytest.raises(LadkitError) as info:
        aggregate(_token(), MASK, "sum")
    message = str(info.value)
    assert "'sum'" in message and "\n" not in message
    assert all(mode in message for mode in AGGREGATIONS)
