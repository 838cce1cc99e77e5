"""SIGTERM and Ctrl-C during `ladkit train` (a real process): the run is marked "interrupted", every file is
whole, the process exits non-zero with one line saying how to resume, and `--resume` finishes the run with
each step's metrics row exactly once.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from ladkit_cli.main import main; main()", "train"]
CONFIG = [
    "--steps", "4", "--no-live",
    "--set", "prompts_per_step=4", "--set", "group_size=4", "--set", "task.train_size=8",
    "--set", "task.eval_size=4", "--set", "eval_every=0", "--set", "checkpoint_every=1",
    "--set", "tracked_prompts=0",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TIMEOUT = 240  # seconds one process may take on a busy 2-core machine


def wait_for_checkpoint(run: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not (run / "checkpoints" / "step_000000" / "state.json").is_file():
        assert proc.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)


def metric_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]  # every line is whole JSON


@pytest.mark.parametrize(("number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["term", "int"])
def test_a_signal_marks_the_run_interrupted_and_resume_finishes_it(tmp_path, number, code):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, *CONFIG, "--run-dir", str(run)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_checkpoint(run, proc)
    proc.send_signal(number)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == code, err[-3000:]
    assert err.strip().splitlines()[-1] == (
        f"training stopped by {signal.Signals(number).name}; resume it with: ladkit train --resume {run}"
    )
    assert "Traceback" not in err
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "interrupted" and "finished" in meta
    steps = metric_steps(run)
    assert steps == list(range(len(steps))) and len(steps) < 5  # whole rows, in order, the run not finished
    done = subprocess.run([*CLI, "--resume", str(run)], env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    assert [s for s in metric_steps(run) if s < 4] == [0, 1, 2, 3]  # each step once; then the final eval row
