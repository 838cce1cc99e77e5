"""`ladkit compare`: load run folders, group them (seeds aggregated), align by step, estimate final and
best values with bootstrap CIs and deltas against a baseline, and show it as a table and an HTML report.

    loading.py   run folders -> Run records and notes (torn lines, partial runs, bandit folders)
    stats.py     seeded hierarchical bootstrap over seeds and steps; CI bands for curves
    analysis.py  grouping, step alignment, final/best values, deltas, verdicts
    table.py     the rich table
    report.py    the plotly figures and the self-contained HTML report
    demo.py      synthetic run folders for the notebook and tests
"""

from ladkit.compare.analysis import DEFAULT_METRICS, Comparison, MetricResult, compare_runs, group_runs, label_of
from ladkit.compare.demo import make_demo_runs
from ladkit.compare.loading import Run, load_runs
from ladkit.compare.stats import Estimate, bootstrap_difference, bootstrap_mean, curve_band

__all__ = [
    "DEFAULT_METRICS",
    "Comparison",
    "Estimate",
    "MetricResult",
    "Run",
    "bootstrap_difference",
    "bootstrap_mean",
    "compare_runs",
    "curve_band",
    "group_runs",
    "label_of",
    "load_runs",
    "make_demo_runs",
]
