"""Execute notebooks/compare.ipynb headless on its synthetic demo runs and check the verdict it prints."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compare.ipynb"


def execute_compare_notebook(tmp_path: Path):
    """Run the notebook with a kernelspec for this interpreter (see test_bandit_notebook.py)."""
    prefix = tmp_path / "jupyter"
    kernelspec.install(kernel_name="python3", prefix=str(prefix))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={"JUPYTER_PATH": str(prefix / "share" / "jupyter")})
    return notebook


@pytest.mark.slow
def test_compare_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.outputs == [] for c in notebook.cells if c.cell_type == "code"), "strip outputs"
    notebook = execute_compare_notebook(tmp_path)
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "SYNTHETIC demo runs" in text and "groups: lad:js (3 seeds), grpo (3 seeds)" in text
    rich = "".join(
        str(o.get("data", {}).get("text/plain", "")) + o.get("text", "")
        for c in notebook.cells
        for o in c.get("outputs", [])
    )
    assert "baseline lad:js" in rich  # the first path given is the baseline
    html_outputs = [o for c in notebook.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert len(html_outputs) >= 4  # curves, pass@k, two tracked prompts


def train_tiny_run(path: Path, objective: str) -> Path:
    """A real run folder: 3 steps of the built-in model (as tests/integration do), ~5 s."""
    from ladkit.training.loop import train
    from ladkit.training.resolve import resolve

    overrides = ["task.train_size=32", "task.eval_size=4", "eval_samples=2", "checkpoint_every=0"]
    flags = {"objective": objective, "steps": 3, "prompts_per_step": 4, "group_size": 4, "eval_every": 2}
    train(resolve("default", overrides, flags), path)
    return path


def plotly_outputs(notebook) -> list[dict]:
    bundles = [
        o["data"]["application/vnd.plotly.v1+json"]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    return [{"data": bundle["data"], "layout": bundle["layout"]} for bundle in bundles]


@pytest.mark.slow
def test_compare_notebook_draws_the_reports_figures_for_chosen_runs(tmp_path, monkeypatch, notebook_client):
    import json
    import os

    import plotly.io as pio

    from ladkit.compare import compare_runs, load_runs
    from ladkit.compare.report import report_figures

    paths = [train_tiny_run(tmp_path / "trained" / name, name) for name in ("grpo", "lad")]
    monkeypatch.setenv("LADKIT_COMPARE_RUNS", os.pathsep.join(map(str, paths)))  # what the picker preselects
    notebook, client = notebook_client(NOTEBOOK)
    client.execute()
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "SYNTHETIC" not in text and "groups: grpo (1 seeds), lad:js (1 seeds)" in text
    # The figures `ladkit compare grpo lad --out` draws, built here from the same folders.
    runs, notes = load_runs(paths)
    expected = [json.loads(pio.to_json(figure)) for figure in report_figures(compare_runs(runs, notes=notes))]
    drawn = plotly_outputs(notebook)
    assert len(drawn) == len(expected) >= 3  # curves, pass@k, at least one tracked prompt
    assert drawn == [{"data": figure["data"], "layout": figure["layout"]} for figure in expected]
