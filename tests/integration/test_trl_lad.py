"""LAD inside TRL under `accelerate launch` with 2 CPU processes (DDP over gloo) and a peft LoRA adapter: a few
steps of examples/trl_lad.py on the built-in tiny model, writing a ladkit run folder; then `ladkit compare` reads
that folder next to a `ladkit train` run of the same settings.

FSDP is not run here: accelerate 1.16 enables FSDP only for accelerator devices (on a CPU it takes DDP over gloo
and ignores the FSDP plugin); ladkit/integrations/configs/fsdp.yaml is for GPUs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl", reason="trl is not installed (bench/dev extra)")

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "ladkit" / "integrations" / "configs"
# the same geometry on both engines: 4 prompts x G=4, 8 new tokens, 2 mini-batches, LAD-js 1/eta=4
SETTINGS = [
    "prompts_per_step=4",
    "group_size=4",
    "rollout.max_new_tokens=8",
    "mini_batches=2",
    "task.train_size=16",
    "task.eval_size=4",
    "seed=3",
    "lad.divergence=js",
    "lad.inv_eta=4",
]
STEPS = 3
LADKIT = str(Path(sys.executable).parent / "ladkit")  # the console script of this environment


def _run(command: list[str]) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _trl_run(config: str, run_dir: Path, *extra: str) -> str:
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / config)]
    sets = [arg for setting in SETTINGS for arg in ("--set", setting)]
    example = ["examples/trl_lad.py", "--max-steps", str(STEPS), "--run-dir", str(run_dir)]
    return _run([*accelerate, *example, *sets, *extra])


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("trl") / "trl-lad-js"
    return run_dir, _trl_run("ddp_cpu.yaml", run_dir, "--lora")


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_lad_and_write_a_run_folder(ddp_run):
    run_dir, stdout = ddp_run
    assert "distributed: MULTI_CPU, 2 processes, model wrapped as DistributedDataParallel" in stdout
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["engine"] == "trl" and config["objective"] == "lad"
    assert config["lad"]["divergence"] == "js" and config["lad"]["inv_eta"] == 4
    assert (config["group_size"], config["prompts_per_step"], config["mini_batches"]) == (4, 4, 2)
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"
    rows = _rows(run_dir)
    assert [row["step"] for row in rows] == list(range(STEPS))  # one row per generation batch
    for row in rows:
        for key in ("reward/mean", "policy/entropy", "diversity/dist3", "lad/weight_mean", "ratio/mean"):
            assert key in row, key
        assert 0.0 <= row["reward/mean"] <= 1.0 and row["policy/entropy"] > 0.0
    # a step whose group rewards differ moves the LoRA adapter: a nonzero gradient, ratios away from 1
    moved = [row for row in rows if row["reward/zero_variance_frac"] < 1.0]
    assert moved and all(row["optim/grad_norm"] > 0.0 for row in moved)
    samples = [json.loads(line) for line in (run_dir / "samples" / "step_000000.jsonl").read_text().splitlines()]
    assert len(samples) == 8 and {"prompt", "completion", "reward", "advantage"} <= samples[0].keys()  # rank 0's half
    tracked = [json.loads(line) for line in (run_dir / "tracked.jsonl").read_text().splitlines()]
    assert [row["step"] for row in tracked] == list(range(STEPS))  # the first training group of each step
    for row in tracked:
        assert len(row["completions"]) == len(row["advantages"]) == len(row["policy_dist"]) == 4  # G
        # the advantage-induced distribution is softmax(A / eta) with 1/eta = 4, by hand
        weights = [math.exp(4 * a) for a in row["advantages"]]
        assert row["advantage_dist"] == pytest.approx([w / sum(weights) for w in weights], abs=1e-9)
        assert sum(row["policy_dist"]) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.slow
def test_ladkit_compare_reads_a_trl_run_next_to_a_ladkit_run(ddp_run, tmp_path):
    trl_dir, _ = ddp_run
    ladkit_dir = tmp_path / "ladkit-lad-js"
    sets = [arg for setting in SETTINGS for arg in ("--set", setting)]
    _run([LADKIT, "train", "--model", "builtin", "--objective", "lad", "--steps", str(STEPS),
          "--run-dir", str(ladkit_dir), *sets, "--set", "eval_every=0", "--threads", "1"])  # fmt: skip
    report = tmp_path / "compare.html"
    table = _run([LADKIT, "compare", str(ladkit_dir), str(trl_dir), "--group-by", "engine",
                  "--metric", "reward/mean", "--metric", "policy/entropy", "--out", str(report)])  # fmt: skip
    assert "engine=ladkit" in table and "engine=trl" in table  # both read, grouped by engine
    assert report.is_file() and "engine=trl" in report.read_text()
