"""The compare notebook's run picker on hand-made run folders: what it lists, what it selects, what it draws."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.io as pio
import pytest
import yaml

pytest.importorskip("ipywidgets")

from ladkit.compare import compare_runs, load_runs  # noqa: E402
from ladkit.compare.report import report_figures  # noqa: E402
from ladkit.viz.compare_picker import RunPicker, compare_folders, find_runs  # noqa: E402


def write_run(folder: Path, objective: str, rewards: list[float], status: str = "completed", **config) -> Path:
    """A run folder as the trainer leaves it, reduced to config, meta and reward rows."""
    folder.mkdir(parents=True)
    config = {"objective": objective, "lad": {"divergence": "js"}, "seed": 0, **config}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "meta.json").write_text(json.dumps({"status": status}))
    rows = [{"step": step, "reward/mean": value} for step, value in enumerate(rewards)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


@pytest.fixture
def runs_root(tmp_path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "b-grpo", "grpo", [0.1, 0.2, 0.3])
    write_run(root / "a-lad", "lad", [0.2, 0.4, 0.6], status="stopped")
    write_run(root / "bandit-1", "lad", [0.0], num_arms=50)  # a bandit folder: not comparable
    (root / "notes").mkdir()  # not a run at all
    return root


def as_json(figures) -> list[dict]:
    return [json.loads(pio.to_json(figure)) for figure in figures]


def test_find_runs_lists_llm_runs_only(runs_root, tmp_path):
    assert find_runs(runs_root) == [runs_root / "a-lad", runs_root / "b-grpo"]
    assert find_runs(runs_root / "a-lad") == [runs_root / "a-lad"]  # a run folder stands for itself
    assert find_runs(tmp_path / "missing") == []


def test_picker_lists_selects_and_labels(runs_root, tmp_path):
    picker = RunPicker(runs_root)
    assert picker.paths == [runs_root / "a-lad", runs_root / "b-grpo"]  # all selected by default
    assert [label for label, _ in picker.runs.options] == ["a-lad (stopped)", "b-grpo (completed)"]
    assert picker.status.value == f"2 runs in {runs_root}"
    # A preselected folder outside the scanned one is listed and is the only one selected.
    elsewhere = write_run(tmp_path / "elsewhere" / "c-lad", "lad", [0.5, 0.5, 0.5])
    picker = RunPicker(runs_root, selected=[elsewhere])
    assert picker.paths == [elsewhere] and len(picker.runs.options) == 3
    picker.open(tmp_path / "elsewhere")
    assert picker.paths == [elsewhere] and picker.status.value.startswith("1 runs in")
    picker.open(tmp_path / "missing")
    assert picker.paths == [] and picker.status.value == f"no run folders in {tmp_path / 'missing'}"


def test_picker_draws_the_reports_figures(runs_root):
    picker = RunPicker(runs_root)
    picker.runs.value = (runs_root / "b-grpo", runs_root / "a-lad")  # grpo first: it is the baseline
    comparison, figures = picker.compare()
    assert comparison.baseline == "grpo" and set(comparison.groups) == {"grpo", "lad:js"}
    runs, notes = load_runs([runs_root / "b-grpo", runs_root / "a-lad"])
    expected = report_figures(compare_runs(runs, notes=notes))
    assert len(figures) == len(expected) >= 2 and as_json(figures) == as_json(expected)
    # The reward curves carry the runs' own numbers (one run per group: the mean is the run).
    lines = [pytest.approx(list(trace.y)) for trace in figures[0].data if trace.y is not None and trace.name]
    assert [0.2, 0.4, 0.6] in lines and [0.1, 0.2, 0.3] in lines


def test_compare_button_reports_bad_input_on_the_status_line(runs_root):
    picker = RunPicker(runs_root)
    picker.runs.value = ()
    picker.compare_button.click()
    assert picker.status.value.startswith("<b>error:</b> no run folders chosen")
    picker.runs.value = (runs_root / "a-lad",)
    picker.compare_button.click()
    assert picker.status.value == "compared 1 runs in 1 groups" and len(picker.figures) >= 2
    with pytest.raises(Exception, match="no run folders chosen"):
        compare_folders([])
