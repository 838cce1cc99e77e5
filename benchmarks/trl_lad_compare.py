"""Benchmark: TRL + LAD (ladkit.integrations.trl.LadkitGRPOTrainer) against ladkit's own trainer running LAD, at equal
geometry (issue 15 point 4). What it costs to run LAD inside TRL instead of ladkit's trainer, per step, same run.

The work is one of trl_compare.py's geometries with the objective switched from GRPO to LAD (ladkit's defaults: js,
1/eta = 4, sequence level, centred) on both sides: by default the built-in ~1M-parameter character Llama with LoRA
r16, countdown, 16 prompts x G=8 completions of at most 16 tokens at temperature 1, 2 mini-batches with one AdamW
step each. TRL's side is LadkitGRPOTrainer (TRL's generation, rewards, advantages, pi_old and optimiser; ladkit's
loss); ladkit's side is train_step(). The harness is trl_compare.py's lockstep (one persistent process per side,
single steps in turn, order rotating per round; see its docstring for what a step holds on each side).

Writes benchmarks/results/trl_lad_compare.json and prints the same record as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import trl_compare as base  # benchmarks/trl_compare.py (the script's own folder is on sys.path)
from bench_env import environment, write_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12, help="timed lockstep rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--mini-batches", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trl_lad_compare.json"))
    args = parser.parse_args()
    os.environ.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    from ladkit.models.loading import resolve_model_path

    geometry = base.Geometry(
        "char", True, args.prompts, args.group_size, args.max_new_tokens, args.mini_batches, objective="lad"
    )
    raw = base.lockstep(geometry, resolve_model_path("builtin"), args.rounds, args.warmup, args.seed)
    record = {
        "benchmark": "trl_lad_compare",
        "method": "lockstep: persistent process per side, one step each in turn, order rotating per round",
        **base.summarise(geometry, raw, args.bootstrap),
        "trl_trainer": "ladkit.integrations.trl.LadkitGRPOTrainer",
        "objective": "lad: ladkit's defaults (js, 1/eta = 4, sequence level, centred), both sides",
        "rounds": args.rounds,
        "warmup_rounds": args.warmup,
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "environment": environment("torch", "transformers", "peft", "accelerate", "trl"),
    }
    write_record(record, args.out)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
