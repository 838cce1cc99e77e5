"""A JupyterLab server for the browser tests, started the way `make lab` starts it, and a driver for its notebooks.

`start_lab` runs scripts/lab.sh (the `make lab` script) on a free localhost port with a fresh token, serving
a temporary copy of notebooks/ (Run All in the front end edits the open notebook; the committed files must
stay output-free), with throwaway Jupyter settings: no autosave, no news toast, every cell rendered (no
windowing, so widgets below the fold get real sizes). `stop_lab` shuts every kernel down and ends the server.
`LabPage` drives one notebook through JupyterLab's own commands (the app is exposed to the page for this:
LabApp.expose_app_in_browser).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {  # JupyterLab user settings: plugin id -> values
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@dataclass
class Lab:
    url: str
    token: str
    process: subprocess.Popen
    notebooks: Path  # the served copy of notebooks/
    run_root: Path  # LADKIT_RUN_ROOT of its kernels
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(tmp_path: Path, log: Path, timeout: float = 120) -> Lab:
    """JupyterLab via scripts/lab.sh at smoke size; returns once its API answers with the token."""
    notebooks = shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    settings = tmp_path / "lab-settings"
    for plugin, values in SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), os.urandom(16).hex()
    env = {
        **os.environ,
        "PY": sys.executable,
        "LAB_PORT": str(port),
        "JUPYTER_TOKEN": token,
        "LAB_NOTEBOOKS": str(notebooks),
        "LADKIT_SMOKE": "1",
        "LADKIT_RUN_ROOT": str(tmp_path / "runs"),
        "OMP_NUM_THREADS": "1",
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    command = ["bash", str(ROOT / "scripts" / "lab.sh"), "--LabApp.expose_app_in_browser=True"]
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    lab = Lab(f"http://127.0.0.1:{port}", token, process, notebooks, tmp_path / "runs", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            api(lab, "api/status")
            return lab
        except OSError:
            time.sleep(1)
    stop_lab(lab)
    raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def api(lab: Lab, path: str, method: str = "GET", token: bool = True):
    """One REST call to the server (with the token unless told not to)."""
    request = urllib.request.Request(f"{lab.url}/{path}", method=method)
    if token:
        request.add_header("Authorization", f"token {lab.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def stop_lab(lab: Lab) -> None:
    """Shut the kernels down through the API, then end the server (its whole process group)."""
    try:
        for kernel in api(lab, "api/kernels"):
            api(lab, f"api/kernels/{kernel['id']}", method="DELETE")
    except OSError:
        pass  # the server is already gone: nothing to shut down politely
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(lab.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            lab.process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# Run inside the page: the open notebook's code cells and the kernel's state.
CELLS_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext || !panel.context.isReady) return null;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = panel.content.widgets.filter(cell => cell.model.type === 'code');
return {
  kernel: kernel ? kernel.status : 'none',
  count: cells.length,
  unrun: cells.filter(cell => cell.model.executionCount === null).length,
  busy: cells.filter(cell => (cell.promptNode ? cell.promptNode.textContent : '').includes('*')).length,
  errors: cells.flatMap(cell => cell.model.outputs.toJSON())
               .filter(out => out.output_type === 'error').map(out => out.ename + ': ' + out.evalue),
};
"""


class LabPage:
    """One notebook open in JupyterLab in the browser."""

    def __init__(self, driver, lab: Lab):
        self.driver, self.lab = driver, lab

    def open(self, name: str, timeout: float = 180) -> None:
        """Open notebooks/NAME and wait until its kernel is idle."""
        # ?reset: a fresh workspace, so the notebooks an earlier test opened are not restored beside this one.
        self.driver.get(f"{self.lab.url}/lab/tree/{name}?reset&token={self.lab.token}")
        self.wait(lambda: (self.cells() or {}).get("kernel") == "idle", timeout, f"{name}: kernel idle")

    def cells(self) -> dict | None:
        return self.driver.execute_script(CELLS_JS)

    def run_all(self, timeout: float) -> dict:
        """Run > Run All Cells (the JupyterLab command); returns the cell state once every cell has run."""
        self.driver.execute_script(  # the command acts on the active notebook: make sure it is this one
            "const app = window.jupyterapp; app.shell.activateById(app.shell.currentWidget.id);"
            "app.commands.execute('notebook:run-all-cells');"
        )

        def finished() -> bool:
            state = self.cells()
            assert not state["errors"], f"a cell failed in the front end: {state['errors']}"
            return state["unrun"] == 0 and state["busy"] == 0 and state["kernel"] == "idle"

        self.wait(finished, timeout, "every cell has run")
        return self.cells()

    def wait(self, condition, timeout: float, what: str, every: float = 0.5):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"waited {timeout} s for: {what} (cells: {self.cells()})")

    def plots(self) -> int:
        """plotly figures drawn (an SVG present) in the notebook's outputs."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea .js-plotly-plot'))"
            ".filter(plot => plot.querySelector('svg.main-svg')).length"
        )

    def plot_paths(self) -> list[str]:
        """Every drawn trace's SVG path (lines, markers, bars) in the outputs: what the figures show now."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea .js-plotly-plot "
            ":is(.barlayer, .scatterlayer) path')).map(p => p.getAttribute('d') || '')"
        )

    def widget(self, kind: str, text: str):
        """The widget element of `kind` (button, a labelled text box) whose text or label is `text`."""
        script = {
            "button": "return Array.from(document.querySelectorAll('button.jupyter-widgets'))"
            ".find(b => b.textContent.trim() === arguments[0]) || null",
            "input": "const box = Array.from(document.querySelectorAll('.widget-inline-hbox'))"
            ".find(b => (b.querySelector('label') || {}).textContent === arguments[0]);"
            "return box ? box.querySelector('input') : null",
        }[kind]
        return self.wait(lambda: self.driver.execute_script(script, text), 30, f"{kind} {text!r}")

    def html_texts(self) -> list[str]:
        """The texts of every HTML widget (status lines)."""
        return self.driver.execute_script(
            "return Array.from(document.querySelectorAll('.widget-html-content')).map(e => e.textContent)"
        )

    def status_step(self) -> tuple[int, int] | None:
        """(step, steps) from the dashboard's status line 'step K/N: ...', while it shows one."""
        for text in self.html_texts():
            match = re.match(r"step (\d+)/(\d+):", text)
            if match:
                return int(match[1]), int(match[2])
        return None

    def show(self, selector: str) -> None:
        """Scroll the first element matching `selector` to the top of the notebook's view."""
        self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView({block: 'start'});", selector
        )
        time.sleep(1)  # plotly relayouts after the scroll
