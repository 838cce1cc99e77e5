"""`ladkit compare`: did run group A beat group B, on what, and how sure (table + HTML report)."""

from __future__ import annotations

from pathlib import Path

import typer


def compare(
    paths: list[Path] = typer.Argument(..., help="Run folders, or parent folders holding several runs."),
    group_by: str = typer.Option(
        "label", help="Group runs by: label (objective + LAD divergence), objective, divergence, or a config key."
    ),
    metric: list[str] | None = typer.Option(
        None,
        "--metric",
        "-m",
        help="Metric key to compare (repeatable); default: reward, pass@1, entropy, diversity, and ladkit_eval/pass@k "
        "(from eval.jsonl) where every run was evaluated with `ladkit eval`.",
    ),
    baseline: str | None = typer.Option(None, help="Group the others are compared against (default: the first)."),
    out: Path | None = typer.Option(None, help="Write the self-contained HTML report here."),
    paired: bool = typer.Option(
        False,
        "--paired",
        help="Match each group's runs to the baseline's by config seed and take a paired t over seeds for the "
        "deltas: sharper where one seed's runs share noise (ladkit's seed fixes the prompts drawn each step).",
    ),
) -> None:
    """Compare runs grouped by objective (seeds aggregated): final/best values with 95% t intervals over seeds,
    deltas with Welch's t intervals; with one run a side, pass@k paired over the held-out prompts."""
    from ladkit.compare import compare_runs, load_runs
    from ladkit.compare.table import print_comparison

    if out is not None:
        from ladkit.compare.report import check_out_path

        check_out_path(out)  # before reading runs: a bad --out is said at once, and nothing is written
    runs, notes = load_runs(paths)
    comparison = compare_runs(
        runs, metrics=metric or None, group_by=group_by, baseline=baseline, notes=notes, paired=paired
    )
    print_comparison(comparison)
    if out is not None:
        from ladkit.compare.report import write_report

        typer.echo(f"report: {write_report(comparison, out)}")
