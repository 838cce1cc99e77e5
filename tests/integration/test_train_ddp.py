"""Two CPU processes (torchrun, gloo) train exactly like one process with the same global batch."""

import json
import shutil
import sys
from pathlib import Path

import pytest
from launch import clean_env, failure, run_ranks

HERE = Path(__file__).parent


def run(args: list[str], run_dir: Path, **extra_env: str) -> None:
    out = run_ranks(args, clean_env(PYTHONPATH=str(HERE), **extra_env), fresh=run_dir)
    assert out.returncode == 0, failure(out)


@pytest.mark.slow
@pytest.mark.parametrize("shared", ["", "false"], ids=["shared-prompt-pass", "full-forwards"])
def test_two_ranks_match_one_process(tiny_model_path, tmp_path, shared):
    # "false" is the path a GPU takes by default (shared_prompt_pass unset on CUDA): every forward through DDP
    single, double = tmp_path / "single", tmp_path / "double"
    run(
        [sys.executable, str(HERE / "ddp_train.py"), str(tiny_model_path), str(single)],
        single,
        SHARED_PROMPT_PASS=shared,
    )
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531"]
    run([*torchrun, str(HERE / "ddp_train.py"), str(tiny_model_path), str(double)], double, SHARED_PROMPT_PASS=shared)
    one = json.loads((single / "weights_rank0.json").read_text())
    rank0 = json.loads((double / "weights_rank0.json").read_text())
    rank1 = json.loads((double / "weights_rank1.json").read_text())
    assert rank0.keys() == rank1.keys() == one.keys() and one
    for name in one:
        assert rank0[name] == rank1[name], f"ranks diverged on {name}"  # DDP keeps replicas bit-identical
        # same maths, different summation order (a half batch per rank, then the gradient all-reduce):
        # float noise that Adam's per-coordinate normalisation can amplify where a gradient is ~0
        assert max(abs(a - b) for a, b in zip(one[name], rank0[name])) < 2e-4, name
    moved = max(abs(v) for name, values in one.items() if "lora_B" in name for v in values)
    assert moved > 2e-2  # LoRA B starts at 0: the updates are 100x larger than the disagreement
    rows = [json.loads(line) for line in (double / "metrics.jsonl").read_text().splitlines()]
    rows_single = [json.loads(line) for line in (single / "metrics.jsonl").read_text().splitlines()]
    rows, rows_single = [r for r in rows if "reward/mean" in r], [r for r in rows_single if "reward/mean" in r]
    assert [r["step"] for r in rows] == [0, 1, 2]
    for a, b in zip(rows, rows_single):
        assert a["reward/mean"] == pytest.approx(b["reward/mean"], abs=1e-6)
    # the final evaluation's per-prompt records come from both ranks (2 held-out prompts each), written once
    prompts = {
        run: [json.loads(line) for line in (run / "eval_prompts.jsonl").read_text().splitlines()]
        for run in (single, double)
    }
    assert len(prompts[double]) == 4 and {r["example_id"] for r in prompts[double]} == {
        r["example_id"] for r in prompts[single]
    }
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
def test_the_cli_under_torchrun_exits_zero_on_every_rank_and_rank_0_prints_the_summary(tmp_path):
    # `torchrun -m ladkit_cli.main train`: rank 1 reads no metric rows (only the main process writes them),
    # so its summary has no rewards; it must neither format them nor print a summary of its own.
    run_dir = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29533"]
    sizes = [
        "prompts_per_step=4",
        "group_size=2",
        "mini_batches=1",
        "task.train_size=8",
        "task.eval_size=4",
        "eval_every=0",
        "tracked_prompts=0",
        "rollout.max_new_tokens=4",
    ]
    args = [*torchrun, "-m", "ladkit_cli.main", "train", "--steps", "2", "--no-live", "--run-dir", str(run_dir)]
    out = run_ranks([*args, *(f"--set={s}" for s in sizes)], clean_env(), fresh=run_dir)
    assert out.returncode == 0, failure(out)  # torchrun exits non-zero when any rank does
    assert out.stdout.count("reward (mean of the first / last 10 steps' rollouts)") == 1, out.stdout
    assert out.stdout.count(f"run folder: {run_dir}") == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["reward_first"] is not None
