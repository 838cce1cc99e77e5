"""The compare notebook's run picker: choose real run folders in a widget and draw `ladkit compare --out`'s figures.

- `find_runs(root)`: the LLM training run folders directly inside `root` (bandit folders share the layout
  but are not comparable with `ladkit compare`, so they are left out), newest name last.
- `compare_folders(paths)`: load, compare and build the report's figures, with the very functions
  `ladkit compare --out` calls (`load_runs`, `compare_runs`, `report.report_figures`): the notebook cannot
  draw anything the report would not.
- `RunPicker`: a folder field with a Scan button, a multi-select over the runs found there, a Compare button
  that draws the report's summary table and figures into the picker's own output area, and a status line.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import yaml

from ladkit.compare import Comparison, compare_runs, load_runs
from ladkit.compare.loading import is_bandit, is_run_folder
from ladkit.compare.report import report_figures, summary_html
from ladkit.errors import LadkitError
from ladkit.viz.widgets import WidgetDashboard, require_widgets


def find_runs(root: str | Path) -> list[Path]:
    """The LLM run folders directly inside `root` (or `root` itself when it is one), sorted by name."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    candidates = [root] if is_run_folder(root) else sorted(child for child in root.iterdir() if is_run_folder(child))
    return [folder for folder in candidates if not is_bandit(_config(folder))]


def _config(folder: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}  # a damaged config is load_runs' to report, not a reason to hide the run
    return config if isinstance(config, dict) else {}


def run_label(folder: Path) -> str:
    """'NAME (status)' for the picker's list."""
    try:
        status = json.loads((folder / "meta.json").read_text()).get("status", "?")
    except (OSError, ValueError, AttributeError):
        status = "no meta.json"
    return f"{folder.name} ({status})"


def compare_folders(paths: Sequence[str | Path], **options: Any) -> tuple[Comparison, list[go.Figure]]:
    """What `ladkit compare PATHS --out` computes and draws; `options` go to `compare_runs` (group_by, baseline)."""
    if not paths:
        raise LadkitError("no run folders chosen; pick at least one run (or a folder holding runs) to compare")
    runs, notes = load_runs(list(paths))
    comparison = compare_runs(runs, notes=notes, **options)
    return comparison, report_figures(comparison)


class RunPicker(WidgetDashboard):
    """Folder field + Scan, a multi-select of the runs found, Compare; `compare()` does the same from code.

    `selected` preselects these folders (they are listed even when outside `root`); by default every run
    found under `root` is selected.
    """

    def __init__(self, root: str | Path = "runs", selected: Sequence[str | Path] = ()):
        ipw = require_widgets()
        wide = {"description_width": "initial"}
        self.folder = ipw.Text(value=str(root), description="runs folder", style=wide, layout=ipw.Layout(width="60%"))
        self.runs = ipw.SelectMultiple(
            options=[], description="runs", style=wide, rows=8, layout=ipw.Layout(width="80%")
        )
        self.scan_button = ipw.Button(description="Scan", icon="folder-open")
        self.compare_button = ipw.Button(description="Compare", button_style="primary", icon="chart-line")
        self.status = ipw.HTML()
        self.output = ipw.Output()
        self.comparison: Comparison | None = None
        self.figures: list[go.Figure] = []
        self.scan_button.on_click(lambda _button: self.scan())
        self.compare_button.on_click(lambda _button: self._compare_and_draw())
        self.scan([Path(path) for path in selected])
        self._box = ipw.VBox(
            [
                ipw.HBox([self.folder, self.scan_button]),
                self.runs,
                ipw.HBox([self.compare_button, self.status]),
                self.output,
            ]
        )

    @property
    def paths(self) -> list[Path]:
        """The chosen run folders, in list order (the first one's group is the baseline)."""
        return list(self.runs.value)

    def open(self, root: str | Path, selected: Sequence[str | Path] = ()) -> None:
        """Point the picker at another folder and select `selected`, else every run in it (Scan, from code)."""
        self.folder.value = str(root)
        self.scan([Path(path) for path in selected])

    def scan(self, selected: Sequence[Path] = ()) -> list[Path]:
        """List the runs under the folder field, `selected` first and in their order (the first is the
        baseline); select those if given, else every run listed."""
        found = find_runs(self.folder.value)
        listed = list(dict.fromkeys([*selected, *found]))  # no duplicates, order kept
        self.runs.options = [(run_label(path), path) for path in listed]
        self.runs.value = tuple(selected or listed)
        where = html.escape(self.folder.value)
        self.status.value = f"{len(found)} runs in {where}" if found else f"no run folders in {where}"
        return listed

    def compare(self, **options: Any) -> tuple[Comparison, list[go.Figure]]:
        """Compare the chosen runs: the comparison and the report's figures (also kept on the picker)."""
        self.comparison, self.figures = compare_folders(self.paths, **options)
        return self.comparison, self.figures

    def _compare_and_draw(self) -> None:
        """The Compare button: table and figures in the picker's output; bad input becomes the status line."""
        self.output.clear_output()
        try:
            comparison, figures = self.compare()
        except LadkitError as err:
            self.status.value = f"<b>error:</b> {html.escape(str(err))}"
            return
        self.status.value = f"compared {len(self.paths)} runs in {len(comparison.groups)} groups"
        from IPython.display import HTML, display

        with self.output:  # the report's own page, piece by piece: summary table and notes, then the figures
            display(HTML(summary_html(comparison)))
            for figure in figures:
                figure.show()
