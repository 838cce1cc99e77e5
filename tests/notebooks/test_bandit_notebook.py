"""Execute notebooks/bandit.ipynb headless at smoke size and check what its last cell prints.

The kernel is this interpreter (the venv's python), through a kernelspec written into a temporary
JUPYTER_PATH, so the test never depends on whichever `python3` kernel a machine has installed. The
notebook runs with its working directory and LADKIT_RUN_ROOT in a temporary folder, so its run folders
land there and the printed numbers can be checked against each run's summary.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "bandit.ipynb"
LINE = re.compile(
    r"^pi_old (?P<pi_old>fixed|refreshed every step), +(?P<label>\S+): TV to target (?P<tv>[\d.]+), "
    r"entropy (?P<entropy>[\d.]+), max arm prob (?P<max_prob>[\d.]+), modes kept (?P<kept>\d+)/(?P<modes>\d+)$",
    re.MULTILINE,
)


def stdout_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


@pytest.mark.slow
def test_bandit_notebook_executes_and_prints_its_runs(kernel_env, notebook_client):
    notebook, client = notebook_client(NOTEBOOK)
    client.execute()  # raises CellExecutionError on the first failing cell

    printed = stdout_of(notebook.cells[-1])
    rows = {(m["pi_old"], m["label"]): m for m in LINE.finditer(printed)}
    assert set(rows) == {(p, o) for p in ("fixed", "refreshed every step") for o in ("lad:js", "grpo")}, printed
    folders = re.search(r"^run folders: (\S+) (\S+)$", printed, re.MULTILINE)
    assert folders, printed
    for pi_old, folder in zip(("fixed", "refreshed every step"), folders.groups()):
        folder = Path(folder)
        assert folder.parent == kernel_env / "runs"
        summary = json.loads((folder / "summary.json").read_text())
        for name, run in summary["runs"].items():
            row = rows[(pi_old, name)]
            assert float(row["tv"]) == pytest.approx(run["bandit/tv_to_target"], abs=1e-4)
            assert float(row["max_prob"]) == pytest.approx(run["bandit/max_prob"], abs=1e-4)
        assert (folder / "bandit.html").is_file()

    # The story the notebook tells, at smoke size: LAD keeps the target with pi_old fixed, and collapses
    # (further from the target, more mass on one arm, fewer modes) once pi_old is refreshed every step.
    fixed, refreshed = rows[("fixed", "lad:js")], rows[("refreshed every step", "lad:js")]
    assert float(fixed["tv"]) < 0.05 < 0.3 < float(refreshed["tv"])
    assert float(refreshed["max_prob"]) > 2 * float(fixed["max_prob"])
    assert int(fixed["kept"]) == int(fixed["modes"]) > int(refreshed["kept"])
