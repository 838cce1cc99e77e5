"""The notebooks live in JupyterLab, in headless Chromium: every cell run through the front end, the widgets
drawn and driven by clicks, at smoke size (LADKIT_SMOKE=1).

One JupyterLab server (scripts/lab.sh, the `make lab` script: localhost, token auth) serves a copy of
notebooks/ for the whole module and is stopped at the end, failed or not. Each test opens one notebook, runs
Run All Cells through JupyterLab's command, checks what a user would see, saves a screenshot to
test-artifacts/ (the README's pictures come from there) and fails on any severe entry in the browser's log.
About 3-4 minutes on 2 cores, most of it JupyterLab's first page load and the training runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from lab_session import ROOT, LabPage, start_lab, stop_lab
from selenium.webdriver.common.keys import Keys

pytest.importorskip("jupyterlab", reason="pip install -e '.[notebooks]'")

ARTIFACTS = ROOT / "test-artifacts"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    server = start_lab(tmp_path_factory.mktemp("lab"), ARTIFACTS / "lab-server.log")
    yield server
    stop_lab(server)


@pytest.fixture
def page(browser, lab):
    browser.set_window_size(1280, 1000)  # a laptop screen: the README's screenshots
    yield LabPage(browser, lab)
    # Every severe entry fails: a JavaScript exception, a widget that could not render, a failed request. (With
    # news and update checks off, JupyterLab itself logs none offline, so there is no list of excused ones.)
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"JavaScript errors in the browser log: {errors}"


def code_cells(name: str) -> int:
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    return sum(cell["cell_type"] == "code" for cell in cells)


def test_bandit_notebook_runs_in_jupyterlab(page):
    page.open("bandit.ipynb")
    state = page.run_all(timeout=300)
    assert state["count"] == code_cells("bandit.ipynb") and state["errors"] == []
    assert page.plots() >= 1 and any(page.plot_paths())  # the dashboard's FigureWidget, drawn with data
    page.show(".jp-OutputArea .js-plotly-plot")
    page.driver.save_screenshot(str(ARTIFACTS / "lab-bandit.png"))


def test_llm_dashboard_trains_live_and_stops_resumably(page, lab, tmp_path):
    page.open("llm_dashboard.ipynb")
    page.run_all(timeout=300)  # includes the 4-step synchronous run
    assert page.plots() == 2  # the dashboard's two FigureWidgets: tracked-prompt bars and curves
    earlier = set(lab.run_root.iterdir())

    steps = page.widget("input", "steps")  # typed in the browser: the value must reach the kernel
    steps.send_keys(Keys.CONTROL, "a")  # select what is there (clear() leaves a number field's value)
    steps.send_keys("60", Keys.ENTER)
    page.widget("button", "Start").click()
    first = page.wait(lambda: (step := page.status_step()) and step[0] >= 2 and step, 240, "step 2 of the run")
    assert first[1] == 60
    page.wait(lambda: page.plots() == 2, 60, "the new run's figures drawn")
    before = page.plot_paths()
    second = page.wait(lambda: (step := page.status_step()) and step[0] >= first[0] + 2 and step, 240, "2 more steps")
    # The browser draws the kernel's updates when it gets to them (a CI run under load lagged past 2 steps once):
    # the figures must change while the run goes on, within 2 minutes.
    page.wait(lambda: page.plot_paths() != before, 120, "the figures to change while the run went on")

    page.widget("button", "Stop").click()
    page.wait(lambda: any(text.startswith("stopped:") for text in page.html_texts()), 240, "the run stopped")
    page.show(".jp-OutputArea .widget-vbox")
    page.driver.save_screenshot(str(ARTIFACTS / "lab-llm-dashboard.png"))
    [run] = set(lab.run_root.iterdir()) - earlier
    check_stopped_run(run, at_least=second[0], steps=60, scratch=tmp_path)


def check_stopped_run(run: Path, at_least: int, steps: int, scratch: Path) -> None:
    """meta.json says stopped, the last trained step is checkpointed, and `ladkit train --resume` continues it."""
    from ladkit.training import checkpoint

    assert json.loads((run / "meta.json").read_text())["status"] == "stopped"
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["steps"] == steps
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [row["step"] for row in rows if "reward/mean" in row]
    assert trained == list(range(len(trained))) and at_least <= trained[-1] < steps - 1
    saved_step, _ = checkpoint.latest(run)
    assert saved_step == trained[-1]
    # Resume a copy for one more step (the original asks for 60; the copy's config asks for one past the stop).
    copy = shutil.copytree(run, scratch / "resumed")
    config["steps"] = saved_step + 2
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ladkit_cli.main", "train", "--resume", str(copy), "--no-live"]
    done = subprocess.run(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((copy / "meta.json").read_text())["status"] == "completed"
    resumed = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in resumed if "reward/mean" in row] == list(range(saved_step + 2))


def test_compare_notebook_compares_the_runs_folder(page, lab):
    from ladkit.training.loop import train
    from ladkit.training.resolve import resolve
    from ladkit.viz.compare_picker import find_runs

    # A GRPO run beside the dashboard's LAD runs (real run folders, 3 steps of the built-in model).
    overrides = ["task.train_size=32", "task.eval_size=4", "eval_samples=2", "checkpoint_every=0"]
    flags = {"objective": "grpo", "steps": 3, "prompts_per_step": 4, "group_size": 4, "eval_every": 2}
    train(resolve("default", overrides, flags), lab.run_root / "train-grpo-countdown-s0")
    runs = find_runs(lab.run_root)

    page.open("compare.ipynb")
    page.run_all(timeout=240)
    labels = page.driver.execute_script(
        "return Array.from(document.querySelectorAll('.widget-select-multiple option'))"
        ".map(o => o.textContent.replace(/\\u00a0/g, ' '))"  # the widget pads labels with no-break spaces
    )
    assert labels == [f"{run.name} ({json.loads((run / 'meta.json').read_text())['status']})" for run in runs]
    shown = page.plots()
    assert shown >= 3  # curves, pass@k, at least one tracked prompt, drawn by the cells below the picker
    page.widget("button", "Compare").click()  # the picker draws the same figures under itself
    page.wait(lambda: page.plots() == 2 * shown, 120, "the picker's figures")
    assert any(text.startswith(f"compared {len(runs)} runs") for text in page.html_texts())
    page.show(".jp-OutputArea .widget-vbox")
    page.driver.save_screenshot(str(ARTIFACTS / "lab-compare.png"))
