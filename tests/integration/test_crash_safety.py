"""Crash safety of `ladkit train`: a real training process is SIGKILLed at random and chosen moments, resumed
with `ladkit train --resume`, and the finished run must equal an uninterrupted one with the same seed: the
same metric rows (no duplicate, no gap), the same adapter, the same prompts per step, every file readable.

The config has 8 training prompts and 4 prompts per step, so an epoch is 2 steps and every run crosses
epoch boundaries (steps 2 and 4 start epochs 1 and 2). A checkpoint is written after every step.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-c", "from ladkit_cli.main import main; main()", "train"]
CONFIG = [
    "--steps", "6", "--prompts-per-step", "4", "-g", "4", "--no-live",
    "--set", "task.train_size=8", "--set", "task.eval_size=4", "--set", "eval_every=0",
    "--set", "checkpoint_every=1", "--set", "tracked_prompts=0",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
TIMEOUT = 240  # seconds one process may take on a busy 2-core machine


def launch(args: list[str], log: Path) -> subprocess.Popen:
    """Start `ladkit train ARGS` in the background, its output going to `log` (a pipe could fill and block)."""
    with open(log, "a") as handle:
        return subprocess.Popen([*CLI, *args], env=ENV, stdout=handle, stderr=subprocess.STDOUT, text=True)


def start(run: Path) -> subprocess.Popen:
    return launch([*CONFIG, "--run-dir", str(run)], run.parent / f"{run.name}.log")


def resume(run: Path) -> subprocess.Popen:
    return launch(["--resume", str(run)], run.parent / f"{run.name}.log")


def wait_for(condition, proc: subprocess.Popen, timeout: float = TIMEOUT) -> bool:
    """Poll `condition` every millisecond until it holds (True) or the process exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.001)
    raise TimeoutError("the training process neither reached the point nor exited")


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def inode(path: Path) -> int | None:
    """The file's inode: `RunWriter.reopen` rewrites metrics.jsonl atomically, so a new inode marks a resume
    that has reached its training loop."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def finish(proc: subprocess.Popen, run: Path) -> None:
    assert proc.wait(timeout=TIMEOUT) == 0, (run.parent / f"{run.name}.log").read_text()[-3000:]


def latest_step(run: Path) -> int:
    folders = sorted((run / "checkpoints").glob("step_*"))
    return int(folders[-1].name.removeprefix("step_")) if folders else -1


def phase(run: Path, since: float) -> str:
    """Where the (stopped) process was, read from what it has written so far (`since`: its start time)."""
    text = (run / "metrics.jsonl").read_text()
    rows = text.count("\n")
    saved = latest_step(run)
    samples = run / f"samples/step_{rows:06d}.jsonl"
    if list((run / "checkpoints").glob(".step_*.tmp")):
        return f"writing the checkpoint of step {rows - 1}"
    if not text.endswith("\n"):
        return f"appending the row of step {rows}"
    if rows == 7:
        return "after the final evaluation's row"
    if rows == 6 and saved == 5:
        return "final evaluation"
    if rows == saved + 2:
        return f"step {rows - 1} logged, its checkpoint not yet written"
    if samples.is_file() and samples.stat().st_mtime >= since:
        return f"step {rows} updated, its row not yet logged"
    return f"step {rows}: rollout or optimiser update"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every crashed-and-resumed run must equal."""
    run = tmp_path_factory.mktemp("reference") / "run"
    finish(start(run), run)
    return run


def assert_readable(run: Path) -> None:
    """Every file of the run folder parses; no temporary leftovers remain."""
    for path in run.rglob("*"):
        assert not path.name.endswith(".tmp"), f"leftover {path}"
        if path.is_dir():
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".safetensors":
            load_file(path)
        elif path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)


def rows_of(run: Path) -> list[dict]:
    text = (run / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def samples_of(run: Path, step: int) -> list[tuple[str, str]]:
    lines = (run / f"samples/step_{step:06d}.jsonl").read_text().splitlines()
    return [(r["prompt"], r["completion"]) for r in map(json.loads, lines)]


def assert_same_run(run: Path, reference: Path) -> None:
    """The resumed run equals the uninterrupted one: rows, adapter, checkpoints, prompts, files."""
    assert_readable(run)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumed"] >= 1
    a, b = rows_of(reference), rows_of(run)
    assert [r["step"] for r in b] == [0, 1, 2, 3, 4, 5, 6]  # six training rows, then the final evaluation
    for row_a, row_b in zip(a, b):
        assert set(row_a) == set(row_b), row_a["step"]
        for key, value in row_a.items():
            if not key.startswith("perf/"):
                assert row_b[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (row_a["step"], key)
    for folder in (reference, run):  # the newest two (keep_checkpoints=2), nothing else
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["step_000004", "step_000005"]
    wa = load_file(reference / "checkpoints/step_000005/policy/adapter_model.safetensors")
    wb = load_file(run / "checkpoints/step_000005/policy/adapter_model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    for step in range(6):  # the same prompts and completions at every step, across epoch boundaries
        assert samples_of(run, step) == samples_of(reference, step), step
    summary_a, summary_b = (json.loads((r / "summary.json").read_text()) for r in (reference, run))
    assert summary_b["reward_last10_mean"] == pytest.approx(summary_a["reward_last10_mean"], rel=1e-5)


def test_random_kills_then_resume_match_an_uninterrupted_run(reference, tmp_path):
    """Five SIGKILLs at seeded random moments of training, each followed by `--resume`, then a last resume
    that runs to the end. A process's first step is slow (~2 s of warm-up), the next ones take ~0.3 s
    (rollout, update, metrics append, checkpoint), so each kill comes 0-0.6 s after the process logged its
    first row: the kills move through the run and land in every part of a step."""
    rng, run, kills = random.Random(20261126), tmp_path / "run", []
    since, proc = time.time(), start(run)
    assert wait_for(lambda: (run / "checkpoints/step_000000").is_dir(), proc)  # a kill before: another test
    for attempt in range(5):
        if attempt:
            before, saved = inode(run / "metrics.jsonl"), latest_step(run)
            since, proc = time.time(), resume(run)

            def logged_one(before=before, saved=saved) -> bool:  # reopened, then one new row
                path = run / "metrics.jsonl"
                return inode(path) not in (None, before) and path.read_text().count("\n") >= saved + 2

            assert wait_for(logged_one, proc)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGSTOP)  # freeze it, note where it was, then kill it there
        if proc.poll() is not None:  # it finished before the kill
            break
        kills.append(phase(run, since))
        kill(proc)
    print("kills landed in:", kills)
    assert len(kills) >= 3, kills
    finish(resume(run), run)
    assert_same_run(run, reference)


def test_kill_while_writing_a_checkpoint(reference, tmp_path):
    """Stop the process the moment a checkpoint's temporary folder holds its policy, kill it there, resume."""
    run = tmp_path / "run"
    proc, hit = start(run), None
    for step in (2, 3, 4):
        tmp = run / f"checkpoints/.step_{step:06d}.tmp"
        assert wait_for(lambda tmp=tmp: (tmp / "policy").is_dir(), proc)
        proc.send_signal(signal.SIGSTOP)
        if tmp.is_dir():  # still being written (not yet renamed into place)
            hit = step
            break
        proc.send_signal(signal.SIGCONT)
    kill(proc)
    assert hit is not None, "never stopped the process inside a checkpoint write"
    assert not (run / f"checkpoints/step_{hit:06d}").exists()
    finish(resume(run), run)
    assert_same_run(run, reference)


def test_resume_at_an_epoch_boundary_trains_the_next_epoch(reference, tmp_path):
    """Kill right after the checkpoint that ends epoch 1 (step 3): the resumed run must start epoch 2 with the
    prompts the uninterrupted run trained on, not repeat or skip any."""
    run = tmp_path / "run"
    proc = start(run)
    assert wait_for(lambda: (run / "checkpoints/step_000003/state.json").is_file(), proc)
    proc.send_signal(signal.SIGSTOP)
    done = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    kill(proc)
    assert done == [0, 1, 2, 3] and not (run / "samples/step_000004.jsonl").exists()
    finish(resume(run), run)
    assert_same_run(run, reference)


def test_kill_before_the_first_checkpoint_restarts_in_place(reference, tmp_path):
    """Killed during step 0 (rows may be written, no checkpoint yet): --resume starts the run again in the same
    folder from step 0, and with the same seed it ends equal to the uninterrupted run."""
    run = tmp_path / "run"
    proc = start(run)
    assert wait_for(lambda: (run / "metrics.jsonl").exists(), proc)  # the run folder exists, step 0 runs
    kill(proc)
    assert not (run / "checkpoints" / "step_000000").exists()
    finish(resume(run), run)
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    assert_same_run(run, reference)


def test_resume_repairs_torn_leftovers(reference, tmp_path):
    """A folder as a kill during step 5 leaves it (built by hand, every leftover at once): a half-written
    last metrics line, a temporary checkpoint folder with a truncated trainer state and adapter, a
    half-written samples file and a temporary meta file. Resume ignores or repairs each of them."""
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    (run / ".meta.json.tmp").write_text(json.dumps(meta)[:40])
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:5]) + lines[5][: len(lines[5]) // 2])
    samples = run / "samples/step_000005.jsonl"
    samples.write_text(samples.read_text()[:100])
    final = run / "checkpoints/step_000005"
    tmp = final.with_name(".step_000005.tmp")
    final.rename(tmp)
    for name in ("trainer_state.pt", "policy/adapter_model.safetensors"):
        data = (tmp / name).read_bytes()
        (tmp / name).write_bytes(data[: len(data) // 2])
    (tmp / "state.json").unlink()
    finish(resume(run), run)
    assert_same_run(run, reference)
    assert json.loads((run / "meta.json").read_text())["resumed"] == 1
