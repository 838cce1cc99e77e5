"""`ladkit train`: RL training of a Hugging Face causal LM (LoRA by default) with LAD, GRPO or FlowRL."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def train(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Preset name (default, gsm8k-qwen0.5b, paper-math) or a YAML file."
    ),
    set_: list[str] = typer.Option([], "--set", help="Override any config key: --set lad.inv_eta=4 (repeatable)."),
    model: str | None = typer.Option(None, help="Hub id, local path, or 'builtin'."),
    lora: bool | None = typer.Option(None, "--lora/--no-lora", help="Train a LoRA adapter (default) or all weights."),
    lora_rank: int | None = typer.Option(None, help="LoRA rank."),
    lora_alpha: float | None = typer.Option(None, help="LoRA alpha."),
    lora_dropout: float | None = typer.Option(None, help="LoRA dropout."),
    target_modules: str | None = typer.Option(None, help="'all-linear' or comma-separated module names."),
    objective: str | None = typer.Option(None, help="lad, grpo or flowrl."),
    divergence: str | None = typer.Option(None, help="LAD divergence: kl, rkl, jf, tv, hd, js."),
    eta: float | None = typer.Option(None, help="LAD temperature eta."),
    inv_eta: float | None = typer.Option(None, help="LAD 1/eta (the paper's knob)."),
    task: str | None = typer.Option(None, help="Task: countdown, arithmetic, dataset, ..."),
    dataset: str | None = typer.Option(None, help="Hugging Face data set id or local JSONL/parquet (task 'dataset')."),
    backend: str | None = typer.Option(None, help="Rollout backend: hf or vllm."),
    steps: int | None = typer.Option(None, help="RL steps."),
    group_size: int | None = typer.Option(None, "--group-size", "-g", help="Completions per prompt (G)."),
    prompts_per_step: int | None = typer.Option(None, help="Prompts per step (B, global)."),
    lr: float | None = typer.Option(None, help="Peak learning rate."),
    seed: int | None = typer.Option(None, help="Seed."),
    run_dir: Path | None = typer.Option(None, help="Run folder (default: runs/<objective>-<task>-s<seed>-<time>)."),
    resume: Path | None = typer.Option(None, help="Continue the run in this folder from its last checkpoint."),
    tensorboard: bool | None = typer.Option(None, "--tensorboard/--no-tensorboard", help="Also log to TensorBoard."),
    live: bool = typer.Option(True, help="Show the live terminal view."),
) -> None:
    """Train with rollouts -> rewards -> advantages -> objective; writes a run folder."""
    from ladkit.errors import LadkitError
    from ladkit.training.resolve import resolve

    if resume is not None:
        return _resume(resume, live)
    flags = {
        "model.name_or_path": model, "model.lora": lora, "model.lora_rank": lora_rank, "model.lora_alpha": lora_alpha,
        "model.lora_dropout": lora_dropout, "model.target_modules": _modules(target_modules), "objective": objective,
        "lad.divergence": divergence, "lad.eta": eta, "lad.inv_eta": None if eta is not None else inv_eta,
        "task.name": task and task.replace("-", "_"), "task.dataset": dataset, "rollout.backend": backend,
        "steps": steps,
        "group_size": group_size, "prompts_per_step": prompts_per_step, "optim.lr": lr, "seed": seed,
        "tensorboard": tensorboard,
    }  # fmt: skip
    if dataset is not None and task is None:
        flags["task.name"] = "dataset"
    resolved = resolve(config, set_, flags)
    if run_dir is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LadkitError("several processes are training: give --run-dir so that every rank writes to the same run")
    _run(resolved, run_dir or _default_run_dir(resolved), resume=False, live=live)


def _modules(value: str | None):
    if value is None or value == "all-linear":
        return value
    return [m.strip() for m in value.split(",") if m.strip()]


def _default_run_dir(config) -> Path:
    from ladkit.runs import run_name, unique_path

    what = config.objective if config.objective != "lad" else f"lad_{config.lad.divergence}"
    task = config.task.preset or config.task.name
    return unique_path(Path("runs") / run_name(what, task, f"s{config.seed}"))


def _resume(run_dir: Path, live: bool) -> None:
    from ladkit.config import build
    from ladkit.training.config import TrainConfig
    from ladkit.training.setup import read_config

    _run(build(TrainConfig, read_config(run_dir)), run_dir, resume=True, live=live)


def _run(config, run_dir: Path, resume: bool, live: bool) -> None:
    from ladkit.training.loop import train as run_training

    callbacks = []
    view = None
    if live and int(os.environ.get("RANK", "0")) == 0:
        from ladkit.training.live import TrainLiveView

        view = TrainLiveView(config.steps, title=f"{config.objective} on {config.task.name}: {run_dir}")
        callbacks.append(view)
    if view is not None:
        with view:
            summary = run_training(config, run_dir, resume=resume, callbacks=callbacks)
    else:
        summary = run_training(config, run_dir, resume=resume, callbacks=callbacks)
    first, last = summary["eval_first"], summary["eval_final"]
    typer.echo(
        f"reward (mean of the first / last 10 steps' rollouts): {summary['reward_first10_mean']:.3f} -> "
        f"{summary['reward_last10_mean']:.3f}"
    )
    if last:
        before = f"{first['eval/pass@1']:.3f} -> " if "eval/pass@1" in first else ""
        typer.echo(f"held-out pass@1: {before}{last['eval/pass@1']:.3f}")
    typer.echo(f"run folder: {run_dir}")
