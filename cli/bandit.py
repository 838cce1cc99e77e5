"""`ladkit bandit`: the paper's controlled experiment (DESIGN.md 1.4) on a K-armed bandit."""

from __future__ import annotations

from pathlib import Path

import typer


def bandit(
    objectives: str = typer.Option("lad,grpo", help="Comma-separated objectives; 'lad:kl' picks a divergence."),
    divergence: str = typer.Option("js", help="Divergence for LAD entries: kl, rkl, jf, tv, hd, js."),
    eta: float | None = typer.Option(None, help="LAD temperature eta (or give --inv-eta)."),
    inv_eta: float | None = typer.Option(2.0, help="1/eta; the target is softmax(inv_eta * A)."),
    arms: int | None = typer.Option(None, "--arms", "-k", help="Number of arms K (default 50, or the table's length)."),
    shape: str = typer.Option("trimodal", help="Advantage shape: trimodal, bimodal, unimodal, linear, table."),
    table: str | None = typer.Option(None, help="With --shape table: '0.1,0.5,...' or a .json/.txt/.csv file."),
    mode: str = typer.Option("exact", help="'exact' expectation over arms, or 'sampled' groups of G."),
    group_size: int = typer.Option(8, "--group-size", "-g", help="G, arms sampled per step (sampled mode)."),
    estimator: str = typer.Option("none", help="Advantage estimator on sampled groups: none, grpo, dr_grpo, rloo."),
    refresh_every: int | None = typer.Option(None, help="Refresh pi_old every N steps (default: fixed)."),
    steps: int = typer.Option(4000, help="Adam steps per objective."),
    lr: float = typer.Option(5e-3, help="Adam learning rate."),
    seed: int = typer.Option(0, help="Seed for sampled mode."),
    grpo_clip: float | None = typer.Option(None, help="GRPO clip epsilon (off by default in the bandit)."),
    run_dir: Path | None = typer.Option(None, help="Run folder (default: runs/bandit-...)."),
    live: bool = typer.Option(True, help="Show the live terminal view."),
) -> None:
    """Train a softmax policy over K arms with each objective; LAD keeps every mode, GRPO collapses."""
    import torch

    from ladkit.bandit.config import BanditConfig, resolve_num_arms
    from ladkit.bandit.experiment import format_summary
    from ladkit.bandit.session import run_and_record

    torch.set_num_threads(1)  # 50 logits: threads only add overhead
    config = BanditConfig(
        num_arms=resolve_num_arms(shape, table, arms),
        shape=shape,
        table=table,
        objectives=[s.strip() for s in objectives.split(",") if s.strip()],
        divergence=divergence,
        eta=eta,
        inv_eta=inv_eta,
        mode=mode,
        group_size=group_size,
        estimator=estimator,
        refresh_every=refresh_every,
        steps=steps,
        lr=lr,
        seed=seed,
        grpo_clip=grpo_clip,
    )
    result, path = run_and_record(config, run_dir, live=live)
    typer.echo(format_summary(result))
    typer.echo(f"run folder: {path}  (figure: {path / 'bandit.html'})")
