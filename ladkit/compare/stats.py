"""Intervals over seeds: Student's t for a group's mean, Welch's t for a difference (a paired t for runs
matched by seed, or for two checkpoints over the same prompts), t bands for curves.

Values come as a matrix [S, W]: S seeds (runs of one group) by W aligned steps, NaN where a run did not log
the metric at that step. The unit of evidence is the run: each seed's mean over its W steps is one
observation, and a group's value is the mean of those. Steps within a run are not independent draws of the
experiment, so they narrow nothing.

Why t and not a bootstrap: a percentile bootstrap over 3 to 5 seeds is too narrow. Its spread is sqrt((S-1)/S)
of the standard error, and it has no small-sample widening like t's quantiles (4.30 for 3 seeds, not 1.96).
benchmarks/compare_calibration.py measures it: with 3 seeds per group and no real difference, the 95%
bootstrap interval of the difference excluded 0 in about 20% of comparisons, Welch's in at most 5%. The
same fault showed in the benchmarks' paper-claims grid, where a 3-seed bootstrap called LAD-js's pass@8
significantly worse than GRPO's in one run of the grid and significantly better in a re-run. Welch's test
for few seeds follows Colas, Sigaud & Oudeyer 2019 ("A Hitchhiker's Guide to Statistical Comparisons of
Reinforcement Learning Algorithms"). One seed gives a value with no interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean and its confidence interval; `n` is the number of seeds behind it (the smaller group's for a
    difference). Over seeds, n == 1 has no interval (low == high == mean); over prompts, n is 1 by nature."""

    mean: float
    low: float
    high: float
    n: int
    basis: str = "seeds"
    """What the interval is over: "seeds" (runs), "paired seeds" (a difference over runs matched by seed, see
    seed_paired_difference), or "prompts" (one checkpoint per group, paired over the same held-out prompts:
    evaluation noise only, see paired_difference)."""

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 or self.basis == "prompts"

    @property
    def excludes_zero(self) -> bool:
        """True when there is an interval and it lies on one side of 0 (never for one seed)."""
        return bool(self.has_interval and (self.low > 0 or self.high < 0))


def seed_means(values) -> np.ndarray:
    """[S'] each seed's mean over its logged steps; seeds that logged nothing are dropped."""
    values = np.atleast_2d(np.asarray(values, dtype=float))  # [S, W]
    values = values[~np.all(np.isnan(values), axis=1)]
    return np.nanmean(values, axis=1) if values.size else np.empty(0)


def _t_quantile(level: float, dof: float) -> float:
    return float(stats.t.ppf((1 + level) / 2, dof))


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """(mean, half-width) of the Student-t interval of the mean of `values` (at least 2 of them)."""
    half = _t_quantile(level, values.size - 1) * float(values.std(ddof=1)) / values.size**0.5
    return float(values.mean()), half


def mean_estimate(values, level: float = LEVEL) -> Estimate | None:
    """Mean over seeds of per-seed means of `values` [S, W], with a Student-t interval over seeds (S - 1 dof)."""
    means = seed_means(values)
    if means.size == 0:
        return None
    if means.size == 1:
        return Estimate(float(means[0]), float(means[0]), float(means[0]), 1)
    mean, half = _t_interval(means, level)
    return Estimate(mean, mean - half, mean + half, int(means.size))


def difference_estimate(values, baseline, level: float = LEVEL) -> Estimate | None:
    """Group mean of `values` minus that of `baseline` (both [S, W]) with Welch's t interval: unequal
    variances, Welch-Satterthwaite degrees of freedom. A group with one seed gives the difference alone."""
    ours, theirs = seed_means(values), seed_means(baseline)
    if ours.size == 0 or theirs.size == 0:
        return None
    delta = float(ours.mean() - theirs.mean())
    n = int(min(ours.size, theirs.size))
    if n < 2:
        return Estimate(delta, delta, delta, n)
    var_ours, var_theirs = float(ours.var(ddof=1)) / ours.size, float(theirs.var(ddof=1)) / theirs.size
    total = var_ours + var_theirs
    if total == 0:  # every seed identical on both sides: the difference is known exactly
        return Estimate(delta, delta, delta, n)
    dof = total**2 / (var_ours**2 / (ours.size - 1) + var_theirs**2 / (theirs.size - 1))
    half = _t_quantile(level, dof) * total**0.5
    return Estimate(delta, delta - half, delta + half, n)


def seed_paired_difference(values, baseline, level: float = LEVEL) -> Estimate | None:
    """Mean over seeds of (run's mean - baseline run's mean) for runs matched by seed: row i of `values` and
    of `baseline` ([S, W] each) share a seed. Paired t interval over the S differences (S - 1 dof): valid
    whatever the two runs of a seed share, and narrower than Welch's where they share noise (ladkit's seed
    fixes the prompts drawn at each step, the LoRA initialisation and the evaluation's samples' seeds)."""
    ours, theirs = np.atleast_2d(np.asarray(values, float)), np.atleast_2d(np.asarray(baseline, float))
    both = ~np.all(np.isnan(ours), axis=1) & ~np.all(np.isnan(theirs), axis=1)  # [S] seeds logged on both sides
    if not both.any():
        return None
    diffs = np.nanmean(ours[both], axis=1) - np.nanmean(theirs[both], axis=1)  # [S']
    if diffs.size < 2:
        return Estimate(float(diffs[0]), float(diffs[0]), float(diffs[0]), 1, basis="paired seeds")
    mean, half = _t_interval(diffs, level)
    return Estimate(mean, mean - half, mean + half, int(diffs.size), basis="paired seeds")


def paired_difference(ours, theirs, level: float = LEVEL) -> Estimate | None:
    """Mean of ours[i] - theirs[i] over paired items (held-out prompts scored for two checkpoints) with a
    paired t interval (m - 1 dof). `n` stays 1: it is one run a side, and the interval covers only the
    evaluation's sampling of prompts and completions, not what another seed would train."""
    diffs = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size < 2:
        return None
    mean, half = _t_interval(diffs, level)
    return Estimate(mean, mean - half, mean + half, 1, basis="prompts")


def curve_band(curves, level: float = LEVEL):
    """Per step: mean over seeds and a Student-t interval over the seeds that logged it, of `curves` [S, T].

    Returns (mean [T], low [T], high [T]); a step logged by one seed has a point band, by none a gap (NaN)."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))  # [S, T]
    counts = np.sum(~np.isnan(curves), axis=0)  # [T]
    mean = np.full(curves.shape[1], np.nan)
    half = np.zeros(curves.shape[1])
    logged = counts > 0
    mean[logged] = np.nanmean(curves[:, logged], axis=0)
    several = counts > 1
    if several.any():
        spread = np.nanstd(curves[:, several], axis=0, ddof=1) / np.sqrt(counts[several])
        half[several] = stats.t.ppf((1 + level) / 2, counts[several] - 1) * spread
    return mean, mean - half, mean + half
