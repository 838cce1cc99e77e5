"""Benchmark: TRL + LAD (ladkit.integrations.trl.LadkitGRPOTrainer) against ladkit's own trainer running LAD, at equal
geometry (issue 15 point 4). What it costs to run LAD inside TRL instead of ladkit's trainer, per step, same run.

The work is trl_compare.py's, with the objective switched from GRPO to LAD (js, 1/eta = 4, sequence level, centred:
ladkit's defaults) on both sides: the built-in ~1M-parameter character Llama with LoRA r16, countdown, 16 prompts x
G=8 completions of at most 16 tokens at temperature 1 with HF generate, 2 mini-batches with one AdamW step each.
TRL's side is LadkitGRPOTrainer (TRL's generation, rewards, advantages, pi_old and optimiser; ladkit's loss); ladkit's
side is train_step(). trl_compare.py's children, timing and summary are reused as they are (see its docstring for
what a step holds on each side); this script only swaps the objective and the TRL trainer class, and alternates
fresh processes per side (ABAB...).

Writes benchmarks/results/trl_lad_compare.json and prints the same record as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import trl_compare as base  # benchmarks/trl_compare.py (the script's own folder is on sys.path)
from bench_env import environment, write_record

SIDES = ("ladkit", "trl")
GRPO_CONFIG = base.ladkit_config  # kept before run_side rebinds the module's name


def lad_config(args):
    """trl_compare's TrainConfig with the objective LAD (its lad section is ladkit's default: js, 1/eta = 4)."""
    return dataclasses.replace(GRPO_CONFIG(args), objective="lad")


def import_ladkit_trl():
    """LadkitGRPOTrainer in place of GRPOTrainer: it defaults to objective lad with LADConfig(), as lad_config."""
    from trl import GRPOConfig

    from ladkit.integrations.trl import LadkitGRPOTrainer

    return LadkitGRPOTrainer, GRPOConfig


def run_side(side: str, args) -> dict:
    base.ladkit_config = lad_config  # both children read their settings through this name
    base.import_trl = import_ladkit_trl
    return {"ladkit": base.run_ladkit, "trl": base.run_trl}[side](args)


def run_child(side: str, args) -> dict:
    argv = [sys.executable, __file__, "--side", side, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    argv += ["--prompts", str(args.prompts), "--group-size", str(args.group_size)]
    argv += ["--max-new-tokens", str(args.max_new_tokens), "--seed", str(args.seed)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="child processes per side, alternating ABAB...")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (generation batches) per child")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trl_lad_compare.json"))
    args = parser.parse_args()
    args.profile = False  # read by trl_compare's children
    torch.set_num_threads(1)
    if args.side:
        print(json.dumps(run_side(args.side, args)))
        return
    runs = {side: [] for side in SIDES}
    for _ in range(args.repeats):
        for side in SIDES:
            runs[side].append(run_child(side, args))
    summary = base.summarise(runs, args.bootstrap)
    for key in ("target_1.3x_met", "target_1.3x_met_at_ci_low"):  # trl_compare's GRPO target; none here
        summary.pop(key, None)
    record = {
        "benchmark": "trl_lad_compare",
        **summary,
        "settings": {
            "model": "builtin char Llama (~1M params) + LoRA r16 a32 all-linear, fp32",
            "task": "countdown, compact prompts",
            "objective": "lad: js, 1/eta = 4, sequence level, centred (both sides)",
            "trl_trainer": "ladkit.integrations.trl.LadkitGRPOTrainer",
            "prompts": args.prompts,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "optimiser_steps_per_step": 2,
            "threads": 1,
        },
        "raw": {side: records for side, records in runs.items()},
        "args": vars(args),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }
    versions = environment("torch", "transformers", "peft", "accelerate", "trl")
    record.update(versions, trl_version=versions.pop("trl"))  # "trl" is the TRL side's summary above
    write_record(record, args.out)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
