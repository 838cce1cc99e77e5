"""`ladkit eval`: pass@k, avg@k, maj@k and diversity of a run's checkpoint (or a peft adapter) on held-out prompts."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    run_or_adapter: Path = typer.Argument(..., help="A run folder, or a peft adapter folder (then --model, --task)."),
    k: str = typer.Option("1,4,16", "--k", help="Comma-separated k values for pass@k, avg@k and maj@k."),
    backend: str = typer.Option("hf", help="Rollout backend: hf or vllm."),
    samples: int | None = typer.Option(None, help="Completions per prompt (default: the largest k)."),
    prompts: int | None = typer.Option(None, help="Held-out prompts to use (default: all)."),
    temperature: float | None = typer.Option(None, help="Sampling temperature (default: the run's)."),
    task: str | None = typer.Option(None, help="Task name (adapter folders; default countdown)."),
    model: str | None = typer.Option(None, help="Base model of an adapter folder (default: builtin)."),
    checkpoint: int | None = typer.Option(None, help="Checkpoint step of a run (default: the newest)."),
    out: Path | None = typer.Option(None, help="Folder for eval.jsonl (default: the run folder; adapters: new)."),
    seed: int = typer.Option(0, help="Sampling seed."),
    threads: int | None = typer.Option(None, help="torch CPU threads (default: half the usable cores, at least 1)."),
) -> None:
    """Sample n = max(k) completions per held-out prompt, score them, append a row to eval.jsonl."""
    from rich.console import Console

    from ladkit.errors import LadkitError
    from ladkit.evaluation import evaluate_run, table
    from ladkit.models.device import set_threads

    _check_counts(threads=threads, samples=samples, prompts=prompts, checkpoint=checkpoint, temperature=temperature)
    if not _has_gpu():
        set_threads(threads)  # on purpose: torch's default takes every core, oversubscribing a shared machine

    try:
        ks = [int(part) for part in k.split(",") if part.strip()]
    except ValueError:
        raise LadkitError(f"--k takes comma-separated integers like 1,4,16, got {k!r}") from None
    row = evaluate_run(
        run_or_adapter,
        ks,
        backend=backend,
        samples=samples,
        prompts=prompts,
        temperature=temperature,
        task=task,
        model=model,
        checkpoint=checkpoint,
        out=out,
        seed=seed,
    )
    Console().print(table(row))


def _check_counts(threads, samples, prompts, checkpoint, temperature) -> None:
    """Numbers that would silently change what is evaluated (`--prompts -3` slicing off the last 3) are refused
    before anything loads."""
    import math

    from ladkit.errors import LadkitError

    for name, value, least in (("threads", threads, 1), ("samples", samples, 1), ("prompts", prompts, 1)):
        if value is not None and value < least:
            raise LadkitError(f"--{name} must be >= {least}, got {value}; leave it out for the default")
    if checkpoint is not None and checkpoint < 0:
        raise LadkitError(f"--checkpoint is a step (>= 0), got {checkpoint}; leave it out for the newest")
    if temperature is not None and not (temperature > 0 and math.isfinite(temperature)):
        raise LadkitError(f"--temperature must be a finite number > 0, got {temperature}")


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
