"""Run by test_train_fsdp.py under `torchrun --nproc-per-node 2` (gloo on CPU).

    fsdp_train.py MODEL RUN_DIR STRATEGY STEPS [resume] [section.key=value ...]

Trains STEPS steps of a tiny local model (LoRA, tracked prompts, evaluation before step 0 and at the end,
a checkpoint every 2 steps and at the end) with distributed.strategy=STRATEGY, or resumes RUN_DIR to STEPS;
section.key=value arguments override the config (e.g. rollout.backend=vllm).
"""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from ladkit.config import apply_overrides, build  # noqa: E402
from ladkit.training.config import TrainConfig  # noqa: E402
from ladkit.training.loop import train  # noqa: E402


def main() -> None:
    model_path, run_dir, strategy, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    options = sys.argv[5:]
    values = {
        "model": {"name_or_path": model_path, "lora_rank": 4, "lora_dropout": 0.0},
        "task": {"name": "countdown", "train_size": 32, "eval_size": 4, "reward": "ddp_reward:digits"},
        "rollout": {"max_new_tokens": 6},
        "optim": {"lr": 0.01},
        "distributed": {"strategy": strategy},
        "steps": steps,
        "prompts_per_step": 4,
        "group_size": 4,
        "mini_batches": 2,
        "eval_every": 2,
        "eval_samples": 2,
        "checkpoint_every": 2,
        "tracked_prompts": 2,
    }
    values = apply_overrides(values, [option for option in options if "=" in option])
    train(build(TrainConfig, values), run_dir, resume="resume" in options, callbacks=[record_executor(run_dir)])


def record_executor(run_dir: str):
    """A callback writing, once, which executor this rank's vLLM engine runs on to RUN_DIR.executor-rank<R>
    (beside the run folder, not in it); nothing for the hf backend."""

    def record(step, row, ctx) -> None:
        llm = getattr(ctx.backend, "llm", None)
        target = Path(f"{run_dir}.executor-rank{ctx.info.rank}")
        if llm is not None and not target.exists():
            target.write_text(str(llm.llm_engine.vllm_config.parallel_config.distributed_executor_backend))

    return record


if __name__ == "__main__":
    main()
