"""`ladkit bandit`: the paper's controlled experiment (docs/design.md, section 7) on a K-armed bandit.

Config like `ladkit train`: BanditConfig defaults <- a preset (ladkit/presets/bandit/) or YAML file (`--config`)
<- `--set a.b=c` <- the flags below that are given.
"""

from __future__ import annotations

from pathlib import Path

import typer


def bandit(
    config: str | None = typer.Option(None, "--config", "-c", help="Bandit preset (paper, refresh) or a YAML file."),
    set_: list[str] = typer.Option([], "--set", help="Any config key, e.g. --set lad.inv_eta=4 (repeatable)."),
    objectives: str | None = typer.Option(None, help="Objectives (lad,grpo); 'lad:kl' picks a divergence."),
    divergence: str | None = typer.Option(None, help="Divergence for LAD entries: kl, rkl, jf, tv, hd, js (js)."),
    eta: float | None = typer.Option(None, help="LAD temperature eta (or give --inv-eta)."),
    inv_eta: float | None = typer.Option(None, help="1/eta (2); the target is softmax(inv_eta * A)."),
    arms: int | None = typer.Option(None, "--arms", "-k", help="Number of arms K (50, or the table's length)."),
    shape: str | None = typer.Option(None, help="Advantage shape: trimodal, bimodal, unimodal, linear, table."),
    table: str | None = typer.Option(None, help="With --shape table: '0.1,0.5,...' or a .json/.txt/.csv file."),
    mode: str | None = typer.Option(None, help="'exact' expectation over arms, or 'sampled' groups of G."),
    group_size: int | None = typer.Option(None, "--group-size", "-g", help="G, arms sampled per step (sampled)."),
    estimator: str | None = typer.Option(None, help="Advantage estimator on sampled groups: none, grpo, rloo, ..."),
    refresh_every: int | None = typer.Option(None, help="Refresh pi_old every N steps (default: fixed)."),
    steps: int | None = typer.Option(None, help="Adam steps per objective (4000)."),
    lr: float | None = typer.Option(None, help="Adam learning rate (5e-3)."),
    seed: int | None = typer.Option(None, help="Seed for sampled mode."),
    grpo_clip: float | None = typer.Option(None, help="GRPO clip epsilon (off by default in the bandit)."),
    run_dir: Path | None = typer.Option(None, help="Run folder (default: runs/bandit-...)."),
    live: bool = typer.Option(True, help="Show the live terminal view."),
) -> None:
    """Train a softmax policy over K arms with each objective; LAD keeps every mode, GRPO collapses."""
    import torch

    from ladkit.bandit.config import resolve_bandit
    from ladkit.bandit.experiment import format_summary
    from ladkit.bandit.session import run_and_record

    torch.set_num_threads(1)  # 50 logits: threads only add overhead
    flags = {
        "objectives": objectives and [s.strip() for s in objectives.split(",") if s.strip()],
        "divergence": divergence,
        "eta": eta,
        "inv_eta": inv_eta,
        "num_arms": arms,
        "shape": shape,
        "table": table,
        "mode": mode,
        "group_size": group_size,
        "estimator": estimator,
        "refresh_every": refresh_every,
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "grpo_clip": grpo_clip,
    }
    given = {name: value for name, value in flags.items() if value is not None}
    result, path = run_and_record(resolve_bandit(config, set_, given), run_dir, live=live)
    typer.echo(format_summary(result))
    typer.echo(f"run folder: {path}  (figure: {path / 'bandit.html'})")
