"""Execute notebooks/llm_dashboard.ipynb headless at smoke size and check what its last cell prints.

As in test_bandit_notebook.py: the kernel is this interpreter through a kernelspec in a temporary
JUPYTER_PATH, and the notebook runs in a temporary folder with LADKIT_RUN_ROOT there, so its run folder
lands there and the printed numbers can be checked against summary.json and metrics.jsonl.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "llm_dashboard.ipynb"


def printed(cell, name: str) -> str:
    """The value after 'name: ' on its own line of the cell's stdout."""
    text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
    match = re.search(rf"^{re.escape(name)}: (.+)$", text, re.MULTILINE)
    assert match, f"{name!r} not printed in:\n{text}"
    return match.group(1)


@pytest.mark.slow
def test_llm_dashboard_notebook_executes_and_prints_its_run(kernel_env, notebook_client):
    notebook, client = notebook_client(NOTEBOOK)
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first failing cell
    assert time.perf_counter() - start < 60  # smoke size: a 4-step run on the built-in model

    # The dashboard cell displayed a widget (controls + the two figures), not just text.
    shown = [out for out in notebook.cells[3].outputs if out.output_type == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]["data"]

    last = notebook.cells[-1]
    run = Path(printed(last, "run folder"))
    assert run.parent == kernel_env / "runs" and run.name.startswith("train-lad_js-countdown-s0-")
    summary = json.loads((run / "summary.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert printed(last, "status") == summary["status"] == "completed"
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    assert int(printed(last, "steps trained")) == 4 and [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    first, last10 = re.fullmatch(r"first ([\d.]+), last-10 mean ([\d.]+)", printed(last, "reward")).groups()
    assert float(first) == pytest.approx(rows[0]["reward/mean"], abs=1e-4)
    assert float(last10) == pytest.approx(sum(r["reward/mean"] for r in rows[:4]) / 4, abs=1e-4)
    assert float(printed(last, "final eval pass@1")) == pytest.approx(rows[-1]["eval/pass@1"], abs=1e-4)
    entropy = float(re.match(r"entropy ([\d.]+)", printed(last, "last step")).group(1))
    assert entropy == pytest.approx(rows[3]["policy/entropy"], abs=1e-4) and entropy > 0
    assert int(printed(last, "figure updates")) == 5  # one redraw per trainer callback: 4 steps + final eval
