"""benchmarks/compare_calibration.py: the former bootstrap over-calls under no real difference where Welch's t
does not, and the grid replay finds a contradiction between two hand-made grids (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def calibration():
    return load_script("compare_calibration")


def test_bootstrap_over_calls_and_welch_does_not(calibration):
    # 3 seeds per group, same distribution: ~19% of bootstrap intervals exclude 0 and ~3% of Welch's
    # (results/compare_calibration.json, 4,000 trials). Over 300 seeded trials the binomial sd is ~2.3% and ~1%.
    rates = calibration.rates("normal", 3, 0.0, 300, np.random.default_rng(1))
    assert rates["bootstrap"] > 0.12 and rates["welch"] < 0.07
    found = calibration.rates("normal", 10, 2.0, 100, np.random.default_rng(2))  # a 2-sd gap with 10 seeds
    assert found["welch"] > 0.9


def test_replay_flags_a_contradiction(calibration, tmp_path):
    # grid 1: LAD-js 0.52-0.54 against GRPO 0.50-0.51 (clearly ahead); grid 2: the reverse (clearly behind).
    # Welch: difference 0.027, se 0.0067, dof 3.3, half-width ~0.02 -> significant both times, opposite signs.
    def grid(lad, grpo):
        metrics = lambda values: {"pass@1": {"per_seed": values}}  # noqa: E731
        return {"main": {"grpo": {"metrics": metrics(grpo)}, "lad-js": {"metrics": metrics(lad)}}, "knobs": {}}

    high, low = [0.52, 0.53, 0.54], [0.50, 0.50, 0.51]
    for name, record in zip(calibration.GRIDS, (grid(high, low), grid(low, high))):
        (tmp_path / name).write_text(json.dumps(record))
    out = calibration.replay(tmp_path, np.random.default_rng(0))
    assert out["welch"]["contradictions"] == ["lad-js pass@1"] and out["welch"]["deltas"] == 1
    assert out["welch"]["significant_first"] == out["welch"]["significant_second"] == 1
    # Paired by seed: differences 0.02, 0.03, 0.03 (mean 0.02667, sd 0.00577, se 0.00333, t(2) 4.303 ->
    # half-width 0.01434), against Welch's ~0.02: significant both times too, and narrower.
    assert out["paired"]["contradictions"] == ["lad-js pass@1"]
    widths = out["paired_over_welch_width"]
    assert widths["n"] == 2 and widths["narrower_fraction"] == 1.0 and 0.5 < widths["median"] < 0.9
    assert calibration.replay(tmp_path / "missing", np.random.default_rng(0)) is None
