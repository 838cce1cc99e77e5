"""The terminal answer to "did A beat B, on what, how sure": one rich table plus the notes."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ladkit.compare.analysis import Comparison, MetricResult
from ladkit.compare.stats import Estimate

VERDICT_STYLE = {"better": "bold green", "worse": "bold red", "unclear": "yellow", "1 seed": "dim", "": ""}


def fmt(estimate: Estimate | None, signed: bool = False) -> str:
    """'0.512 [0.48, 0.55]'; a lone value when there is no interval (one seed); '-' when missing."""
    if estimate is None:
        return "-"
    sign = "+" if signed else ""
    if not estimate.has_interval or estimate.low == estimate.high:
        return f"{estimate.mean:{sign}.3f}"
    return f"{estimate.mean:{sign}.3f} [{estimate.low:{sign}.3f}, {estimate.high:{sign}.3f}]"


def _row(result: MetricResult, seeds: int, first: bool, baseline: str) -> list:
    """The metric name (and its aligned steps) only on a section's first row, to keep the table narrow."""
    steps = f"steps {result.steps[0]}-{result.steps[-1]}" if result.steps else "no common step"
    metric = Text(result.metric).append(f"\n{steps}", style="dim") if first else Text("")
    label = "baseline" if result.group == baseline else result.verdict or "n/a"
    verdict = Text(label, style=VERDICT_STYLE.get(result.verdict.split(" (")[0], ""))
    return [metric, result.group, str(seeds), fmt(result.final), fmt(result.best), fmt(result.delta, True), verdict]


def comparison_table(comparison: Comparison) -> Table:
    """Rows per metric then group; the delta column is the group's final value minus the baseline's."""
    table = Table(title=f"ladkit compare: {len(comparison.groups)} groups, baseline {comparison.baseline}")
    for name in ("metric", "group", "seeds"):
        table.add_column(name, no_wrap=True)
    for name in ("final (95% CI)", "best (95% CI)", f"Δ final vs {comparison.baseline} (95% CI)"):
        table.add_column(name, min_width=12)
    table.add_column("verdict", no_wrap=True, min_width=8)
    for metric in comparison.metrics:
        for index, (group, runs) in enumerate(comparison.groups.items()):
            result = comparison.result(group, metric)
            if result is not None:
                table.add_row(*_row(result, len(runs), first=index == 0, baseline=comparison.baseline))
        table.add_section()
    return table


def notes_text(comparison: Comparison) -> Text:
    text = Text()
    for note in comparison.notes:
        text.append("note: ", style="bold yellow").append(note + "\n")
    return text


def print_comparison(comparison: Comparison, console: Console | None = None) -> None:
    """Print the table and every note (missing metrics, partial runs, different lengths)."""
    console = console or Console()
    console.print(Group(comparison_table(comparison), notes_text(comparison)))
    console.print(legend(comparison))


def legend(comparison: Comparison) -> str:
    """What the columns mean, and how many better/worse calls chance alone would make among these."""
    calls = sum(1 for r in comparison.results if r.delta is not None and r.delta.has_interval)
    chance = f"; with no real difference anywhere, {calls / 20:.2g} of these {calls} would still do so by chance"
    delta = "paired t over runs matched by seed (--paired)" if comparison.paired else "Welch's t"
    return (
        "final: mean over seeds of each run's mean over its last 3 common steps (eval/*: the last eval; "
        "ladkit_eval/*: `ladkit eval` of the last common checkpoint); "
        f"CIs: Student's t over seeds (one value per run); Δ: {delta}; verdict: 'better'/'worse' when the "
        f"95% CI of Δ excludes 0{chance if calls else ''}."
    )
