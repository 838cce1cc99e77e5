"""`ladkit compare`: load run folders, group them (seeds aggregated), align by step, estimate final and
best values with t intervals over seeds and deltas against a baseline (Welch's t), and show it as a table
and an HTML report.

    loading.py   run folders -> Run records and notes (torn lines, partial runs, bandit folders)
    stats.py     Student-t intervals over seeds, Welch's t for differences, t bands for curves
    analysis.py  grouping, step alignment, final/best values, deltas, verdicts
    table.py     the rich table
    report.py    the plotly figures and the self-contained HTML report
    demo.py      synthetic run folders for the notebook and tests
"""

from ladkit.compare.analysis import DEFAULT_METRICS, Comparison, MetricResult, compare_runs, group_runs, label_of
from ladkit.compare.demo import make_demo_runs
from ladkit.compare.loading import Run, load_runs
from ladkit.compare.stats import Estimate, curve_band, difference_estimate, mean_estimate

__all__ = [
    "DEFAULT_METRICS",
    "Comparison",
    "Estimate",
    "MetricResult",
    "Run",
    "compare_runs",
    "curve_band",
    "difference_estimate",
    "group_runs",
    "label_of",
    "load_runs",
    "make_demo_runs",
    "mean_estimate",
]
