"""Intervals over seeds: hand-worked t and Welch intervals, no interval for one seed, and calibration under
the null (the property the bootstrap it replaced lacked)."""

import numpy as np
import pytest

from ladkit.compare.stats import curve_band, difference_estimate, mean_estimate, seed_means, seed_paired_difference


def test_mean_is_the_mean_over_seeds_of_per_seed_means():
    # seed 0: (1 + 3) / 2 = 2; seed 1: 4 (its NaN step is ignored) -> group mean (2 + 4) / 2 = 3
    assert seed_means([[1.0, 3.0], [4.0, np.nan], [np.nan, np.nan]]).tolist() == [2.0, 4.0]
    estimate = mean_estimate([[1.0, 3.0], [4.0, np.nan]])
    assert estimate.mean == pytest.approx(3.0) and estimate.n == 2
    # per-seed means 2 and 4: sd = sqrt(2), se = sqrt(2)/sqrt(2) = 1; t(0.975, 1 dof) = 12.7062
    assert estimate.low == pytest.approx(3.0 - 12.7062, abs=1e-4)
    assert estimate.high == pytest.approx(3.0 + 12.7062, abs=1e-4)


def test_three_seeds_by_hand():
    # per-seed means 0.2, 0.3, 0.4 (two steps each): mean 0.3, sd 0.1, se 0.1/sqrt(3) = 0.057735;
    # t(0.975, 2 dof) = 4.302653 -> half-width 0.248414
    estimate = mean_estimate([[0.1, 0.3], [0.3, 0.3], [0.4, 0.4]])
    assert (estimate.mean, estimate.n) == (pytest.approx(0.3), 3)
    assert (estimate.low, estimate.high) == (pytest.approx(0.3 - 0.248414, abs=1e-6), pytest.approx(0.548414))


def test_welch_difference_by_hand():
    # ours 1, 2, 3 (mean 2, var 1) and baseline 0, 0, 1, 1 (mean 0.5, var 1/3): se^2 = 1/3 + 1/12 = 5/12;
    # Welch-Satterthwaite dof = (5/12)^2 / ((1/3)^2/2 + (1/12)^2/3) = 0.173611 / 0.057870 = 3.0;
    # t(0.975, 3) = 3.182446 -> half-width 3.182446 * sqrt(5/12) = 3.182446 * 0.645497 = 2.054260
    delta = difference_estimate([[1.0], [2.0], [3.0]], [[0.0], [0.0], [1.0], [1.0]])
    assert delta.mean == pytest.approx(1.5) and delta.n == 3
    assert (delta.low, delta.high) == (pytest.approx(1.5 - 2.054260, abs=1e-6), pytest.approx(3.554260, abs=1e-6))
    assert not delta.excludes_zero


def test_difference_excludes_zero_only_for_a_real_gap():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 0.05, size=(5, 3))
    better = difference_estimate(base + 1.0, base)
    assert better.mean == pytest.approx(1.0) and better.excludes_zero and better.low > 0.9
    same = difference_estimate(rng.normal(0.0, 0.05, size=(5, 3)), base)
    assert not same.excludes_zero


def test_one_seed_has_no_interval_and_never_excludes_zero():
    one = mean_estimate([[0.25, 0.35]])
    assert (one.mean, one.low, one.high, one.n) == (pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3), 1)
    assert not one.has_interval and not one.excludes_zero
    delta = difference_estimate([[0.9]], [[0.1], [0.2], [0.3]])  # a big gap, but the left group is one run
    assert delta.mean == pytest.approx(0.7) and delta.n == 1 and not delta.excludes_zero
    assert mean_estimate([[np.nan, np.nan]]) is None and difference_estimate([[1.0]], [[np.nan]]) is None


def test_identical_seeds_give_an_exact_difference():
    delta = difference_estimate([[0.5], [0.5]], [[0.25], [0.25]])
    assert (delta.mean, delta.low, delta.high) == (0.25, 0.25, 0.25) and delta.excludes_zero


def test_false_positive_rate_under_the_null_is_at_most_nominal():
    # 3 seeds per group, both drawn from the same normal: a calibrated 95% interval of the difference excludes
    # 0 in ~5% of comparisons. The percentile bootstrap this replaced did so in ~20% (benchmarks/
    # compare_calibration.py). Over 1000 seeded comparisons the binomial sd at 5% is 0.7%, so 0.08 is > 4 sd.
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(1000, 2, 3, 1))
    rate = np.mean([difference_estimate(a, b).excludes_zero for a, b in draws])
    assert 0.02 < rate < 0.08


def test_curve_band_is_the_per_step_mean_with_a_t_band_and_a_gap_where_nothing_was_logged():
    mean, low, high = curve_band([[0.0, 1.0, np.nan, 5.0], [2.0, 3.0, np.nan, np.nan]])
    assert mean[:2].tolist() == [1.0, 2.0] and np.isnan(mean[2]) and np.isnan(low[2])
    # step 0: values 0 and 2, sd sqrt(2), se 1, t(0.975, 1) = 12.7062
    assert low[0] == pytest.approx(1.0 - 12.7062, abs=1e-4) and high[0] == pytest.approx(1.0 + 12.7062, abs=1e-4)
    assert low[3] == high[3] == mean[3] == 5.0  # one seed logged step 3: a point, no band


def test_seed_paired_difference_by_hand():
    # Seeds 0..2, two steps each (per-seed means lad 0.5, 0.7, 0.6 and grpo 0.4, 0.5, 0.55): differences 0.1,
    # 0.2, 0.05, mean 0.116667, sd 0.0763763, se 0.0440959, t(0.975, 2) = 4.302653 -> half-width 0.189729.
    lad = [[0.4, 0.6], [0.7, 0.7], [0.5, 0.7]]
    grpo = [[0.4, 0.4], [0.5, 0.5], [0.5, 0.6]]
    paired = seed_paired_difference(lad, grpo)
    assert paired.basis == "paired seeds" and paired.n == 3 and paired.mean == pytest.approx(0.116667, abs=1e-6)
    assert (paired.low, paired.high) == (pytest.approx(0.116667 - 0.189729, abs=1e-6), pytest.approx(0.306396))
    # Welch on the same values ignores the pairing: se 0.0726483 with ~3.74 dof, a wider interval here.
    welch = difference_estimate(lad, grpo)
    assert welch.mean == pytest.approx(paired.mean) and welch.high - welch.low > paired.high - paired.low


def test_seed_paired_difference_drops_a_seed_missing_on_either_side_and_needs_two():
    nan = float("nan")
    # seed 1 has no grpo value: the differences are 0.1 (seed 0) and 0.3 (seed 2): mean 0.2, sd 0.141421,
    # se 0.1, t(0.975, 1) = 12.7062 -> half-width 1.27062.
    paired = seed_paired_difference([[0.5], [0.9], [0.7]], [[0.4], [nan], [0.4]])
    assert paired.n == 2 and paired.mean == pytest.approx(0.2)
    assert paired.high == pytest.approx(0.2 + 1.270620, abs=1e-5)
    one = seed_paired_difference([[0.5], [0.9]], [[0.4], [nan]])
    assert one.n == 1 and not one.has_interval and one.mean == pytest.approx(0.1)
    assert seed_paired_difference([[nan]], [[0.4]]) is None


def test_paired_false_positive_rate_is_nominal_and_the_pairing_pays_when_seeds_share_noise():
    # 3 seeds, no real difference, each seed's two runs sharing a seed effect of sd 1 beside their own noise of
    # sd 0.5: the paired interval still excludes 0 in ~5% of comparisons (binomial sd 0.7% over 1000), and it is
    # narrower than Welch's, which counts the shared effect as noise (and so excludes 0 in under 1%). Expected
    # half-widths: paired 4.303 * 0.707 / sqrt(3) = 1.76, Welch ~2.78 * 1.118 * sqrt(2/3) = 2.54 (ratio 0.69).
    rng = np.random.default_rng(1)
    shared = rng.normal(size=(1000, 1, 3, 1))
    draws = shared + 0.5 * rng.normal(size=(1000, 2, 3, 1))
    paired = [seed_paired_difference(a, b) for a, b in draws]
    assert 0.02 < np.mean([p.excludes_zero for p in paired]) < 0.08
    welch = [difference_estimate(a, b) for a, b in draws]
    assert np.median([p.high - p.low for p in paired]) < 0.75 * np.median([w.high - w.low for w in welch])
    assert np.mean([w.excludes_zero for w in welch]) < 0.02
