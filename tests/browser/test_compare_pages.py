"""The compare report and the executed, exported compare notebook render their plots in real Chromium,
without JavaScript errors; a screenshot of each lands in test-artifacts/."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ladkit.compare import compare_runs, load_runs, make_demo_runs
from ladkit.compare.report import write_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


def check_page(driver, page: Path, shot: str, min_plots: int) -> None:
    driver.get(page.as_uri())
    deadline = time.time() + 20
    while time.time() < deadline:  # plotly draws asynchronously after load
        plots = driver.execute_script(
            "return Array.from(document.querySelectorAll('.plotly-graph-div'))"
            ".filter(d => d.querySelector('svg.main-svg')).length"
        )
        if plots >= min_plots:
            break
        time.sleep(0.25)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / shot))
    # nbconvert's template fetches require.js/MathJax from a CDN: unreachable offline and not ours to judge;
    # any other severe entry (a JavaScript exception, a failed local file) fails the test.
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and not _offline_cdn(e)]
    assert errors == [], errors
    assert plots >= min_plots


def _offline_cdn(entry: dict) -> bool:
    return entry.get("source") == "network" and entry["message"].startswith("https://")


@pytest.mark.browser
def test_report_renders(browser, tmp_path):
    runs, notes = load_runs(make_demo_runs(tmp_path / "runs", seeds=2, steps=8))
    page = write_report(compare_runs(runs, notes=notes), tmp_path / "report.html")
    check_page(browser, page, "compare-report.png", min_plots=6)  # curves, pass@k, 2 tracked prompts x 2 groups


@pytest.mark.browser
def test_exported_notebook_renders(browser, tmp_path):
    pytest.importorskip("nbconvert", reason="pip install nbconvert")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    prefix = tmp_path / "jupyter"
    kernelspec.install(kernel_name="python3", prefix=str(prefix))
    env = {"JUPYTER_PATH": str(prefix / "share" / "jupyter"), "PATH": str(Path(sys.executable).parent)}
    command = [sys.executable, "-m", "nbconvert", "--to", "html", "--execute", "--output-dir", str(tmp_path),
               str(ROOT / "notebooks" / "compare.ipynb")]  # fmt: skip
    subprocess.run(command, check=True, env=env, timeout=120, capture_output=True)
    check_page(browser, tmp_path / "compare.html", "compare-notebook.png", min_plots=4)
