"""The comparison as figures: curves with CI bands per group, pass@k against k, held-out accuracy against
diversity (pass@1 against dist-4, one point per group), and the advantage-induced vs policy-induced
distribution of tracked prompts with a slider over steps; all in one self-contained HTML file (plotly.js
inlined once, so it opens offline).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ladkit.compare.analysis import PASS_AT, Comparison, series
from ladkit.compare.loading import Run
from ladkit.compare.stats import curve_band, mean_estimate
from ladkit.compare.table import fmt, legend
from ladkit.errors import LadkitError
from ladkit.text import prompt_title

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
CURVES = (
    ("reward/mean", "reward"),
    ("eval/pass@1", "accuracy (eval/pass@1)"),
    ("policy/entropy", "entropy (nats)"),
    ("diversity/distinct_correct", "distinct correct answers"),
    ("diversity/dist4", "distinct 4-grams"),
)
MAX_TRACKED_PROMPTS = 4  # tracked prompts pictured per report (each group's, side by side); the trainer's default


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def group_curve(runs: list[Run], metric: str):
    """(steps, mean, low, high) of `metric` over the steps any run of the group logged (gaps are NaN)."""
    table = [series(run, metric) for run in runs]
    steps = sorted(set().union(*table))
    curves = np.array([[values.get(s, np.nan) for s in steps] for values in table], dtype=float)  # [S, T]
    return (steps, *curve_band(curves)) if steps else (steps, [], [], [])


def _add_band(fig: go.Figure, steps, mean, low, high, name: str, colour: str, row: int, col: int, legend: bool):
    """A mean line over a filled CI band (the band is drawn as low, then high filled to it)."""
    common = {"legendgroup": name, "row": row, "col": col, "hoverinfo": "skip", "showlegend": False}
    fig.add_scatter(x=steps, y=list(low), mode="lines", line={"width": 0}, **common)
    fig.add_scatter(
        x=steps, y=list(high), mode="lines", line={"width": 0}, fill="tonexty", fillcolor=_rgba(colour, 0.2), **common
    )
    fig.add_scatter(
        x=steps,
        y=list(mean),
        mode="lines+markers",
        name=name,
        line={"color": colour},
        marker={"size": 4},
        legendgroup=name,
        showlegend=legend,
        row=row,
        col=col,
    )


def value_range(values: list[float], pad: float = 0.05) -> list[float] | None:
    """The y range that shows every run's own values with a margin. A t band over 2-3 seeds can be many times
    wider than the runs' spread (t = 12.7 for 2 seeds); left to autorange it would flatten the curves."""
    if not values:
        return None
    low, high = min(values), max(values)
    margin = pad * (high - low) or pad * max(abs(high), 1e-12)
    return [low - margin, high + margin]


def curves_figure(comparison: Comparison) -> go.Figure:
    """One panel per curve metric (those any run logged); mean over seeds with a 95% t band over seeds."""
    runs = [run for group in comparison.groups.values() for run in group]
    metrics = [(key, title) for key, title in CURVES if any(series(run, key) for run in runs)]
    metrics = metrics or [(key, key) for key in comparison.metrics if any(series(run, key) for run in runs)]
    cols = 2 if len(metrics) > 1 else 1
    rows = max(1, -(-len(metrics) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[title for _, title in metrics] or ["no curves"])
    for index, (metric, _) in enumerate(metrics):
        row, col = index // cols + 1, index % cols + 1
        for number, (group, members) in enumerate(comparison.groups.items()):
            steps, mean, low, high = group_curve(members, metric)
            _add_band(fig, steps, mean, low, high, group, COLOURS[number % len(COLOURS)], row, col, index == 0)
        fig.update_yaxes(range=value_range([v for run in runs for v in series(run, metric).values()]), row=row, col=col)
    fig.update_layout(
        title="Training curves: mean over seeds, 95% t band over seeds (clipped to the runs' own values)",
        height=320 * rows,
        template="plotly_white",
    )
    fig.update_xaxes(title_text="step")
    return fig


def pass_at_k(run: Run) -> dict[int, float]:
    """k -> pass@k of a run's latest evaluation: eval.jsonl when written, else the last eval row of metrics."""
    for rows in (run.eval_rows, run.rows):
        for row in sorted(rows, key=lambda r: r["step"], reverse=True):
            found = {int(m[1]): float(v) for key, v in row.items() if (m := PASS_AT.match(key)) and v is not None}
            if found:
                return found
    return {}


def pass_at_k_figure(comparison: Comparison) -> go.Figure:
    """pass@k against k per group: mean over seeds with a 95% t interval over seeds."""
    fig = go.Figure()
    for number, (group, runs) in enumerate(comparison.groups.items()):
        tables = [pass_at_k(run) for run in runs]
        ks = sorted(set().union(*tables))
        estimates = [mean_estimate([[t.get(k, np.nan)] for t in tables]) for k in ks]
        mean = [e.mean for e in estimates]
        fig.add_scatter(
            x=ks,
            y=mean,
            mode="lines+markers",
            name=group,
            line={"color": COLOURS[number % 8]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [e.high - e.mean for e in estimates],
                "arrayminus": [e.mean - e.low for e in estimates],
            },
        )
    fig.update_layout(
        title="pass@k against k (latest evaluation)",
        template="plotly_white",
        height=380,
        xaxis={"title": "k", "type": "log", "dtick": np.log10(2)},
        yaxis={"title": "pass@k", "range": [-0.02, 1.02]},  # error bars over 2-3 seeds may reach beyond [0, 1]
    )
    return fig


def tracked_figure(run: Run, example_id: str | None = None) -> go.Figure | None:
    """For one tracked prompt of `run`: advantage-induced vs policy-induced distribution over its G
    completions, one frame per step, with a slider and play button. None when the run tracked nothing."""
    rows = [r for r in run.tracked if example_id is None or r.get("example_id") == example_id]
    if not rows:
        return None
    example_id = rows[0].get("example_id")
    rows = sorted((r for r in rows if r.get("example_id") == example_id), key=lambda r: r["step"])

    def bars(row: dict) -> list[go.Bar]:
        labels = [f"#{g} r={reward:g}" for g, reward in enumerate(row.get("rewards", []))]
        return [
            go.Bar(
                x=labels,
                y=row.get("advantage_dist", []),
                name="advantage-induced softmax(A/eta)",
                marker_color="#222222",
                opacity=0.55,
            ),
            go.Bar(x=labels, y=row.get("policy_dist", []), name="policy-induced", marker_color=COLOURS[0]),
        ]

    frames = [go.Frame(data=bars(r), name=str(r["step"]), layout={"title": _tracked_title(run, r)}) for r in rows]
    steps = [
        {
            "args": [[f.name], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
            "label": f.name,
            "method": "animate",
        }
        for f in frames
    ]
    fig = go.Figure(data=bars(rows[0]), frames=frames)
    fig.update_layout(
        title=_tracked_title(run, rows[0]),
        barmode="group",
        template="plotly_white",
        height=460,
        yaxis={"title": "probability over the G completions", "range": [0, 1]},
        xaxis={"title": "completion"},
        sliders=[{"active": 0, "steps": steps, "currentvalue": {"prefix": "step "}, "pad": {"t": 50}}],
        updatemenus=[
            {
                "type": "buttons",
                "showactive": False,
                "x": 0,
                "y": -0.25,
                "buttons": [
                    {"label": "play", "method": "animate", "args": [None, {"frame": {"duration": 300, "redraw": True}}]}
                ],
            }
        ],
    )
    return fig


def _tracked_title(run: Run, row: dict) -> str:
    target = np.asarray(row.get("advantage_dist", []), dtype=float)
    policy = np.asarray(row.get("policy_dist", []), dtype=float)
    tv = 0.5 * float(np.abs(target - policy).sum()) if target.shape == policy.shape else float("nan")
    prompt = html.escape(prompt_title(row.get("prompt", "")))  # the user's question, not the chat template
    return f"{run.name} · {row.get('example_id')} · step {row['step']} · TV {tv:.3f}<br><sub>{prompt}</sub>"


def summary_html(comparison: Comparison) -> str:
    """The table and notes as plain HTML, so the report answers the question without hovering."""
    head = ["metric", "group", "seeds", "final (95% CI)", "best (95% CI)", f"Δ vs {comparison.baseline}", "verdict"]
    body = []
    for r in comparison.results:
        verdict = "baseline" if r.group == comparison.baseline else r.verdict or "n/a"
        cells = [
            r.metric,
            r.group,
            len(comparison.groups[r.group]),
            fmt(r.final),
            fmt(r.best),
            fmt(r.delta, True),
            verdict,
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in comparison.notes) or "<li>none</li>"
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    table = f"<table class='summary'><tr>{header}</tr>{''.join(body)}</table>"
    return f"{table}<p>{html.escape(legend(comparison))}</p><h3>Notes</h3><ul>{notes}</ul>"


def tracked_prompts(comparison: Comparison, limit: int = MAX_TRACKED_PROMPTS) -> list[tuple[str, Run]]:
    """(example_id, run) pairs for the report: for each of the first `limit` prompts any run tracked, the first
    run of each group that tracked it, so one prompt's pictures for every group sit side by side."""
    runs = [run for members in comparison.groups.values() for run in members]
    # every run tracks its prompts once a step: keep the first sighting of each id, in order
    ids = list(dict.fromkeys(i for run in runs for r in run.tracked if (i := r.get("example_id")) is not None))
    pairs = []
    for example_id in ids[:limit]:
        for runs in comparison.groups.values():
            run = next((run for run in runs if any(r.get("example_id") == example_id for r in run.tracked)), None)
            if run is not None:
                pairs.append((example_id, run))
    return pairs


def latest_eval(run: Run, key: str) -> float | None:
    """`key` (an eval/ metric) at a run's latest evaluation that logged it: eval.jsonl first, then metrics."""
    for rows in (run.eval_rows, run.rows):
        for row in sorted(rows, key=lambda r: r["step"], reverse=True):
            value = row.get(key)
            if isinstance(value, (int, float)) and np.isfinite(value):
                return float(value)
    return None


TRADEOFF = (("eval/dist4", "held-out dist-4 (diversity)"), ("eval/pass@1", "held-out pass@1 (accuracy)"))


def tradeoff_figure(comparison: Comparison) -> go.Figure | None:
    """Accuracy against diversity at the latest held-out evaluation: one point per group at the mean over its
    seeds, with 95% t intervals over seeds on both axes, and each run as a faint dot. Where a knob moves a
    method along a trade-off (LAD's 1/eta: a sweep is one group per value), the points trace it. None when no
    group has both values."""
    (x_key, x_title), (y_key, y_title) = TRADEOFF
    fig, drawn = go.Figure(), False
    for number, (group, runs) in enumerate(comparison.groups.items()):
        points = [(latest_eval(run, x_key), latest_eval(run, y_key)) for run in runs]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        if not points:
            continue
        drawn, colour = True, COLOURS[number % len(COLOURS)]
        x_est, y_est = (mean_estimate([[p[i]] for p in points]) for i in (0, 1))
        fig.add_scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", showlegend=False,
            marker={"color": _rgba(colour, 0.35), "size": 6}, hoverinfo="skip",
        )  # fmt: skip
        fig.add_scatter(
            x=[x_est.mean],
            y=[y_est.mean],
            mode="markers+text",
            name=group,
            text=[group],
            textposition="top center",
            marker={"color": colour, "size": 11},
            error_x=_error_bar(x_est),
            error_y=_error_bar(y_est),
        )
    if not drawn:
        return None
    fig.update_layout(
        title="accuracy against diversity (latest held-out evaluation; mean over seeds, 95% t interval)",
        template="plotly_white",
        height=420,
        xaxis={"title": x_title},
        yaxis={"title": y_title},
    )
    return fig


def _error_bar(estimate) -> dict:
    """A plotly error bar from a mean estimate's interval (none with one seed)."""
    if not estimate.has_interval:
        return {"visible": False}
    return {"type": "data", "symmetric": False, "array": [estimate.high - estimate.mean],
            "arrayminus": [estimate.mean - estimate.low]}  # fmt: skip


def report_figures(comparison: Comparison) -> list[go.Figure]:
    """Curves, pass@k, accuracy against diversity, and each tracked prompt (up to MAX_TRACKED_PROMPTS) for the
    first run of each group."""
    figures = [curves_figure(comparison), pass_at_k_figure(comparison)]
    tradeoff = tradeoff_figure(comparison)
    if tradeoff is not None:
        figures.append(tradeoff)
    for example_id, run in tracked_prompts(comparison):
        figure = tracked_figure(run, example_id)
        if figure is not None:
            figures.append(figure)
    return figures


STYLE = (
    "body{font-family:sans-serif;margin:2em}table.summary{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px}"
)


def check_out_path(path: str | Path) -> Path:
    """The report's path, refused before any work if it names a folder or lies under a file (one-line errors)."""
    path = Path(path)
    if path.is_dir():
        raise LadkitError(f"--out {path} is a folder; give a file path such as {path / 'compare.html'}")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise LadkitError(f"--out {path}: {parent} is a file, not a folder; give a path in a folder")
    if not os.access(parent, os.W_OK):
        raise LadkitError(f"--out {path}: cannot write in {parent}; give a path in a writable folder")
    return path


def write_report(comparison: Comparison, path: str | Path) -> Path:
    """One HTML file: the summary table, the notes and every figure; plotly.js is inlined with the first.
    Missing folders are made; the page is written to a temporary file and renamed, so a failed write leaves
    no half report."""
    path = check_out_path(path)
    parts = [fig.to_html(full_html=False, include_plotlyjs=i == 0) for i, fig in enumerate(report_figures(comparison))]
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ladkit compare</title><style>{STYLE}</style>"
        f"</head><body><h1>ladkit compare</h1>{summary_html(comparison)}{''.join(parts)}</body></html>"
    )
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise LadkitError(f"--out {path}: cannot write the report ({error.strerror or error})") from None
    return path
