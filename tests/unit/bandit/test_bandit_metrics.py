"""TV distance, entropy and mode detection on hand-built distributions."""

import math

import pytest
import torch

from ladkit.bandit.metrics import entropy, find_modes, tv_distance


def test_tv_and_entropy_by_hand():
    p = torch.tensor([0.5, 0.5, 0.0])
    q = torch.tensor([0.25, 0.25, 0.5])
    # 1/2 (0.25 + 0.25 + 0.5) = 0.5
    assert float(tv_distance(p, q)) == pytest.approx(0.5)
    # H(p) = log 2 (the zero arm contributes 0 log 0 = 0, not NaN)
    assert float(entropy(p)) == pytest.approx(math.log(2))
    assert float(entropy(torch.full((50,), 1 / 50))) == pytest.approx(math.log(50), rel=1e-6)


def test_modes_basins_and_kept():
    # two bumps: arms 0-3 peak at 1, arms 4-7 peak at 6; the valley (lowest arm between peaks) is arm 3
    target = torch.tensor([0.05, 0.25, 0.1, 0.02, 0.08, 0.1, 0.3, 0.1])
    modes = find_modes(target)
    assert modes.peaks == [1, 6]
    # basin 0 = arms 0..2 (0.4), basin 1 = arms 3..7 (0.6): the valley arm starts the next basin
    assert modes.target_mass.tolist() == pytest.approx([0.4, 0.6])
    assert modes.kept(target) == 2
    spike = torch.zeros(8)
    spike[6] = 1.0
    assert modes.kept(spike) == 1  # basin 0 gets 0 < 0.5 * 0.4
    half = torch.tensor([0.2, 0, 0, 0, 0, 0, 0.8, 0])
    assert modes.kept(half) == 2  # 0.2 >= 0.5 * 0.4 exactly at the threshold


def test_tiny_bumps_are_not_modes():
    # local maxima at arms 0, 3, 5; the basin of arm 3 is arms 2..3 (valleys at 2 and 4), mass 0.04 < 5%
    target = torch.tensor([0.47, 0.02, 0.01, 0.03, 0.01, 0.46])
    modes = find_modes(target)
    assert modes.peaks == [0, 5]
    assert modes.target_mass.tolist() == pytest.approx([0.49, 0.47])
