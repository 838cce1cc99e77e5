"""The paper's bandit figure: target softmax(A/eta) vs the learned distribution, one panel per objective,
plus TV-to-target and entropy over training. Written as a self-contained HTML file (plotly.js inlined, so it
opens offline)."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ladkit.bandit.config import BanditConfig
from ladkit.bandit.experiment import BanditResult

TARGET_COLOUR = "#222222"
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def bandit_figure(result: BanditResult) -> go.Figure:
    """One row of distribution panels (one per objective) over two curve panels (TV, entropy)."""
    runs = result.runs
    cols = max(len(runs), 2)
    fig = make_subplots(
        rows=2,
        cols=cols,
        specs=[
            [{}] * cols,
            [{"colspan": cols // 2}, *[None] * (cols // 2 - 1), {"colspan": cols - cols // 2}]
            + [None] * (cols - cols // 2 - 1),
        ],
        subplot_titles=[r.label for r in runs] + [""] * (cols - len(runs)) + ["TV to target", "entropy (nats)"],
        vertical_spacing=0.16,
    )
    arms = list(range(result.config.num_arms))
    target = result.target.tolist()
    for i, run in enumerate(runs):
        colour = COLOURS[i % len(COLOURS)]
        fig.add_bar(x=arms, y=run.probs.tolist(), name=f"{run.label} policy", marker_color=colour, row=1, col=i + 1)
        fig.add_scatter(
            x=arms,
            y=target,
            mode="lines",
            name="target softmax(A/eta)",
            line={"color": TARGET_COLOUR, "width": 2},
            showlegend=i == 0,
            legendgroup="target",
            row=1,
            col=i + 1,
        )
        steps = [row["step"] for row in run.history]
        fig.add_scatter(
            x=steps,
            y=[row["bandit/tv_to_target"] for row in run.history],
            name=run.label,
            line={"color": colour},
            legendgroup=run.label,
            showlegend=False,
            row=2,
            col=1,
        )
        fig.add_scatter(
            x=steps,
            y=[row["bandit/entropy"] for row in run.history],
            name=run.label,
            line={"color": colour},
            legendgroup=run.label,
            showlegend=False,
            row=2,
            col=cols // 2 + 1,
        )
    fig.update_layout(
        title=describe(result.config),
        height=620,
        bargap=0.05,
        template="plotly_white",
    )
    fig.update_xaxes(title_text="arm", row=1)
    fig.update_xaxes(title_text="step", row=2)
    fig.update_yaxes(title_text="probability", row=1, col=1)
    return fig


def describe(config: BanditConfig) -> str:
    """The figure title: everything that distinguishes one run from another."""
    pi_old = (
        "pi_old fixed (uniform)" if config.refresh_every is None else f"pi_old refreshed every {config.refresh_every}"
    )
    mode = config.mode if config.mode == "exact" else f"sampled, G = {config.group_size}"
    return (
        f"{config.num_arms}-armed bandit, {config.shape} advantage, 1/eta = {config.inverse_temperature:g},"
        f" {mode}, {pi_old}, {config.steps} steps"
    )


def write_bandit_html(result: BanditResult, path: str | Path) -> Path:
    path = Path(path)
    bandit_figure(result).write_html(path, include_plotlyjs=True, full_html=True)
    return path
