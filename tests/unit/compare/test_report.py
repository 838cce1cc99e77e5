"""The report's figures: curve panels keep the runs' own values in view however wide a t band over few seeds is."""

import pytest

from ladkit.compare.analysis import compare_runs
from ladkit.compare.loading import load_runs
from ladkit.compare.report import curves_figure, pass_at_k_figure, value_range


def test_curve_panels_are_scaled_to_the_runs_not_to_the_band(make_run, tmp_path):
    # Two seeds per group: the t band is mean +- 12.7 * sd / sqrt(2), far outside the values (0.1 to 0.4).
    for seed, values in enumerate(([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])):
        make_run(f"grpo-s{seed}", "grpo", values, seed=seed)
        make_run(f"lad-s{seed}", "lad", [v + 0.05 for v in values], seed=seed)
    runs, notes = load_runs([tmp_path])
    figure = curves_figure(compare_runs(runs, metrics=["reward/mean"], notes=notes))
    # values 0.1 .. 0.45, 5% margin of the 0.35 span = 0.0175
    assert figure.layout.yaxis.range == pytest.approx((0.1 - 0.0175, 0.45 + 0.0175))
    band_low = min(v for trace in figure.data for v in trace.y)
    assert band_low < figure.layout.yaxis.range[0]  # the band itself is drawn, clipped at the panel's edge
    assert pass_at_k_figure(compare_runs(runs, metrics=["reward/mean"], notes=notes)).layout.yaxis.range == (
        -0.02,
        1.02,
    )


def test_value_range_of_a_flat_or_empty_series():
    assert value_range([]) is None
    assert value_range([2.0, 2.0]) == pytest.approx([1.9, 2.1])  # no spread: a margin of 5% of the value
