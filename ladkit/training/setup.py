"""Everything the loop needs, built once: model, task, rollout backend, optimiser, run folder, resume state."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ladkit.config import to_dict
from ladkit.errors import LadkitError
from ladkit.models.loading import load_policy, reference_policy, render_prompt, require_reference, resolve_model_path
from ladkit.objectives import OBJECTIVES, Needs
from ladkit.rollout import make_backend
from ladkit.rollout.base import RolloutBackend
from ladkit.runs import RunWriter, clear_run
from ladkit.tasks import make_task
from ladkit.tasks.base import Example, Task
from ladkit.training import checkpoint, distributed
from ladkit.training.config import TrainConfig
from ladkit.training.policy import HEADS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass
class TrainContext:
    """The objects one training run works with (passed to each stage of the loop)."""

    config: TrainConfig
    info: distributed.DistInfo
    device: torch.device
    needs: Needs  # what the objective asks of the trainer (objectives.Needs), for this config
    model: torch.nn.Module  # the policy (a peft model with LoRA), used for generation and saving
    train_model: torch.nn.Module  # the same model, DDP-wrapped when several processes train
    tokenizer: PreTrainedTokenizerBase
    task: Task
    backend: RolloutBackend
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    parameters: list[torch.nn.Parameter]
    heads: dict[str, torch.nn.Module]  # the objective's extra trainable heads (policy.HEADS), by name
    run_dir: Path
    reference: Callable[[torch.nn.Module], ContextManager] | None = None  # the reference policy, when needed
    shared_prompt_pass: bool = True  # config.shared_prompt_pass resolved for this device
    writer: RunWriter | None = None  # on the main process
    start_step: int = 0
    prompt_cache: dict[str, list[int]] = field(default_factory=dict)

    def prompt_ids(self, example: Example) -> list[int]:
        if example.id not in self.prompt_cache:
            self.prompt_cache[example.id] = render_prompt(self.tokenizer, example.prompt)
        return self.prompt_cache[example.id]


def resolve_shared_prompt_pass(setting: bool | None, device: torch.device) -> bool:
    """config.shared_prompt_pass resolved: as set, else on a CPU only (a GPU forward of a small micro-batch is
    bound by kernel launches, and the prompt pass is a second set of them)."""
    return device.type == "cpu" if setting is None else setting


def schedule(config: TrainConfig) -> Callable[[int], float]:
    """Learning-rate multiplier per optimiser step: linear warm-up, then constant, linear or cosine decay."""
    total = max(1, config.steps * config.epochs * config.mini_batches)
    warmup, kind = config.optim.warmup_steps, config.optim.schedule

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return 1.0 - progress
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def build(config: TrainConfig, run_dir: Path, resume: bool = False) -> TrainContext:
    """Set up a fresh run in `run_dir`, or continue the one there when `resume`."""
    needs = OBJECTIVES.get(config.objective).needs_for(config.objective_config)
    # Before minutes of model loading, not after: the run folder, its checkpoint, and the data set.
    restart = resume and checkpoint.resume_point(run_dir, config.steps, needs.heads) is None
    torch.manual_seed(config.seed)  # LoRA initialisation, log Z head (and any task generator drawing from torch)
    task = make_task(config.task)
    task.train_examples(), task.eval_examples()  # a data set is read and checked here, before the model loads
    info = _join_processes(config)
    device = distributed.device_for(info)
    if device.type == "cpu":
        from ladkit.models.device import set_threads

        set_threads(config.threads)  # on purpose: torch's default takes every core, oversubscribing a shared machine
    model, tokenizer = load_policy(config.model, device.type)
    model.to(device)
    model.train()  # load_policy returns eval mode; generation and pi_old recomputation switch to eval themselves
    model = distributed.shard(model, info, config.distributed.strategy)  # fsdp; before the optimiser takes them
    from ladkit.models.inputs import check_inputs

    prompts = check_inputs(config, task, tokenizer, model)  # chat template, context length: before anything is written
    if needs.reference:
        require_reference(config.model)
    heads = {name: HEADS[name](model.config.hidden_size).to(device) for name in needs.heads}
    parameters = [p for p in model.parameters() if p.requires_grad] + [
        p for head in heads.values() for p in head.parameters()
    ]
    optimizer, scheduler = _optimiser(config, parameters)
    ctx = TrainContext(
        config, info, device, needs, model, distributed.wrap(model, info, config.distributed.strategy), tokenizer, task,
        _make_backend(config, model, tokenizer), optimizer, scheduler, parameters, heads, run_dir,
        reference=reference_policy if needs.reference else None,
        shared_prompt_pass=resolve_shared_prompt_pass(config.shared_prompt_pass, device),
    )  # fmt: skip
    ctx.prompt_cache.update(prompts)
    if resume and not restart:
        _resume(ctx)
    elif info.is_main:
        # killed before its first checkpoint: start again in place (same seed, so the same run)
        resumed = clear_run(run_dir) if restart else 0
        ctx.writer = RunWriter(run_dir, to_dict(config), command="train", durable=True, resumed=resumed)
    if ctx.writer is not None and getattr(task, "stats", None):  # rows used, skipped (too long), duplicates
        ctx.writer.meta["data_rows"] = task.stats  # in meta.json from the run's end (finish writes it)
    return ctx


def _join_processes(config: TrainConfig) -> distributed.DistInfo:
    """Join the launcher's process group (if any) and check that the batch splits evenly over the processes."""
    info = distributed.setup()
    if config.prompts_per_step % (info.world_size * config.mini_batches):
        raise LadkitError(
            f"prompts_per_step ({config.prompts_per_step}) must be divisible by processes x mini_batches "
            f"({info.world_size} x {config.mini_batches})"
        )
    return info


def _optimiser(config: TrainConfig, parameters: list[torch.nn.Parameter]):
    """AdamW over `parameters` and its learning-rate schedule (`schedule`).

    torch's fused AdamW (one kernel over every parameter, on CPUs and GPUs) where it takes these parameters,
    as transformers' Trainer and TRL use by default; the per-parameter loop of the default implementation costs
    3-5x more on a CPU with LoRA's many small tensors. Same update up to float rounding. Where fused is refused
    (a device or parameter type it does not cover, e.g. FSDP2's sharded DTensors), the default implementation."""
    optim = config.optim
    options = {"lr": optim.lr, "betas": tuple(optim.betas), "weight_decay": optim.weight_decay}
    try:
        optimizer = torch.optim.AdamW(parameters, fused=True, **options)
    except (RuntimeError, TypeError, ValueError):
        optimizer = torch.optim.AdamW(parameters, **options)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config))


def _make_backend(config: TrainConfig, model: torch.nn.Module, tokenizer) -> RolloutBackend:
    """The rollout backend of `config.rollout`, sampling from `model` in the trainer's precision."""
    rollout = config.rollout
    return make_backend(
        rollout.backend,
        model,
        tokenizer,
        model_path=str(resolve_model_path(config.model.name_or_path)),
        seed=config.seed,
        lora_rank=config.model.lora_rank if config.model.lora else None,
        max_model_len=rollout.vllm_max_model_len,
        gpu_memory_utilization=rollout.vllm_gpu_memory_utilization,
        lora_sync=rollout.vllm_lora_sync,
        sleep_mode=rollout.vllm_sleep_mode,
        decode=rollout.hf_decode,
        merge_lora=rollout.hf_merge_lora,
        dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
    )


def _resume(ctx: TrainContext) -> None:
    """Load the newest checkpoint and reopen the run folder, dropping metric rows past it."""
    found = checkpoint.latest(ctx.run_dir)
    if found is None:
        raise LadkitError(f"run {ctx.run_dir} has no complete checkpoint to resume from; start a new run")
    step, folder = found
    if distributed.is_sharded(ctx.model):  # fsdp: every rank keeps its shard of the gathered checkpoint
        distributed.load_sharded(ctx.model, ctx.optimizer, folder, ctx.scheduler, ctx.heads)
    else:
        checkpoint.load_policy_weights(ctx.model, folder)
        checkpoint.load_state(folder, ctx.optimizer, ctx.scheduler, ctx.heads)
    ctx.backend.sync_weights(ctx.model)
    ctx.start_step = step + 1
    if ctx.info.is_main:
        ctx.writer = RunWriter.reopen(ctx.run_dir, keep=lambda row: row.get("step", -1) <= step, durable=True)


def read_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config a run was started with (for --resume)."""
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise LadkitError(f"{run_dir} is not a ladkit run (no config.yaml); give the run folder to resume")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        where = f" at byte {error.start}" if isinstance(error, UnicodeDecodeError) else ""
        raise LadkitError(
            f"{path} is not readable YAML ({type(error).__name__}{where}); restore it (a run writes it at start) "
            "or start a new run"
        ) from None
    if not isinstance(data, dict):
        raise LadkitError(f"{path} holds a {type(data).__name__}, not a config mapping; restore it or start a new run")
    if isinstance(data.get("task"), dict):  # a run from before the task sections
        from ladkit.tasks import upgrade_task_section

        data["task"] = upgrade_task_section(data["task"])
    if isinstance(data.get("lad"), dict):  # from before lad.centered: the paper's f
        data["lad"].setdefault("centered", False)
    return data
