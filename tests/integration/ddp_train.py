"""Run by test_train_ddp.py, once alone and once under `torchrun --nproc-per-node 2` (gloo on CPU).

Trains a few steps on a tiny local model with a dense custom reward, then every rank writes a fingerprint
of its trainable weights (their values) to <run_dir>/weights_rank<R>.json.
"""

import json
import os
import sys

import torch

torch.set_num_threads(1)

from ladkit.config import build  # noqa: E402
from ladkit.training.config import TrainConfig  # noqa: E402
from ladkit.training.loop import train  # noqa: E402


def main() -> None:
    model_path, run_dir = sys.argv[1], sys.argv[2]
    config = build(
        TrainConfig,
        {
            "model": {"name_or_path": model_path, "lora_rank": 4, "lora_dropout": 0.0},
            "task": {"name": "countdown", "train_size": 32, "eval_size": 4, "reward": "ddp_reward:digits"},
            "objective": os.environ.get("OBJECTIVE", "lad"),
            "rollout": {"max_new_tokens": 6},
            "optim": {"lr": 0.01},
            "steps": 3,
            "prompts_per_step": 4,
            "group_size": 4,
            "mini_batches": 2,
            "eval_every": 0,
            "checkpoint_every": 0,
            # unset: shared on a CPU; "false": the full forwards a GPU runs by default, through the DDP wrapper
            "shared_prompt_pass": {"": None, "true": True, "false": False}[os.environ.get("SHARED_PROMPT_PASS", "")],
        },
    )
    rank = int(os.environ.get("RANK", "0"))
    weights = {}

    def keep(step, row, ctx):
        if step == config.steps - 1:
            weights.update(
                {n: p.detach().flatten().tolist() for n, p in ctx.model.named_parameters() if p.requires_grad}
            )

    train(config, run_dir, callbacks=[keep])
    with open(os.path.join(run_dir, f"weights_rank{rank}.json"), "w") as handle:
        json.dump(weights, handle)


if __name__ == "__main__":
    main()
