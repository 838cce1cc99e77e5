"""scripts/gpu_check.sh end to end on the CPU (`--size tiny --allow-cpu`): the command a GPU session runs must
at least run with the current trainer, rollout backend and samplers. It cannot see CUDA-only faults; it does
exercise bf16, the shared prompt pass and prefill, the first mini-batch's pi_old and both samplers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_smoke_runs_on_the_cpu(tmp_path):
    smoke = "--size tiny --allow-cpu --steps 2 --max-new-tokens 8 --prompts 4 --group-size 4 --objectives lad,grpo"
    command = ["bash", "scripts/gpu_check.sh", *smoke.split(), "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["card"] == "no GPU" and set(record["objectives"]) == {"lad", "grpo"}
    for name, result in record["objectives"].items():
        assert result["loss_finite"], name
        assert result["steps_timed"] == 1 and result["step_time_s"] > result["rollout_time_s"] > 0
        # 4 prompts x 4 samples x at most 8 new tokens, plus the prompts: the step's real tokens.
        assert 16 < result["tokens_per_step"] <= 16 * (8 + 64)
        # bf16 weights: the trainer's fp32 log-softmax of bf16 logits against the sampler's (same kernels on a CPU).
        assert math.isfinite(result["logprob_diff_max"]) and result["logprob_diff_max"] < 0.05
    decode = record["decode_modes"]["modes"]  # on a CPU: eager and the static cache (compiling takes minutes)
    assert set(decode) == {"eager", "static"} and record["decode"] == "eager"
    assert decode["static"]["same_tokens_as_eager"] == 1.0 and decode["static"]["rollout_s"] > 0
    assert record["micro_batch_rows"] == 8  # no token budget on a CPU: half of the 4 x 4 rows, one micro-batch
    assert "vllm_sleep" not in record  # a GPU-only part
    assert record["fsdp"].startswith("not run")  # fewer than 2 GPUs (the 2-process CPU run is tested elsewhere)
    samplers = record["samplers"]
    assert samplers["batched_rollout_s"] > 0 and samplers["per_row_rollout_s"] > 0
    assert "MFU" in done.stdout and "batched sampler" in done.stdout


@pytest.mark.slow
def test_gpu_check_fsdp_part_runs_on_two_cpu_processes(tmp_path):
    # The GPU check's FSDP part (this script again under torchrun, distributed.strategy=fsdp), forced on a CPU.
    smoke = "--size tiny --allow-cpu --steps 2 --max-new-tokens 8 --prompts 4 --group-size 4 --objectives lad"
    command = ["bash", "scripts/gpu_check.sh", *smoke.split(), "--fsdp-processes", "2", "--no-compare-samplers"]
    command += ["--out", str(tmp_path)]
    # Ranks start as a user's would: without what an in-process vLLM engine of an earlier test leaves in os.environ
    # (LD_PRELOAD of tcmalloc/libgomp, LOCAL_WORLD_SIZE), with a fault handler; launched once more only on the rare
    # C++ abort that tests/integration/launch.py describes.
    inherited = ("LD_PRELOAD", "LOCAL_WORLD_SIZE", "VLLM_DIST_IDENT", "VLLM_WORKER_MULTIPROC_METHOD")
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(OMP_NUM_THREADS="1", PYTHONFAULTHANDLER="1")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "terminate called without an active exception" in done.stderr:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stderr.splitlines() if "Error" in line or "terminate" in line]
    assert done.returncode == 0, "\n".join(errors[-20:]) + done.stderr[-1500:]
    fsdp = json.loads((tmp_path / "gpu_check.json").read_text())["fsdp"]
    assert fsdp["processes"] == 2 and fsdp["loss_finite"] and fsdp["steps_timed"] == 1
    assert "fsdp x2" in done.stdout


def test_update_ablation_smoke_runs_on_the_cpu(tmp_path):
    # benchmarks/update_ablation.py (full vs shared prompt pass, the GPU session's second command) must run.
    command = [sys.executable, "benchmarks/update_ablation.py", "--size", "tiny", "--width", "8", "--repeats", "1",
               "--prompt-lengths", "6,20", "--no-profile", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    variants = json.loads((tmp_path / "update_ablation.json").read_text())["variants"]
    # 2 prompt lengths x 3 kinds of pass x (full, shared), each a positive time.
    assert len(variants) == 12 and all(v["median_s"] > 0 for v in variants.values())
    assert {"P6 train full", "P20 no_grad+entropy shared"} <= set(variants)
