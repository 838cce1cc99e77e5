"""Benchmark: how LAD's step time grows with G, B and completion length (benchmarks issue, point 5).

One factor at a time around a base point (G = 8, B = 8, max_new_tokens = 16), full train_step() on the
built-in model with LAD (default divergence js): group size G in 2, 4, 8, 16; prompts per step B in 4, 8, 16;
max_new_tokens in 8, 16, 32. One model is built and reused. The points are interleaved so that the load of
a shared machine falls on all of them alike: each round runs one step of every point (rotated order, round r
uses step index r for every point), the first round is a warm-up, and each point reports the median of
`--steps` rounds. The slope of log(step time) on log(factor) is the scaling exponent (1 = linear).
The built-in model ends its countdown answers at about 9 tokens, so a cap of 16 or 32 would change nothing:
for the max_new_tokens sweep only, the backend's stop ids are swapped for an id outside the vocabulary, so
every completion runs to the cap (the rewards of those points are meaningless; their timing is the point).
The mean completion length is recorded for every point.
Writes benchmarks/results/scaling.json and scaling.html (log-log plotly figure) and prints a JSON line.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

import torch
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

BASE = {"group_size": 8, "prompts_per_step": 8, "max_new_tokens": 16}
SWEEP = {"group_size": (2, 4, 8, 16), "prompts_per_step": (4, 8, 16), "max_new_tokens": (8, 16, 32)}


def train_config(seed: int):
    from ladkit.config import build, to_dict
    from ladkit.training.config import TrainConfig
    from ladkit.training.resolve import resolve

    data = to_dict(resolve(None, [], {}))  # the default preset: built-in model, LoRA, countdown, LAD-js
    data.update(samples_every=0, tracked_prompts=0, eval_every=0, seed=seed)
    data["task"] = {**data["task"], "train_size": 256, "eval_size": 8}
    return build(TrainConfig, data)


def apply(config, point: dict) -> None:
    config.group_size, config.prompts_per_step = point["group_size"], point["prompts_per_step"]
    config.rollout.max_new_tokens = point["max_new_tokens"]


def sweep(ctx, steps: int) -> dict[str, list[dict]]:
    """Every point of SWEEP, one step each per round, rounds interleaved; the first round is a warm-up."""
    from ladkit.training.loop import train_step

    stops = {"eos": ctx.backend.stop_ids, "none": {ctx.model.config.vocab_size}}  # an id never sampled: no stop
    points = [(factor, {**BASE, factor: value}) for factor, values in SWEEP.items() for value in values]
    rows = [[] for _ in points]
    for round_index in range(steps + 1):
        shift = round_index % len(points)
        for i in [*range(shift, len(points)), *range(shift)]:
            factor, point = points[i]
            apply(ctx.config, point)
            ctx.backend.stop_ids = stops["none" if factor == "max_new_tokens" else "eos"]
            row = train_step(ctx, round_index)
            if round_index:
                rows[i].append(row)
    results = {factor: [] for factor in SWEEP}
    for (factor, point), timed in zip(points, rows, strict=True):
        results[factor].append(
            {
                **point,
                "step_s_median": round(statistics.median(r["perf/step_time_s"] for r in timed), 4),
                "step_s_all": [round(r["perf/step_time_s"], 4) for r in timed],
                "rollout_s_median": round(statistics.median(r["perf/rollout_time_s"] for r in timed), 4),
                "completion_length_mean": round(statistics.mean(r["completion/length_mean"] for r in timed), 2),
            }
        )
    return results


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y on log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = statistics.mean(lx), statistics.mean(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


def figure(results: dict, slopes: dict, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    titles = [f"{factor} (slope {slopes[factor]['step']:.2f})" for factor in SWEEP]
    fig = make_subplots(rows=1, cols=len(SWEEP), subplot_titles=titles)
    for col, factor in enumerate(SWEEP, start=1):
        points = results[factor]
        xs = [p[factor] for p in points]
        for key, name in (("step_s_median", "step"), ("rollout_s_median", "rollout")):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[p[key] for p in points],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(type="log", title_text=factor, tickvals=xs, row=1, col=col)
        fig.update_yaxes(type="log", title_text="seconds" if col == 1 else None, row=1, col=col)
    fig.update_layout(title="LAD-js step time on the built-in model (log-log; other factors at G=8, B=8, T=16)")
    fig.write_html(path, include_plotlyjs="cdn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds, one step of every point each")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from ladkit.training.setup import build

    ctx = build(train_config(args.seed), Path(tempfile.mkdtemp(prefix="scaling_")))
    results = sweep(ctx, args.steps)
    slopes = {
        factor: {
            "step": round(slope([p[factor] for p in points], [p["step_s_median"] for p in points]), 3),
            "rollout": round(slope([p[factor] for p in points], [p["rollout_s_median"] for p in points]), 3),
        }
        for factor, points in results.items()
    }
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure(results, slopes, out / "scaling.html")
    record = {
        "benchmark": "scaling",
        "objective": f"lad-{ctx.config.lad.divergence}",
        "base": BASE,
        "length_sweep_without_eos": True,
        "slopes": slopes,
        "points": results,
        "args": vars(args),
        **environment("torch"),
    }
    write_record(record, out / "scaling.json")


if __name__ == "__main__":
    main()
