"""distributed.strategy=fsdp over two CPU processes (torchrun, gloo): FSDP2 shards the base and the adapter, and
rollouts, tracked prompts, evaluation, checkpoints and resume work sharded; the adapter matches DDP's."""

import json
import sys
from pathlib import Path

import pytest
import torch
from launch import aborted, clean_env, failure, run_ranks, start_afresh

HERE = Path(__file__).parent
pytestmark = pytest.mark.slow


def launch(model_path, run_dir: Path, strategy: str, steps: int, *extra: str, port: int = 29541):
    env = clean_env(PYTHONPATH=str(HERE))  # PYTHONFAULTHANDLER: a crashed rank shows its Python stack
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port)]
    args = [*command, str(HERE / "fsdp_train.py"), str(model_path), str(run_dir), strategy, str(steps), *extra]
    return run_ranks(args, env, fresh=None if extra else run_dir)  # a resume is not retried alone


def torchrun(model_path, run_dir: Path, strategy: str, steps: int, port: int = 29541) -> None:
    out = launch(model_path, run_dir, strategy, steps, port=port)
    assert out.returncode == 0, failure(out)


def checkpoint_then_resume(model_path, run_dir: Path) -> None:
    """2 steps (a checkpoint of step 1), then a resume to 3; on the rare abort of the resume, both again from a
    fresh folder (launch.py), since the aborted resume may have written past the checkpoint it started from."""
    torchrun(model_path, run_dir, "fsdp", 2, port=29543)
    out = launch(model_path, run_dir, "fsdp", 3, "resume", port=29544)
    if aborted(out):
        start_afresh(out, run_dir)
        torchrun(model_path, run_dir, "fsdp", 2, port=29543)
        out = launch(model_path, run_dir, "fsdp", 3, "resume", port=29544)
    assert out.returncode == 0, failure(out)


def adapter(run_dir: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run_dir / f"checkpoints/step_{step:06d}/policy/adapter_model.safetensors")


def test_fsdp_trains_checkpoints_and_resumes_like_ddp(tiny_model_path, tmp_path):
    ddp, fsdp, resumed = tmp_path / "ddp", tmp_path / "fsdp", tmp_path / "resumed"
    torchrun(tiny_model_path, ddp, "ddp", 3)
    torchrun(tiny_model_path, fsdp, "fsdp", 3, port=29542)
    checkpoint_then_resume(tiny_model_path, resumed)
    reference = adapter(ddp, 2)
    assert reference and any("lora_B" in key for key in reference)
    moved = max(float(value.abs().max()) for key, value in reference.items() if "lora_B" in key)
    assert moved > 1e-2  # LoRA B starts at 0: the run trained
    for run in (fsdp, resumed):
        sharded = adapter(run, 2)  # the gathered adapter, in ddp's format and names
        assert sharded.keys() == reference.keys()
        for key, value in reference.items():
            # same maths, other reduction order (reduce-scatter vs all-reduce), through Adam: float noise only
            assert (sharded[key] - value).abs().max() < 2e-4, (run.name, key)
    rows = {run: [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (ddp, fsdp)}
    rewards = {run: [r["reward/mean"] for r in rows[run] if "reward/mean" in r] for run in rows}
    assert len(rewards[fsdp]) == 3 and rewards[fsdp] == pytest.approx(rewards[ddp], abs=1e-6)
    assert any("eval/pass@1" in r for r in rows[fsdp])  # evaluation ran sharded
    assert (fsdp / "tracked.jsonl").read_text().strip()  # tracked prompts were sampled (main process alone)
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 3
