"""Benchmark: what LAD costs over GRPO (benchmarks issue, point 1; target LAD/GRPO <= 1.02).

Two measurements, LAD (every divergence) and GRPO interleaved in one process so load affects them alike:
  step   full train_step() on the built-in model (rollout, scoring, pi_old, loss, backward, AdamW), default
         geometry. Before every timed step the LoRA weights and optimiser state are restored
         and the step index is the same, so every objective sees byte-identical rollouts (checked).
  loss   objective_loss() + backward alone, on recorded-shape tensors with a fake log-prob leaf
         ([N=128, T=16] and [N=64, T=512]): the objective's own cost, without the model around it.
Each round runs every objective once, in a rotated order; figures are medians over rounds, and the
LAD/GRPO ratio carries a paired bootstrap 90% interval over rounds. Memory on CPU: ru_maxrss is a
process-wide high-water mark (useless when objectives alternate), so the script reports the bytes autograd
saves for backward instead (summed over the step; per call for the loss), which is where objectives differ.
Writes benchmarks/results/objective_cost.json and prints the same record as one JSON line.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

DIVERGENCES = ("kl", "rkl", "jf", "tv", "hd", "js")
OBJECTIVES = ("grpo", *(f"lad-{d}" for d in DIVERGENCES))
LOSS_SHAPES = ((128, 16), (64, 512))  # [N, T]
ROLLOUT_KEYS = ("reward/mean", "reward/std", "completion/length_mean", "advantage/abs_max")


class SavedBytes:
    """Counts the bytes autograd saves for backward while active (a CPU stand-in for peak activation memory)."""

    def __init__(self) -> None:
        self.total = 0

    def __enter__(self):
        def pack(tensor):
            self.total += tensor.numel() * tensor.element_size()
            return tensor

        self.hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)


def set_objective(config, name: str) -> None:
    """Point the config at `name` ("grpo" or "lad-<divergence>"), other LAD settings left at their defaults."""
    from ladkit.objectives import LADConfig

    config.objective, _, divergence = name.partition("-")
    if divergence:
        config.lad = LADConfig(divergence=divergence)


def train_config(args):
    from ladkit.config import build, to_dict
    from ladkit.training.config import TrainConfig
    from ladkit.training.resolve import resolve

    data = to_dict(resolve(None, [], {}))  # the default preset: built-in model, LoRA, countdown
    data.update(
        prompts_per_step=args.prompts,
        group_size=args.group_size,
        samples_every=0,
        tracked_prompts=0,
        eval_every=0,
        seed=args.seed,
    )
    data["rollout"]["max_new_tokens"] = args.max_new_tokens
    data["task"] = {**data["task"], "train_size": 256, "eval_size": 8}
    return build(TrainConfig, data)


def bench_steps(args) -> dict:
    """Median full-step time per objective, the update part alone, and autograd's saved bytes."""
    from ladkit.training.loop import train_step
    from ladkit.training.setup import build

    ctx = build(train_config(args), Path(tempfile.mkdtemp(prefix="objective_cost_")))
    weights = [p.detach().clone() for p in ctx.parameters]
    optimiser, scheduler = copy.deepcopy(ctx.optimizer.state_dict()), copy.deepcopy(ctx.scheduler.state_dict())

    def step(name: str) -> dict:
        with torch.no_grad():
            for p, w in zip(ctx.parameters, weights, strict=True):
                p.copy_(w)
        ctx.optimizer.load_state_dict(copy.deepcopy(optimiser))
        ctx.scheduler.load_state_dict(scheduler)
        set_objective(ctx.config, name)
        with SavedBytes() as saved:
            row = train_step(ctx, args.step_index)
        return {**row, "saved_mb": saved.total / 2**20}

    rollouts, saved_mb = {}, {}
    for name in OBJECTIVES:  # warm-up, and the rollout fingerprint of each objective
        row = step(name)
        rollouts[name], saved_mb[name] = tuple(row[k] for k in ROLLOUT_KEYS), row["saved_mb"]
    identical = len(set(rollouts.values())) == 1
    total, update = {n: [] for n in OBJECTIVES}, {n: [] for n in OBJECTIVES}
    for round_index in range(args.steps):
        shift = round_index % len(OBJECTIVES)
        for name in OBJECTIVES[shift:] + OBJECTIVES[:shift]:  # rotate: no objective always runs first
            row = step(name)
            identical &= tuple(row[k] for k in ROLLOUT_KEYS) == rollouts["grpo"]
            total[name].append(row["perf/step_time_s"])
            update[name].append(row["perf/step_time_s"] - row["perf/rollout_time_s"])
    return {
        "geometry": {
            "prompts": args.prompts,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "mini_batches": ctx.config.mini_batches,
            "model": "builtin + LoRA",
        },
        "rollouts_identical": identical,
        "completion_length_mean": rollouts["grpo"][2],
        "step": summarise(total, args.bootstrap),
        "update": summarise(update, args.bootstrap),
        "saved_for_backward_mb": {n: round(v, 2) for n, v in saved_mb.items()},
        "ru_maxrss_mb_end": round(_maxrss_mb(), 1),
    }


def fake_inputs(n: int, t: int, group: int = 8, seed: int = 0):
    """Tensors shaped like a recorded batch: log-probs near pi_old, group z-scored advantages, ragged mask."""
    gen = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, t, generator=gen).mul(2.0)  # [N, T]
    logprobs = (old + 0.05 * torch.randn(n, t, generator=gen)).requires_grad_()  # [N, T] the leaf
    rewards = torch.randint(0, 2, (n // group, group), generator=gen).float()  # [B, G]
    advantages = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).flatten()  # [N]
    lengths = torch.randint(t // 4, t + 1, (n,), generator=gen)  # [N]
    mask = torch.arange(t)[None, :] < lengths[:, None]  # [N, T]
    return logprobs, old, advantages, mask, float(mask.sum())


def loss_call(config, name: str, inputs) -> None:
    """One objective_loss + backward, as micro_batch_loss calls it (metrics on), then drop the gradient."""
    from ladkit.objectives import objective_loss

    logprobs, old, advantages, mask, num_tokens = inputs
    set_objective(config, name)
    loss, _ = objective_loss(
        config.objective,
        config.objective_config,
        logprobs,
        old,
        advantages,
        mask,
        max_completion_length=mask.shape[1],
        num_tokens=num_tokens,
    )
    loss.backward()
    logprobs.grad = None


def bench_loss(args) -> dict:
    """objective_loss + backward per objective and shape: median microseconds per call, saved bytes per call."""
    from ladkit.training.config import TrainConfig

    config, out = TrainConfig(), {}
    for n, t in LOSS_SHAPES:
        inputs = fake_inputs(n, t)
        saved = {}
        for name in OBJECTIVES:  # also the warm-up
            with SavedBytes() as counter:
                loss_call(config, name, inputs)
            saved[name] = counter.total / 2**20
        times = {name: [] for name in OBJECTIVES}
        for round_index in range(args.loss_rounds):
            shift = round_index % len(OBJECTIVES)
            for name in OBJECTIVES[shift:] + OBJECTIVES[:shift]:
                start = time.perf_counter()
                for _ in range(args.loss_calls):
                    loss_call(config, name, inputs)
                times[name].append((time.perf_counter() - start) / args.loss_calls * 1e6)  # microseconds
        out[f"N{n}_T{t}"] = {
            **summarise(times, args.bootstrap, unit="us"),
            "saved_for_backward_mb": {k: round(v, 3) for k, v in saved.items()},
        }
    return out


def summarise(times: dict[str, list[float]], bootstrap: int, unit: str = "s") -> dict:
    """Per objective: median, min, and the ratio to GRPO's median with a paired bootstrap 90% interval."""
    digits = 4 if unit == "s" else 1
    base = times["grpo"]
    rng = random.Random(0)
    out = {}
    for name, values in times.items():
        ratios = []
        for _ in range(bootstrap):
            idx = [rng.randrange(len(values)) for _ in values]  # resample whole rounds (paired)
            ratios.append(statistics.median(values[i] for i in idx) / statistics.median(base[i] for i in idx))
        ratios.sort()
        out[name] = {
            f"median_{unit}": round(statistics.median(values), digits),
            f"min_{unit}": round(min(values), digits),
            "ratio_to_grpo": round(statistics.median(values) / statistics.median(base), 4),
            "ratio_min_to_grpo_min": round(min(values) / min(base), 4),
            "ratio_90ci": [round(ratios[int(0.05 * bootstrap)], 4), round(ratios[int(0.95 * bootstrap) - 1], 4)],
        }
    return out


def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed rounds of full steps (each runs all 7)")
    parser.add_argument("--prompts", type=int, default=16, help="B, prompts per step")
    parser.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--step-index", type=int, default=0, help="the step whose prompts and seeds are reused")
    parser.add_argument("--loss-rounds", type=int, default=15, help="timed rounds of the loss alone")
    parser.add_argument("--loss-calls", type=int, default=50, help="loss+backward calls per round and objective")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-steps", action="store_true", help="only the loss-alone measurement")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "objective_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = {
        "benchmark": "objective_cost",
        "loss": bench_loss(args),
        **({} if args.skip_steps else {"train_step": bench_steps(args)}),
        "args": vars(args),
        **environment("torch"),
    }
    write_record(record, args.out)


if __name__ == "__main__":
    main()
