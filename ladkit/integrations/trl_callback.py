"""LadkitRunCallback: a TRL training run written as a ladkit run folder (config.yaml, meta.json, metrics.jsonl,
samples/), so `ladkit compare` and the notebooks read it next to ladkit's own runs.

One metrics row per TRL log row; its `step` is ladkit's: the index of the generation batch (a ladkit step is one
generation batch). Set `logging_steps` to the optimiser steps per generation batch
(steps_per_generation * num_iterations / gradient_accumulation_steps) for one row per ladkit step. Only the main
process writes. Written by LadkitGRPOTrainer's log: TRL's own keys renamed where the quantity is ladkit's
(runfolder.TRL_KEYS), the objective's metrics (lad/*, ratio/*, loss/value) and diversity/dist3, dist4 as they are.
tracked.jsonl holds the first training group of each step (trl_tracking.py: TRL samples no held-out prompts).
TRL evaluates no pass@k, so a TRL run folder has no eval/pass@k (evaluate its checkpoints separately).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ladkit.integrations.runfolder import TRL_KEYS, rename, section
from ladkit.integrations.trl_tracking import track_after
from ladkit.runs import RunWriter, to_jsonable

TRL_SETTINGS = (
    "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "num_iterations",
    "num_generations", "generation_batch_size", "max_completion_length", "temperature", "top_p", "learning_rate",
    "max_grad_norm", "use_vllm", "vllm_mode", "bf16", "max_steps", "scale_rewards", "loss_type", "beta",
)  # fmt: skip


class LadkitRunCallback(TrainerCallback):
    """Writes `run_dir` as a ladkit run folder; `config` (e.g. the task section) is merged into config.yaml."""

    def __init__(
        self, run_dir: str | Path, config: dict[str, Any] | None = None, samples_every: int = 1, tracked: bool = True
    ):
        self.run_dir, self.extra, self.samples_every = Path(run_dir), dict(config or {}), samples_every
        self.tracked = tracked  # the first training group's distributions each step (trl_tracking.py)
        self.trainer, self.writer = None, None

    def attach(self, trainer) -> None:
        """Called by LadkitGRPOTrainer: the objective, its config, each batch's samples and tracked group."""
        self.trainer = trainer
        trainer.ladkit_tracking = self.tracked

    def on_step_end(self, args, state, control, **kwargs):
        """After a generation batch's last optimiser step: its tracked group, with pi_theta after the updates."""
        pending = getattr(self.trainer, "ladkit_pending", None)
        if self.writer is None or pending is None or state.global_step % _optimiser_steps_per_batch(args):
            return
        step = state.global_step // _optimiser_steps_per_batch(args) - 1
        record = track_after(self.trainer, pending, step)
        self.trainer.ladkit_pending = None
        with open(self.writer.path / "tracked.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(to_jsonable(record)) + "\n")

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.writer = RunWriter(self.run_dir, self.run_config(args, kwargs.get("model")), command="trl")

    def run_config(self, args, model=None) -> dict[str, Any]:
        """config.yaml: ladkit's names for the geometry, the objective's section, then TRL's own settings."""
        objective = getattr(self.trainer, "objective", "grpo")
        config = {
            "engine": "trl",
            "objective": objective,
            objective: section(getattr(self.trainer, "objective_config", None)),
            "seed": args.seed,
            "group_size": args.num_generations,
            "prompts_per_step": args.generation_batch_size // args.num_generations,
            "mini_batches": _optimiser_steps_per_batch(args),
            "epochs": args.num_iterations,
            "rollout": {"max_new_tokens": args.max_completion_length, "temperature": args.temperature},
            "optim": {"lr": args.learning_rate, "max_grad_norm": args.max_grad_norm},
            "model": {"name_or_path": getattr(getattr(model, "config", None), "_name_or_path", None)},
            "trl": {key: getattr(args, key, None) for key in TRL_SETTINGS},
        }
        return {**config, **self.extra}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.writer is None or not logs:
            return
        if "train_runtime" in logs:  # TRL's end-of-training summary, not a step
            self.writer.write_json("summary.json", {k: v for k, v in logs.items() if _finite(v)})
            return
        if any(key.startswith("eval_") for key in logs):
            return  # TRL's eval loop logs the training loss on an eval set, not pass@k
        step = math.ceil(state.global_step / _optimiser_steps_per_batch(args)) - 1
        self.writer.log({"step": step, "trl/global_step": state.global_step, **rename(logs, TRL_KEYS, "trl")})
        self._write_samples(step)

    def _write_samples(self, step: int) -> None:
        samples = getattr(self.trainer, "ladkit_samples", None)
        if not samples or not self.samples_every or step % self.samples_every:
            return
        folder = self.writer.path / "samples"
        folder.mkdir(exist_ok=True)
        lines = "".join(json.dumps(to_jsonable({"step": step, **sample})) + "\n" for sample in samples)
        (folder / f"step_{step:06d}.jsonl").write_text(lines, encoding="utf-8")

    def on_train_end(self, args, state, control, **kwargs):
        if self.writer is not None:
            self.writer.finish("completed", trl_global_step=state.global_step)
            self.writer = None


def _optimiser_steps_per_batch(args) -> int:
    """Optimiser steps per generation batch: TRL generates every steps_per_generation * num_iterations micro-steps."""
    return max(1, args.steps_per_generation * args.num_iterations // args.gradient_accumulation_steps)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
