"""Benchmark: ladkit's GRPO against TRL's GRPOTrainer on the same work (benchmarks issue, point 2; target: ladkit
at least 1.3x faster per step, i.e. TRL/ladkit step time >= 1.3).

The work, identical on both sides (every setting is read from one ladkit TrainConfig, the default preset with
objective grpo):
  model    the built-in ~1M-parameter character Llama, LoRA r=16 alpha=32 on all linear layers, fp32, no
           gradient checkpointing (TRL defaults to it and to bf16: both switched off)
  task     countdown, compact prompts, the same training split; ladkit's countdown reward wrapped as a TRL
           reward function (TRL gets the ladkit task's own score())
  step     one generation batch: 16 prompts x G=8 completions of at most 16 tokens at temperature 1 with HF
           generate, pi_old log-probs (TRL recomputes them for both mini-batches; ladkit for the second, the
           first takes its own forward's, see ladkit/training/optimise.py), then 2 mini-batches of 64 sequences with one
           AdamW step each (lr 5e-4, betas 0.9/0.99, grad-norm clip 1, constant schedule). TRL:
           per_device_train_batch_size 64, steps_per_generation 2, num_iterations 1, gradient_accumulation 1, so a
           TRL "step" here is two of its optimiser steps. GRPO with beta 0 (no reference model), clip 0.2 both
           sides, loss aggregation "grpo" on both (mean over each sequence's tokens, then over sequences; the
           per-mini-batch loss is the same formula, see the parity check), group-scaled advantages.
  no eval, no checkpoints, no sample files, no completion logging, TRL logging_steps past the end of the run.
Each side runs in its own process (torch.set_num_threads(1)): warm-up steps, then timed steps. A ladkit step is
one train_step() call (the product path, HF backend); a TRL step is the time between the ends of every second
optimiser step (on_step_end callbacks), so it holds everything its training loop does. Tokens per step: real prompt
plus completion tokens (EOS included) of the step's 128 sequences, counted from each side's own masks. Peak RSS:
the child's VmHWM (whole process, imports included); RSS before training is reported beside it. Repeats alternate
the sides (ABAB...); figures are medians over the pooled timed steps, the ratio carries a bootstrap 90% interval
(repeats resampled, then steps within them) and the min/max of the per-repeat ratios.

Loss parity (benchmarks/trl_parity.py, asserted by tests/unit/test_trl_parity.py): ladkit's objective_loss("grpo")
against TRL's GRPOTrainer._compute_loss on identical tensors, reported in the same record.

Writes benchmarks/results/trl_compare.json and prints the same record as one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)
from trl_parity import CLIP, import_trl, loss_parity

SIDES = ("ladkit", "trl")
LOSS_TYPE = "grpo"  # ladkit grpo.aggregation == TRL loss_type
TRAIN_SIZE, EVAL_SIZE = 512, 8  # countdown problems; 512 covers 23 steps x 16 prompts without reuse


# ------------------------------------------------------------------------------------------- shared settings


def ladkit_config(args):
    """The one TrainConfig both sides read their settings from: the default preset with GRPO."""
    from ladkit.training.resolve import resolve

    overrides = [
        "objective=grpo",
        f"grpo.aggregation={LOSS_TYPE}",
        f"grpo.epsilon_low={CLIP}",
        f"grpo.epsilon_high={CLIP}",
        "grpo.beta=0.0",
        f"prompts_per_step={args.prompts}",
        f"group_size={args.group_size}",
        f"rollout.max_new_tokens={args.max_new_tokens}",
        "rollout.temperature=1.0",
        "mini_batches=2",
        "samples_every=0",
        "tracked_prompts=0",
        "eval_every=0",
        "checkpoint_every=0",
        f"seed={args.seed}",
        f"task.train_size={TRAIN_SIZE}",
        f"task.eval_size={EVAL_SIZE}",
    ]
    return resolve(None, overrides, {})


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


# ----------------------------------------------------------------------------------------------- ladkit side


def run_ladkit(args) -> dict:
    """Warm-up then timed train_step() calls on a context from ladkit.training.setup.build."""
    from ladkit.training.loop import train_step
    from ladkit.training.setup import build

    run_dir = Path(tempfile.mkdtemp(prefix="trl_compare_ladkit_"))
    try:
        ctx = build(ladkit_config(args), run_dir)
        times, tokens, lengths, rewards, profiler = [], [], [], [], None
        rss_setup = _rss_mb("VmRSS")
        for step in range(args.warmup + args.steps):
            if step == args.warmup and args.profile:
                profiler = _start_profile()
            start = time.perf_counter()
            row = train_step(ctx, step)
            elapsed = time.perf_counter() - start
            if step >= args.warmup:
                times.append(elapsed)
                tokens.append(round(row["perf/tokens_per_s"] * row["perf/step_time_s"]))  # attention-mask sum
                lengths.append(row["completion/length_mean"])
                rewards.append(row["reward/mean"])
        ctx.backend.close()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return _child_record(times, tokens, lengths, rewards, rss_setup, profiler, LADKIT_STAGES)


# -------------------------------------------------------------------------------------------------- TRL side


def run_trl(args) -> dict:
    """The same work through TRL's GRPOTrainer.train(): every second optimiser step is one generation batch."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from ladkit.models.loading import resolve_model_path
    from ladkit.tasks import make_task

    trainer_cls, config_cls = import_trl()
    config = ladkit_config(args)
    task = make_task(config.task)
    examples, reward_means = task.train_examples(), []

    def countdown_reward(prompts, completions, example_index, **_) -> list[float]:
        """ladkit's countdown reward as a TRL reward function (extra dataset columns arrive as keyword lists)."""
        rewards = [r.reward for r in task.score(completions, [examples[i] for i in example_index])]
        reward_means.append(statistics.mean(rewards))
        return rewards

    class CountingTrainer(trainer_cls):
        """GRPOTrainer that records each generation batch's real prompt + completion tokens and mean length."""

        batches: list[tuple[int, float]] = []

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            completion = float(out["completion_mask"].sum())
            self.batches.append((int(out["prompt_mask"].sum()) + int(completion), completion / len(inputs)))
            return out

    mini = config.mini_batches
    ends, state = [], {"profiler": None}

    class Clock(TrainerCallback):
        def on_train_begin(self, *_, **__):
            ends.append(time.perf_counter())

        def on_step_end(self, _args, train_state, *_, **__):
            if train_state.global_step % mini == 0:  # the end of one generation batch's optimiser steps
                ends.append(time.perf_counter())
                if train_state.global_step == mini * args.warmup and args.profile:
                    state["profiler"] = _start_profile()

    path = resolve_model_path(config.model.name_or_path)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    lora = LoraConfig(
        r=config.model.lora_rank,
        lora_alpha=config.model.lora_alpha,
        lora_dropout=config.model.lora_dropout,
        target_modules=config.model.target_modules,
        task_type="CAUSAL_LM",
        bias="none",
    )
    dataset = Dataset.from_list([{"prompt": e.prompt, "example_index": i} for i, e in enumerate(examples)])
    out_dir = Path(tempfile.mkdtemp(prefix="trl_compare_trl_"))
    steps = mini * (args.warmup + args.steps)
    trl_args = config_cls(
        output_dir=str(out_dir), seed=config.seed, use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,
        per_device_train_batch_size=config.prompts_per_step * config.group_size // mini, steps_per_generation=mini,
        gradient_accumulation_steps=1, num_iterations=config.epochs, num_generations=config.group_size,
        max_completion_length=config.rollout.max_new_tokens, temperature=config.rollout.temperature,
        top_p=config.rollout.top_p, top_k=config.rollout.top_k, learning_rate=config.optim.lr,
        adam_beta1=config.optim.betas[0], adam_beta2=config.optim.betas[1], weight_decay=config.optim.weight_decay,
        max_grad_norm=config.optim.max_grad_norm, lr_scheduler_type="constant", warmup_steps=0,
        beta=config.grpo.beta, epsilon=config.grpo.epsilon_low, epsilon_high=config.grpo.epsilon_high,
        loss_type=config.grpo.aggregation, scale_rewards=config.advantage_scale, max_steps=steps,
        logging_steps=steps + 1, save_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
        log_completions=False, dataloader_num_workers=0,
    )  # fmt: skip
    try:
        trainer = CountingTrainer(
            model=model,
            reward_funcs=countdown_reward,
            args=trl_args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=[Clock()],
        )
        rss_setup = _rss_mb("VmRSS")
        trainer.train()
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    times = [b - a for a, b in zip(ends, ends[1:])][args.warmup :]
    timed = CountingTrainer.batches[args.warmup :]
    tokens, lengths = [t for t, _ in timed], [n for _, n in timed]
    return _child_record(times, tokens, lengths, reward_means[args.warmup :], rss_setup, state["profiler"], TRL_STAGES)


# ------------------------------------------------------------------------------------------------- profiling

# Where a step's time goes: cumulative time of these functions (file suffix, function name), per timed step.
# "HF generate" is transformers' GenerationMixin.generate on both sides.
LADKIT_STAGES = {
    "rollout (HF generate)": ("generation/utils.py", "generate"),
    "rollout: ladkit sampler processors": ("ladkit/rollout/hf.py", "__call__"),
    "rollout: one prefill per prompt": ("ladkit/rollout/hf.py", "_shared_prompt_pass"),
    "reward": ("ladkit/scoring.py", "score"),
    "batch + advantages": ("ladkit/training/collect.py", "build_batch"),
    "pi_old log-probs (no grad; mini-batch 2 only)": ("ladkit/training/optimise.py", "recompute"),
    "policy forward (mini-batch 1's also gives its pi_old)": ("ladkit/training/optimise.py", "train_forward"),
    "objective loss": ("ladkit/training/optimise.py", "micro_batch_loss"),
    "backward": ("torch/_tensor.py", "backward"),
    "optimiser step": ("torch/optim/adam.py", "step"),  # AdamW subclasses Adam
    "metrics": ("ladkit/training/metrics.py", "diversity_metrics"),
}
TRL_STAGES = {
    "rollout (HF generate)": ("generation/utils.py", "generate"),
    "reward": ("trl/trainer/grpo_trainer.py", "_calculate_rewards"),
    "generate + score + pi_old (all)": ("trl/trainer/grpo_trainer.py", "_generate_and_score_completions"),
    "log-prob forwards (pi_old + policy)": ("trl/trainer/grpo_trainer.py", "_get_per_token_logps_and_entropies"),
    "policy forward + loss": ("trl/trainer/grpo_trainer.py", "_compute_loss"),
    "backward": ("accelerate/accelerator.py", "backward"),
    "optimiser step": ("torch/optim/adam.py", "step"),  # AdamW subclasses Adam
}


def _start_profile():
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _profile_summary(profiler, stages: dict, steps: int, top: int = 12) -> dict:
    """Seconds per step in each named stage, and the functions with the most own time (tottime)."""
    import pstats

    profiler.disable()
    table = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive calls, tottime, cumtime, callers)
    out = {}
    for label, (suffix, name) in stages.items():
        cum = sum(v[3] for (f, _, n), v in table.items() if n == name and f.endswith(suffix))
        out[label] = round(cum / steps, 4)
    own = sorted(table.items(), key=lambda kv: -kv[1][2])[:top]
    hot = {f"{Path(f).parent.name}/{Path(f).name}:{n}": round(v[2] / steps, 4) for (f, _, n), v in own}
    return {"stage_s_per_step": out, "top_own_time_s_per_step": hot}


def _child_record(times, tokens, lengths, rewards, rss_setup, profiler, stages) -> dict:
    record = {
        "step_s": times,
        "tokens": tokens,
        "completion_length_mean": statistics.mean(lengths),
        "reward_mean": statistics.mean(rewards),  # the rollouts' mean countdown reward (a wiring check)
        "rss_before_train_mb": round(rss_setup, 1),
        "peak_rss_mb": round(_rss_mb("VmHWM"), 1),
    }
    if profiler is not None:
        record["profile"] = _profile_summary(profiler, stages, len(times))
    return record


# --------------------------------------------------------------------------------------------------- driver


def run_child(side: str, args, profile: bool = False) -> dict:
    """One side in a fresh process; its last stdout line is its JSON record."""
    argv = [sys.executable, __file__, "--side", side, "--steps", str(args.profile_steps if profile else args.steps)]
    argv += ["--warmup", str(args.warmup), "--prompts", str(args.prompts), "--group-size", str(args.group_size)]
    argv += ["--max-new-tokens", str(args.max_new_tokens), "--seed", str(args.seed)] + (
        ["--profile"] if profile else []
    )
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{side} child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: dict[str, list[dict]], bootstrap: int) -> dict:
    """Per side: medians over pooled timed steps; TRL/ladkit ratio with a two-level bootstrap 90% interval."""
    out = {}
    for side, records in runs.items():
        times = [s for r in records for s in r["step_s"]]
        rates = [tok / s for r in records for tok, s in zip(r["tokens"], r["step_s"])]
        out[side] = {
            "step_s_median": round(statistics.median(times), 4),
            "step_s_min": round(min(times), 4),
            "step_s_median_per_repeat": [round(statistics.median(r["step_s"]), 4) for r in records],
            "tokens_per_s_median": round(statistics.median(rates), 1),
            "tokens_per_step_median": statistics.median(t for r in records for t in r["tokens"]),
            "completion_length_mean": round(statistics.mean(r["completion_length_mean"] for r in records), 2),
            "reward_mean": round(statistics.mean(r["reward_mean"] for r in records), 3),
            "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in records), 1),
            "rss_before_train_mb_median": round(statistics.median(r["rss_before_train_mb"] for r in records), 1),
        }
    ladkit, trl = runs["ladkit"], runs["trl"]
    rng, ratios = random.Random(0), []
    for _ in range(bootstrap):
        picks = [rng.randrange(len(ladkit)) for _ in ladkit]  # resample repeat pairs, then steps within each

        trl_steps, ladkit_steps = (_resample(records, picks, rng) for records in (trl, ladkit))
        ratios.append(statistics.median(trl_steps) / statistics.median(ladkit_steps))
    ratios.sort()
    per_repeat = [statistics.median(b["step_s"]) / statistics.median(a["step_s"]) for a, b in zip(ladkit, trl)]
    ratio = out["trl"]["step_s_median"] / out["ladkit"]["step_s_median"]
    out["ratio_trl_over_ladkit"] = {
        "step_time": round(ratio, 3),
        "step_time_90ci": [round(ratios[int(0.05 * bootstrap)], 3), round(ratios[int(0.95 * bootstrap) - 1], 3)],
        "step_time_per_repeat_min_max": [round(min(per_repeat), 3), round(max(per_repeat), 3)],
        "tokens_per_s": round(out["ladkit"]["tokens_per_s_median"] / out["trl"]["tokens_per_s_median"], 3),
        "peak_rss": round(out["trl"]["peak_rss_mb_median"] / out["ladkit"]["peak_rss_mb_median"], 3),
    }
    out["target_1.3x_met"] = ratio >= 1.3
    out["target_1.3x_met_at_ci_low"] = ratios[int(0.05 * bootstrap)] >= 1.3
    return out


def _resample(records: list[dict], picks: list[int], rng: random.Random) -> list[float]:
    """The pooled step times of the picked repeats, each repeat's steps resampled with replacement."""
    return [s for i in picks for s in rng.choices(records[i]["step_s"], k=len(records[i]["step_s"]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=4, help="child processes per side, alternating ABAB...")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (generation batches) per child")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--prompts", type=int, default=16, help="B, prompts per step")
    parser.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--profile-steps", type=int, default=8, help="steps of one cProfile'd child per side (0: none)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trl_compare.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.side:
        print(json.dumps({"ladkit": run_ladkit, "trl": run_trl}[args.side](args)))
        return
    parity = loss_parity()
    runs = {side: [] for side in SIDES}
    for _ in range(args.repeats):
        for side in SIDES:
            runs[side].append(run_child(side, args))
    profile = {side: run_child(side, args, profile=True)["profile"] for side in SIDES} if args.profile_steps else {}
    record = {
        "benchmark": "trl_compare",
        **summarise(runs, args.bootstrap),
        "loss_parity": parity,
        "profile": profile,
        "settings": {
            "model": "builtin char Llama (~1M params) + LoRA r16 a32 all-linear, fp32",
            "task": "countdown, compact prompts",
            "prompts": args.prompts,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "temperature": 1.0,
            "optimiser_steps_per_step": 2,
            "loss_type": LOSS_TYPE,
            "clip": CLIP,
            "beta": 0.0,
            "threads": 1,
        },
        "raw": {side: [{k: v for k, v in r.items() if k != "profile"} for r in recs] for side, recs in runs.items()},
        "args": vars(args),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        **environment("torch", "transformers", "peft", "accelerate", "datasets", "trl"),
    }
    write_record(record, args.out)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        main()
