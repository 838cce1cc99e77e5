"""The terminal view of `ladkit train`: a rich progress bar with ETA over a table of the latest key numbers."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

COLUMNS = [
    ("step", "step", "{:.0f}"),
    ("reward", "reward/mean", "{:.3f}"),
    ("entropy", "policy/entropy", "{:.3f}"),
    ("distinct ok", "diversity/distinct_correct", "{:.2f}"),
    ("dist-4", "diversity/dist4", "{:.3f}"),
    ("loss", "loss/value", "{:.4f}"),
    ("len", "completion/length_mean", "{:.1f}"),
    ("eval pass@1", "eval/pass@1", "{:.3f}"),
    ("s/step", "perf/step_time_s", "{:.2f}"),
]
HISTORY = 8  # rows of the table (the newest steps)


class TrainLiveView:
    """Callback for `train`: keeps a rich Live display of progress and the last few metric rows."""

    def __init__(self, total_steps: int, start_step: int = 0, title: str = "", console: Console | None = None):
        self.rows: list[dict[str, Any]] = []
        self.title = title
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step)
        self.live = Live(self._render(), console=console or Console(), refresh_per_second=4)

    def __enter__(self) -> TrainLiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def __call__(self, step: int, row: dict[str, Any], ctx: Any = None) -> None:
        self.rows = (self.rows + [row])[-HISTORY:]
        self.progress.update(self.task, completed=step + 1)
        self.live.update(self._render())

    def _render(self) -> Group:
        table = Table(title=self.title or None)
        for header, _, _ in COLUMNS:
            table.add_column(header, justify="right")
        for row in self.rows:
            table.add_row(*[fmt.format(row[key]) if key in row else "" for _, key, fmt in COLUMNS])
        return Group(self.progress, table)
