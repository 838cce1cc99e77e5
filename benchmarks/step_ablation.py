"""Benchmark: what each of the step's five work-savers buys (trl_compare.py measures the whole step against TRL).

The five, each exact in maths (only float rounding or the sampler's random stream changes):
  shared_prompts   one prompt pass per group in the trainer's forwards (ladkit/models/logprobs.py; the
                   shared_prompt_pass setting, on by default on a CPU, off on a GPU)
  first_pi_old     the first mini-batch's pi_old from its own forward, no separate pass (training/optimise.py)
  shared_prefill   one prefill per distinct prompt in HF generate (rollout/hf.py)
  batched_sampler  one inverse-CDF draw for all rows per token, not torch.multinomial per row (rollout/hf.py)
  merged_lora      sampling with the LoRA adapter merged into copies of the adapted weights (rollout/hf.py;
                   rollout.hf_merge_lora, on by default on a CPU)
Variants: all on (the default), each one off, all off. One process, the TRL side-by-side's geometry (GRPO,
built-in model + LoRA, 16 prompts x G = 8, 16 new tokens, 2 mini-batches); before every step the LoRA weights
and optimiser state are restored and the step index is reused, so every variant trains on the same prompts
(and the same rollouts, but for the sampler's stream). Rounds run every variant once in a rotated order;
figures are medians over rounds, speed-ups are "all off" / variant.
Writes benchmarks/results/step_ablation.json and prints the same record as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import statistics
import tempfile
from pathlib import Path

import torch
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

SAVERS = ("shared_prompts", "first_pi_old", "shared_prefill", "batched_sampler", "merged_lora")
VARIANTS = ("all on", *(f"no {s}" for s in SAVERS), "all off")


@contextlib.contextmanager
def switched_off(ctx, savers: set[str]):
    """The step with `savers` disabled (each through the switch its module decides it with)."""
    from ladkit.rollout import hf
    from ladkit.training import loop

    real_deterministic, real_share = loop.deterministic_forward, ctx.shared_prompt_pass
    ctx.shared_prompt_pass = "shared_prompts" not in savers
    if "shared_prefill" in savers:
        hf._NO_SHARED_PROMPT_PASS.add(ctx.model)
    if "first_pi_old" in savers:
        loop.deterministic_forward = lambda model: False
    ctx.backend.batched_sampling = "batched_sampler" not in savers
    ctx.backend.merge_lora = "merged_lora" not in savers
    try:
        yield
    finally:
        ctx.shared_prompt_pass = real_share
        hf._NO_SHARED_PROMPT_PASS.discard(ctx.model)
        loop.deterministic_forward = real_deterministic
        ctx.backend.batched_sampling = None
        ctx.backend.merge_lora = None


def off_set(variant: str) -> set[str]:
    return set(SAVERS) if variant == "all off" else set() if variant == "all on" else {variant[3:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12, help="timed rounds (each runs every variant once)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "step_ablation.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)

    from trl_compare import Geometry, ladkit_config

    from ladkit.models.loading import resolve_model_path
    from ladkit.training.loop import train_step
    from ladkit.training.setup import build

    geometry = Geometry("char", True, args.prompts, args.group_size, args.max_new_tokens, 2)
    config = ladkit_config(geometry, resolve_model_path("builtin"), args.seed)
    ctx = build(config, Path(tempfile.mkdtemp(prefix="step_ablation_")))
    weights = [p.detach().clone() for p in ctx.parameters]
    optimiser = copy.deepcopy(ctx.optimizer.state_dict())

    def step(variant: str) -> dict:
        with torch.no_grad():
            for p, w in zip(ctx.parameters, weights, strict=True):
                p.copy_(w)
        ctx.optimizer.load_state_dict(copy.deepcopy(optimiser))
        with switched_off(ctx, off_set(variant)):
            return train_step(ctx, 3)

    times = {v: {"step": [], "rollout": [], "update": []} for v in VARIANTS}
    gaps = {v: [] for v in VARIANTS}
    for variant in VARIANTS:  # warm-up
        step(variant)
    for round_index in range(args.rounds):
        shift = round_index % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            row = step(variant)
            times[variant]["step"].append(row["perf/step_time_s"])
            times[variant]["rollout"].append(row["perf/rollout_time_s"])
            times[variant]["update"].append(row["perf/update_time_s"])
            gaps[variant].append(row["rollout/logprob_diff"])
    medians = {v: {k: round(statistics.median(x), 4) for k, x in t.items()} for v, t in times.items()}
    base = medians["all off"]
    record = {
        "benchmark": "step_ablation",
        "median_s": medians,
        "speedup_over_all_off": {v: {k: round(base[k] / m[k], 3) for k in m} for v, m in medians.items()},
        "logprob_diff_max": {v: float(f"{max(g):.2e}") for v, g in gaps.items()},
        "args": vars(args),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        **environment("torch"),
    }
    write_record(record, args.out)


if __name__ == "__main__":
    main()
