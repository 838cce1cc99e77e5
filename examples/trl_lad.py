"""LAD with TRL: train a model on a ladkit task through trl.GRPOTrainer with ladkit's objective, and write a
ladkit run folder that `ladkit compare` reads.

    # 2 CPU processes (DDP over gloo), the built-in tiny model: what tests/integration/test_trl_lad.py runs
    accelerate launch --config_file ladkit/integrations/configs/ddp_cpu.yaml examples/trl_lad.py --max-steps 4
    # GPUs: FSDP (or deepspeed_zero3.yaml), a real model and data set, vLLM colocated
    accelerate launch --config_file ladkit/integrations/configs/fsdp.yaml examples/trl_lad.py \
        --model Qwen/Qwen2.5-7B --set task.name=dataset --set task.dataset.preset=dapo_math \
        --set task.prompt_style=chat --bf16 --use-vllm --vllm-mode colocate --max-steps 500

Every rollout/optimiser setting is read from one ladkit TrainConfig (`--set key=value`, ladkit's names), so a
`ladkit train` run with the same `--set` does the same work; TRL's own options are mapped from it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from transformers import TrainerCallback


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin", help="builtin, a ladkit tiny model folder, or a HF model")
    parser.add_argument("--objective", default="lad", help="lad or grpo (FlowRL needs ladkit's trainer)")
    parser.add_argument("--set", action="append", default=[], help="ladkit config key=value (repeatable)")
    parser.add_argument("--max-steps", type=int, default=4, help="ladkit steps (generation batches)")
    parser.add_argument("--run-dir", default=None, help="ladkit run folder to write (default: runs/trl-...)")
    parser.add_argument("--lora", action="store_true", help="train a peft LoRA adapter (model.lora_rank...)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--use-vllm", action="store_true", help="TRL's vLLM generation (GPU)")
    parser.add_argument("--vllm-mode", default="colocate", choices=("colocate", "server"))
    return parser.parse_args()


def ladkit_config(args):
    from ladkit.training.resolve import resolve

    return resolve(None, [f"objective={args.objective}", f"model.name_or_path={args.model}", *args.set], {})


def reward_function(task):
    """The ladkit task's own score() as a TRL reward function (dataset columns arrive as keyword lists)."""
    examples = task.train_examples()

    def reward(prompts, completions, example_index, **_) -> list[float]:
        return [r.reward for r in task.score(completions, [examples[i] for i in example_index])]

    reward.__name__ = "ladkit_task"
    return reward


def trl_args(config, args, out_dir: str):
    """TRL's GRPOConfig for the ladkit config's geometry: one ladkit step = one generation batch of
    prompts_per_step x group_size, split into mini_batches optimiser steps (steps_per_generation)."""
    import torch
    from trl import GRPOConfig

    mini, world = config.mini_batches, int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch
    per_device = config.prompts_per_step * config.group_size // (mini * world)
    per_batch = mini * config.epochs  # optimiser steps per generation batch: one log row per ladkit step
    return GRPOConfig(
        output_dir=out_dir, seed=config.seed, use_cpu=not torch.cuda.is_available(), bf16=args.bf16,
        gradient_checkpointing=False,
        per_device_train_batch_size=per_device, steps_per_generation=mini, gradient_accumulation_steps=1,
        num_iterations=config.epochs, num_generations=config.group_size,
        max_completion_length=config.rollout.max_new_tokens, temperature=config.rollout.temperature,
        top_p=config.rollout.top_p, learning_rate=config.optim.lr, adam_beta1=config.optim.betas[0],
        adam_beta2=config.optim.betas[1], weight_decay=config.optim.weight_decay,
        max_grad_norm=config.optim.max_grad_norm, lr_scheduler_type="constant", warmup_steps=0, beta=0.0,
        scale_rewards=config.advantage_scale, max_steps=per_batch * args.max_steps, logging_steps=per_batch,
        save_strategy="no", report_to="none", disable_tqdm=True, use_vllm=args.use_vllm,
        vllm_mode=args.vllm_mode, vllm_importance_sampling_correction=False, ddp_find_unused_parameters=False,
    )  # fmt: skip


def main() -> None:
    args = parse_args()
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladkit.integrations.trl import LadkitGRPOTrainer, LadkitRunCallback
    from ladkit.models.loading import resolve_model_path
    from ladkit.runs import run_name
    from ladkit.tasks import make_task

    config = ladkit_config(args)
    task = make_task(config.task)
    dataset = Dataset.from_list([{"prompt": e.prompt, "example_index": i} for i, e in enumerate(task.train_examples())])
    path = resolve_model_path(config.model.name_or_path)
    lora = LoraConfig(
        r=config.model.lora_rank, lora_alpha=config.model.lora_alpha, lora_dropout=config.model.lora_dropout,
        target_modules=config.model.target_modules, task_type="CAUSAL_LM",
    ) if args.lora else None  # fmt: skip
    run_dir = args.run_dir or str(Path("runs") / run_name("trl", args.objective))
    section = getattr(config, config.objective)
    callback = LadkitRunCallback(run_dir, config={"task": _task_section(config)})
    wrapped = WrappedModel()
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = LadkitGRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(path), reward_funcs=reward_function(task),
            args=trl_args(config, args, out_dir), train_dataset=dataset,
            processing_class=AutoTokenizer.from_pretrained(path), peft_config=lora, callbacks=[callback, wrapped],
            objective=config.objective, objective_config=section,
        )  # fmt: skip
        wrapped.trainer = trainer
        result = trainer.train()
    if trainer.accelerator.is_main_process:
        state = trainer.accelerator.state
        print(f"distributed: {state.distributed_type.value}, {state.num_processes} processes, model wrapped as "
              f"{wrapped.kind}")  # fmt: skip
        print(f"run folder: {run_dir} (train loss {result.training_loss:.4f})")


class WrappedModel(TrainerCallback):
    """Records what accelerate wrapped the model in (DDP, FSDP, DeepSpeed) while training (unwrapped after)."""

    trainer, kind = None, "unknown"

    def on_step_end(self, *_, **__):
        self.kind = type(self.trainer.model_wrapped).__name__


def _task_section(config) -> dict:
    from dataclasses import asdict

    return asdict(config.task)


if __name__ == "__main__":
    main()
