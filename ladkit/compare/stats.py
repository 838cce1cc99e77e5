"""Bootstrap statistics over seeds (and, within a seed, over its last steps), all seeded and vectorised.

Values come as a matrix [S, W]: S seeds (runs of one group) by W aligned steps, NaN where a run did not log
the metric at that step. A group's value is the mean over seeds of each seed's mean over its W steps. The
bootstrap is hierarchical (Efron & Tibshirani 1993, ch. 6; the two-stage resampling of Davison & Hinkley
1997, sec. 3.8): seeds are resampled, then steps within each resampled seed. With several seeds the
seed-to-seed spread dominates the interval; with one seed it still reflects step-to-step noise instead of
pretending to certainty.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean and its bootstrap confidence interval; `n` is the number of seeds behind it."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _clean(values: np.ndarray) -> np.ndarray:
    """Drop seeds without a single value (NaN rows): they carry no information about the metric."""
    values = np.atleast_2d(np.asarray(values, dtype=float))  # [S, W]
    return values[~np.all(np.isnan(values), axis=1)]


def resample_means(values: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """n_boot hierarchical bootstrap replicates of the group mean of `values` [S, W]."""
    values = _clean(values)  # [S, W]
    seeds, width = values.shape
    pick_seed = rng.integers(0, seeds, size=(n_boot, seeds))  # [B, S]
    pick_step = rng.integers(0, width, size=(n_boot, seeds, width))  # [B, S, W]
    chosen = values[pick_seed[..., None], pick_step]  # [B, S, W]
    return np.nanmean(np.nanmean(chosen, axis=2), axis=1)  # [B]


def bootstrap_mean(values, seed: int = 0, n_boot: int = N_BOOT, level: float = LEVEL) -> Estimate | None:
    """Mean over seeds of per-seed means of `values` [S, W], with a hierarchical bootstrap CI."""
    values = _clean(values)
    if values.size == 0:
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # A resampled seed may draw only its NaN steps: that replicate is dropped below.
        warnings.simplefilter("ignore", RuntimeWarning)
        samples = resample_means(values, np.random.default_rng(seed), n_boot)
    mean = float(np.mean(np.nanmean(values, axis=1)))
    return Estimate(mean, *_percentiles(samples[~np.isnan(samples)], level), n=len(values))


def bootstrap_difference(values, baseline, seed: int = 0, n_boot: int = N_BOOT, level: float = LEVEL):
    """Group mean of `values` minus that of `baseline` (both [S, W]); the two groups resample independently."""
    values, baseline = _clean(values), _clean(baseline)
    if values.size == 0 or baseline.size == 0:
        return None
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        samples = resample_means(values, rng, n_boot) - resample_means(baseline, rng, n_boot)
    mean = float(np.mean(np.nanmean(values, axis=1)) - np.mean(np.nanmean(baseline, axis=1)))
    return Estimate(mean, *_percentiles(samples[~np.isnan(samples)], level), n=min(len(values), len(baseline)))


def curve_band(curves, seed: int = 0, n_boot: int = N_BOOT, level: float = LEVEL):
    """Per step: mean over seeds and a bootstrap CI over seeds of `curves` [S, T] (one row per seed).

    Returns (mean [T], low [T], high [T]); with one seed the band collapses onto the curve."""
    curves = np.atleast_2d(np.asarray(curves, dtype=float))  # [S, T]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(curves), size=(n_boot, len(curves)))  # [B, S]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step no seed logged: a gap, not a warning
        replicates = np.nanmean(curves[pick], axis=1)  # [B, T]
        tail = (1 - level) / 2 * 100
        low, high = np.nanpercentile(replicates, [tail, 100 - tail], axis=0)  # [T] each
        return np.nanmean(curves, axis=0), low, high
