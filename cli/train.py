"""`ladkit train`: RL training of a Hugging Face causal LM (LoRA by default) with LAD, GRPO or FlowRL."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

# Flags that `ladkit train` no longer has (its --help stays short): the config key each one set, for a one-line
# error that says what to write instead (main.py checks argv before Typer's generic "No such option").
MOVED_FLAGS = {
    "--lr": "optim.lr",
    "--eta": "lad.eta",
    "--inv-eta": "lad.inv_eta",
    "--lora-rank": "model.lora_rank",
    "--lora-alpha": "model.lora_alpha",
    "--lora-dropout": "model.lora_dropout",
    "--target-modules": "model.target_modules",
}


def moved_flag_error(args: list[str]) -> str | None:
    """The one-line error for the first moved flag among `ladkit train`'s arguments (`--lr 1e-4`, `--lr=1e-4`)."""
    for index, arg in enumerate(args):
        flag, _, value = arg.partition("=")
        if flag in MOVED_FLAGS:
            following = args[index + 1] if index + 1 < len(args) else ""
            value = value or (following if following and not following.startswith("--") else "VALUE")
            return f"ladkit train has no {flag} option; use --set {MOVED_FLAGS[flag]}={value}"
    return None


def train(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Preset name (default, gsm8k-qwen0.5b, paper-math) or a YAML file."
    ),
    set_: list[str] = typer.Option(
        [], "--set", help="Any config key, e.g. --set lad.inv_eta=4 --set optim.lr=1e-4 (repeatable)."
    ),
    model: str | None = typer.Option(None, help="Hub id, local path, or 'builtin'."),
    lora: bool | None = typer.Option(None, "--lora/--no-lora", help="Train a LoRA adapter (default) or all weights."),
    objective: str | None = typer.Option(None, help="lad, grpo, flowrl, clip_cov, kl_cov or ent_adv."),
    divergence: str | None = typer.Option(None, help="LAD divergence: kl, rkl, jf, tv, hd, js."),
    task: str | None = typer.Option(None, help="Task: countdown, arithmetic, dataset, ..."),
    dataset: str | None = typer.Option(None, help="Hugging Face data set id or local JSONL/parquet (task 'dataset')."),
    backend: str | None = typer.Option(None, help="Rollout backend: hf or vllm."),
    steps: int | None = typer.Option(None, help="RL steps."),
    group_size: int | None = typer.Option(None, "--group-size", "-g", help="Completions per prompt (G)."),
    prompts_per_step: int | None = typer.Option(None, help="Prompts per step (B, global)."),
    seed: int | None = typer.Option(None, help="Seed."),
    threads: int | None = typer.Option(None, help="torch CPU threads (default: half the usable cores, at least 1)."),
    run_dir: Path | None = typer.Option(None, help="Run folder (default: runs/<objective>-<task>-s<seed>-<time>)."),
    resume: Path | None = typer.Option(None, help="Continue the run in this folder from its last checkpoint."),
    tensorboard: bool | None = typer.Option(None, "--tensorboard/--no-tensorboard", help="Also log to TensorBoard."),
    live: bool = typer.Option(True, help="Show the live terminal view."),
) -> None:
    """Train with rollouts -> rewards -> advantages -> objective; writes a run folder."""
    from ladkit.errors import LadkitError
    from ladkit.training.resolve import resolve

    if resume is not None:
        given = {
            "--config": config, "--set": set_ or None, "--model": model, "--lora/--no-lora": lora,
            "--objective": objective, "--divergence": divergence, "--task": task, "--dataset": dataset,
            "--backend": backend, "--steps": steps, "--group-size": group_size,
            "--prompts-per-step": prompts_per_step, "--seed": seed, "--run-dir": run_dir,
            "--tensorboard/--no-tensorboard": tensorboard,
        }  # fmt: skip
        changed = [flag for flag, value in given.items() if value is not None]
        if changed:
            raise LadkitError(
                f"--resume continues {resume} with its config.yaml, so {changed[0]} cannot change it (only "
                "--threads and --live/--no-live apply); raise steps in that file to train longer, or start a new run"
            )
        return _resume(resume, live, threads)
    flags = {
        "model.name_or_path": model,
        "model.lora": lora,
        "objective": objective,
        "lad.divergence": divergence,
        "task.name": task and task.replace("-", "_"),
        "task.dataset.path": dataset,
        "rollout.backend": backend,
        "steps": steps,
        "group_size": group_size,
        "prompts_per_step": prompts_per_step,
        "seed": seed,
        "tensorboard": tensorboard,
        "threads": threads,
    }
    if dataset is not None and task is None:
        flags["task.name"] = "dataset"
    notes: list[str] = []  # what resolve decided on its own (the real-lm preset), said once
    resolved = resolve(config, set_, flags, notes)
    for note in notes if int(os.environ.get("RANK", "0")) == 0 else ():
        typer.echo(note)
    if run_dir is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LadkitError("several processes are training: give --run-dir so that every rank writes to the same run")
    _run(resolved, run_dir or _default_run_dir(resolved), resume=False, live=live)


def _default_run_dir(config) -> Path:
    from ladkit.runs import run_name, unique_path

    what = config.objective if config.objective != "lad" else f"lad_{config.lad.divergence}"
    task = config.task.dataset.preset or config.task.name
    return unique_path(Path("runs") / run_name(what, task, f"s{config.seed}"))


def _resume(run_dir: Path, live: bool, threads: int | None) -> None:
    """Continue `run_dir` with its own config; --threads (how this process runs, not what it trains) applies."""
    from ladkit.config import build
    from ladkit.training.config import TrainConfig
    from ladkit.training.setup import read_config

    data = read_config(run_dir)
    if threads is not None:
        data["threads"] = threads
    _run(build(TrainConfig, data), run_dir, resume=True, live=live)


def _run(config, run_dir: Path, resume: bool, live: bool) -> None:
    from ladkit.training.loop import train as run_training

    callbacks = []
    view = None
    if live and int(os.environ.get("RANK", "0")) == 0:
        from ladkit.training.live import TrainLiveView

        view = TrainLiveView(config.steps, title=f"{config.objective} on {config.task.name}: {run_dir}")
        callbacks.append(view)
    from ladkit.training.interrupt import TrainingInterrupted

    try:
        with view if view is not None else contextlib.nullcontext():
            summary = run_training(config, run_dir, resume=resume, callbacks=callbacks)
    except TrainingInterrupted as stop:
        if int(os.environ.get("RANK", "0")) == 0:
            typer.echo(_interrupted_line(str(stop), run_dir), err=True)
        raise typer.Exit(stop.exit_code) from None
    if summary is not None:  # None on every process but the main one, which prints the summary
        _print_summary(summary, run_dir)


def _interrupted_line(signal_name: str, run_dir: Path) -> str:
    from ladkit.training.checkpoint import latest

    if latest(run_dir) is None:
        return (
            f"training stopped by {signal_name} before its first checkpoint; ladkit train --resume {run_dir} "
            "starts it again from step 0"
        )
    return f"training stopped by {signal_name}; resume it with: ladkit train --resume {run_dir}"


def _print_summary(summary: dict, run_dir: Path) -> None:
    first, last = summary["eval_first"], summary["eval_final"]
    typer.echo(
        f"reward (mean of the first / last 10 steps' rollouts): {_number(summary['reward_first10_mean'])} -> "
        f"{_number(summary['reward_last10_mean'])}"
    )
    if last:
        before = f"{first['eval/pass@1']:.3f} -> " if "eval/pass@1" in first else ""
        typer.echo(f"held-out pass@1: {before}{last['eval/pass@1']:.3f}")
    typer.echo(f"run folder: {run_dir}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
