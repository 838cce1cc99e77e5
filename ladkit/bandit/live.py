"""The terminal view of a bandit run: a rich table of each objective's numbers, redrawn while it trains,
over one sparkline per distribution (the target's first), so LAD's modes and GRPO's single spike are
visible in a terminal."""

from __future__ import annotations

import torch
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ladkit.bandit.experiment import BanditProgress
from ladkit.bandit.metrics import entropy

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(probs: torch.Tensor, width: int) -> str:
    """Probabilities as block characters, summed into at most `width` bins, scaled to their own max."""
    k = probs.numel()
    bins = min(k, max(width, 1))
    edges = torch.linspace(0, k, bins + 1).round().long().tolist()
    mass = torch.stack([probs[a:b].sum() for a, b in zip(edges[:-1], edges[1:])])  # [bins]
    levels = (mass / mass.max().clamp(min=1e-12) * (len(BLOCKS) - 1)).round().long()
    return "".join(BLOCKS[i] for i in levels.tolist())


class BanditLiveView:
    """Callback for `run_bandit` that keeps a rich Live display of every objective's progress."""

    def __init__(self, target: torch.Tensor, labels: list[str], steps: int, console: Console | None = None):
        self.target = target
        self.console = console or Console()
        self.rows: dict[str, BanditProgress] = {}
        self.progress = Progress(
            TextColumn("{task.description:>10}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self.tasks = {name: self.progress.add_task(name, total=steps) for name in labels}
        self.live = Live(self._render(), console=self.console, refresh_per_second=8)

    def __enter__(self) -> BanditLiveView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)

    def __call__(self, event: BanditProgress) -> None:
        self.rows[event.label] = event
        self.progress.update(self.tasks[event.label], completed=event.step)
        self.live.update(self._render())

    def _render(self) -> Group:
        table = Table(title="policy vs target softmax(A/eta)")
        for column in ("objective", "step", "TV to target", "entropy", "max p", "modes kept"):
            table.add_column(column, justify="left" if column == "objective" else "right")
        target_max = float(self.target.max())
        table.add_row("target", "", "0", f"{float(entropy(self.target)):.3f}", f"{target_max:.3f}", "", style="bold")
        for name, e in self.rows.items():
            m = e.metrics
            table.add_row(
                name,
                str(e.step),
                f"{m['bandit/tv_to_target']:.3f}",
                f"{m['bandit/entropy']:.3f}",
                f"{m['bandit/max_prob']:.3f}",
                f"{m['bandit/modes_kept']:.0f}",
            )
        width = max(self.console.width - 13, 10)
        lines = [Text(f"{'target':>10} │{sparkline(self.target, width)}│", style="bold")]
        lines += [Text(f"{name:>10} │{sparkline(e.probs, width)}│") for name, e in self.rows.items()]
        caption = Text("distribution over arms (each line scaled to its own max)", style="dim")
        return Group(self.progress, table, caption, *lines)
