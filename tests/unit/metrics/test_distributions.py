"""Per-group distributions and the token entropy, against values worked by hand."""

import math

import pytest
import torch

from ladkit.metrics import group_distributions, token_entropy


def test_group_distributions_hand_values():
    advantages = torch.tensor([1.0, -1.0, 0.0])  # [G=3]
    log_ratios = torch.tensor([math.log(2.0), 0.0, 0.0])  # ratios 2, 1, 1
    seq_logprobs = torch.tensor([math.log(0.5), math.log(0.25), math.log(0.25)])
    out = group_distributions(advantages, log_ratios, seq_logprobs, inverse_eta=2.0)
    e = [math.exp(2.0), math.exp(-2.0), 1.0]  # exp(A / eta) with 1/eta = 2
    assert out["advantage_dist"].tolist() == pytest.approx([v / sum(e) for v in e])
    assert out["policy_dist"].tolist() == pytest.approx([0.5, 0.25, 0.25])  # r / sum r = 2/4, 1/4, 1/4
    assert out["sequence_dist"].tolist() == pytest.approx([0.5, 0.25, 0.25])  # already sums to 1
    for value in out.values():
        assert float(value.sum()) == pytest.approx(1.0)


def test_group_distributions_do_not_overflow():
    out = group_distributions(torch.tensor([50.0, 0.0]), torch.tensor([800.0, 0.0]), torch.tensor([-900.0, -1e4]), 4.0)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert out["policy_dist"].tolist() == pytest.approx([1.0, 0.0])


def test_token_entropy_uniform_and_peaked():
    v = 4
    logits = torch.zeros(2, 3, v)  # [N=2, T=3, V=4] uniform everywhere: entropy log 4
    logits[1, :, 0] = 1e4  # row 1: one-hot, entropy 0
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])  # 2 uniform tokens + 1 one-hot token
    assert token_entropy(logits, mask) == pytest.approx(2 * math.log(v) / 3, abs=1e-5)
    assert token_entropy(logits[:1], mask[:1]) == pytest.approx(math.log(v))


def test_token_entropy_temperature():
    logits = torch.tensor([[[math.log(3.0), 0.0]]])  # p = (3/4, 1/4) at T = 1
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert token_entropy(logits, torch.ones(1, 1)) == pytest.approx(h, abs=1e-6)
    assert token_entropy(logits, torch.ones(1, 1), temperature=1e6) == pytest.approx(math.log(2), abs=1e-5)
