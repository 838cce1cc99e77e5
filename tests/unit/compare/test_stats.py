"""Bootstrap estimates: the point estimate is the plain mean, the CI covers the truth and is reproducible."""

import numpy as np
import pytest

from ladkit.compare.stats import bootstrap_difference, bootstrap_mean, curve_band


def test_mean_is_the_mean_over_seeds_of_per_seed_means():
    # seed 0: (1 + 3) / 2 = 2; seed 1: 4 (its NaN step is ignored) -> group mean (2 + 4) / 2 = 3
    estimate = bootstrap_mean([[1.0, 3.0], [4.0, np.nan]])
    assert estimate.mean == pytest.approx(3.0) and estimate.n == 2
    assert 1.0 <= estimate.low <= 3.0 <= estimate.high <= 4.0


def test_ci_contains_the_true_mean_and_is_reproducible():
    rng = np.random.default_rng(123)
    values = rng.normal(0.5, 0.1, size=(20, 3))  # 20 seeds x 3 final steps around a true mean of 0.5
    first, again = bootstrap_mean(values, seed=7), bootstrap_mean(values, seed=7)
    assert first == again
    assert first.low < 0.5 < first.high and first.high - first.low < 0.1  # standard error ~ 0.1/sqrt(60)
    assert bootstrap_mean(values, seed=8) != first  # the seed really drives the resampling


def test_difference_excludes_zero_only_for_a_real_gap():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.05, size=(5, 3))
    better = bootstrap_difference(base + 1.0, base, seed=0)
    assert better.mean == pytest.approx(1.0) and better.excludes_zero and better.low > 0.9
    same = bootstrap_difference(rng.normal(0.0, 0.05, size=(5, 3)), base, seed=0)
    assert not same.excludes_zero


def test_single_value_has_a_point_interval_and_empty_is_none():
    assert bootstrap_mean([[0.25]]).low == bootstrap_mean([[0.25]]).high == 0.25
    assert bootstrap_mean([[np.nan, np.nan]]) is None


def test_curve_band_is_the_per_step_mean_with_a_gap_where_nothing_was_logged():
    mean, low, high = curve_band([[0.0, 1.0, np.nan], [2.0, 3.0, np.nan]])
    assert mean[:2].tolist() == [1.0, 2.0] and np.isnan(mean[2])
    assert low[0] >= 0.0 and high[0] <= 2.0 and low[0] < high[0]
