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
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
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
