"""Benchmark: how far `ladkit compare`'s "better"/"worse" can be trusted, measured rather than assumed.

Three checks of the 95% interval of a difference between two groups of S seeds (one value per run):

1. False-positive rate: both groups drawn from the same distribution, so every "excludes 0" is wrong. A
   calibrated test is wrong in ~5% of comparisons. Distributions: normal; lognormal (skewed); and bimodal,
   where each seed either collapses (0) or does not (1), plus noise, like an RL run that sometimes diverges.
2. Power: group B shifted by 1 and 2 standard deviations (normal): how often the interval excludes 0.
3. Replay of the paper-claims grids: the same 5 objectives x 3 seeds trained twice (results/
   paper_claims_a2488f0.json and paper_claims.json, one grid each). A (group, metric) delta called significant
   in both grids with opposite signs is a contradiction: at least one of the two calls is wrong.

Each check runs for Welch's t (ladkit.compare.stats.difference_estimate, what `ladkit compare` uses) and for
the percentile bootstrap over seeds that `ladkit compare` used before (2,000 resamples per group, groups
resampled independently; reimplemented below as the reference, it is no longer in the library). The replay
also runs `ladkit compare --paired` (a paired t over runs matched by seed) and compares its interval widths
with Welch's.

    .venv/bin/python benchmarks/compare_calibration.py   # ~30 s on one core -> results/compare_calibration.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / "results"
GRIDS = ("paper_claims_a2488f0.json", "paper_claims.json")
SEEDS = (2, 3, 5, 10)


def bootstrap_interval(a, b=None, rng: np.random.Generator | None = None, n_boot: int = 2000):
    """The former method: 95% percentile bootstrap CI of mean(a), or of mean(a) - mean(b) with each group
    resampled on its own. NaNs are dropped; None when a group has fewer than 2 values (nothing to resample)."""
    rng = np.random.default_rng(0) if rng is None else rng
    groups = [np.asarray(g, dtype=float) for g in ((a,) if b is None else (a, b))]
    groups = [g[~np.isnan(g)] for g in groups]
    if any(len(g) < 2 for g in groups):
        return None
    means = [g[rng.integers(0, len(g), size=(n_boot, len(g)))].mean(axis=1) for g in groups]
    low, high = np.percentile(means[0] - (means[1] if len(means) == 2 else 0.0), [2.5, 97.5])
    return float(low), float(high)


def bootstrap_excludes_zero(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> bool:
    low, high = bootstrap_interval(a, b, rng, n_boot)
    return bool(low > 0 or high < 0)


def welch_excludes_zero(a: np.ndarray, b: np.ndarray) -> bool:
    from ladkit.compare.stats import difference_estimate

    return difference_estimate(a[:, None], b[:, None]).excludes_zero


def draw(kind: str, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=size)
    if kind == "lognormal":
        return rng.lognormal(size=size)
    return (rng.random(size) < 0.5) + rng.normal(0.0, 0.1, size=size)  # bimodal: collapsed (0) or not (1)


def rates(kind: str, seeds: int, shift: float, trials: int, rng: np.random.Generator) -> dict[str, float]:
    """Fraction of `trials` comparisons whose interval excludes 0, per method."""
    pairs = draw(kind, (trials, 2, seeds), rng)
    pairs[:, 1] += shift
    boot = np.mean([bootstrap_excludes_zero(a, b, rng) for a, b in pairs])
    welch = np.mean([welch_excludes_zero(a, b) for a, b in pairs])
    return {"bootstrap": round(float(boot), 4), "welch": round(float(welch), 4)}


def replay(results: Path, rng: np.random.Generator) -> dict | None:
    """Per method: significant deltas in each grid, and contradictions between the grids."""
    paths = [results / name for name in GRIDS]
    if not all(path.is_file() for path in paths):
        return None
    grids = [json.loads(path.read_text()) for path in paths]
    from ladkit.compare.stats import difference_estimate, seed_paired_difference

    calls: dict[str, list] = {"bootstrap": [], "welch": [], "paired": []}
    width_ratios = []  # paired / Welch interval width, per grid, group and metric
    for section in ("main", "knobs"):
        for group in grids[0][section]:
            if group == "grpo" or any(group not in g[section] for g in grids):
                continue
            for metric in grids[0][section][group]["metrics"]:
                per_grid: dict[str, list] = {"bootstrap": [], "welch": [], "paired": []}
                for grid in grids:
                    ours = grid[section][group]["metrics"][metric]["per_seed"]
                    base = grid[section]["grpo"]["metrics"][metric]["per_seed"]
                    a = np.array([v for v in ours if v is not None], dtype=float)
                    b = np.array([v for v in base if v is not None], dtype=float)
                    sign = float(np.sign(a.mean() - b.mean()))
                    per_grid["bootstrap"].append(sign * bootstrap_excludes_zero(a, b, rng))
                    per_grid["welch"].append(sign * welch_excludes_zero(a, b))
                    # per_seed[i] is seed i in both groups (paper_claims.py): the runs pair up by seed
                    seeded = np.array([[np.nan if v is None else v] for v in ours], dtype=float)  # [S, 1]
                    seeded_base = np.array([[np.nan if v is None else v] for v in base], dtype=float)
                    paired, welch = (
                        seed_paired_difference(seeded, seeded_base),
                        difference_estimate(a[:, None], b[:, None]),
                    )
                    per_grid["paired"].append(float(np.sign(paired.mean)) * paired.excludes_zero)
                    if welch.high > welch.low:
                        width_ratios.append((paired.high - paired.low) / (welch.high - welch.low))
                for method, (first, second) in per_grid.items():
                    calls[method].append((section, group, metric, first, second))
    root = HERE.parent
    out = {"grids": [str(path.relative_to(root) if path.is_relative_to(root) else path) for path in paths]}
    for method, rows in calls.items():
        # knobs repeat main's lad-js: count each (group, metric) once
        unique = {(g, m): (f, s) for _, g, m, f, s in rows}
        out[method] = {
            "deltas": len(unique),
            "significant_first": sum(f != 0 for f, _ in unique.values()),
            "significant_second": sum(s != 0 for _, s in unique.values()),
            "significant_both_same_sign": sum(f != 0 and f == s for f, s in unique.values()),
            "contradictions": sorted(f"{g} {m}" for (g, m), (f, s) in unique.items() if f * s < 0),
        }
    if width_ratios:
        quartiles = np.percentile(width_ratios, [25, 50, 75])
        out["paired_over_welch_width"] = {
            "median": float(quartiles[1]),
            "quartiles": [float(quartiles[0]), float(quartiles[2])],
            "narrower_fraction": float(np.mean(np.array(width_ratios) < 1)),
            "n": len(width_ratios),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4000, help="simulated comparisons per cell")
    parser.add_argument("--out", default=str(RESULTS / "compare_calibration.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    kinds = ("normal", "lognormal", "bimodal")
    false_positive = {kind: {str(s): rates(kind, s, 0.0, args.trials, rng) for s in SEEDS} for kind in kinds}
    power = {f"shift {d:g} sd": {str(s): rates("normal", s, d, args.trials, rng) for s in SEEDS} for d in (1.0, 2.0)}
    record = {
        "benchmark": "compare_calibration",
        "what": "fraction of 95% intervals of a two-group difference that exclude 0; S seeds per group",
        "trials_per_cell": args.trials,
        "false_positive_rate": false_positive,
        "power_normal": power,
        "grid_replay": replay(RESULTS, rng),
        **environment("numpy", "scipy"),
    }
    write_record(record, args.out)


if __name__ == "__main__":
    main()
