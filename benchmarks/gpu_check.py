"""GPU check (benchmarks issue, point 6): LoRA steps of LAD and GRPO in bf16 on a random-init ~0.5B model.

Run through `scripts/gpu_check.sh` on one H100/H200 with no network and no vLLM. It needs nothing beyond this
repo and the GPU image's own torch, transformers and peft:

1. builds a model from a config alone (Qwen2.5-0.5B's shape: 24 layers, hidden 896, GQA 14/2 heads, vocabulary
   151936, tied embeddings; 494M parameters), random-initialised in bf16 on the GPU, with a character tokenizer
   padded to the model's vocabulary (ladkit.models.tiny.char_tokenizer), saved to a temporary folder;
2. trains a LoRA adapter on it with ladkit's own trainer (ladkit.training.loop.train: HF generate rollouts,
   pi_old recomputation, objective, AdamW), first LAD, then GRPO, with the same rollout geometry;
3. prints, per objective, the median step time (rollout and update apart), tokens/s, peak GPU memory and
   model FLOPs utilisation, and writes them as JSON;
4. times one rollout batch per hf decode mode (eager, static KV cache, compiled step: CUDA graphs), checking
   that every mode samples eager's tokens, and the two seeded samplers;
5. with vLLM installed on a GPU: an engine with sleep mode sampled, put to sleep (the GPU memory it frees is
   measured), woken and sampled again (same tokens).

The update runs micro-batches sized by a token budget (--micro-batch-tokens, unset: the GPU default of
ladkit.training.optimise.micro_batch_size) and the rollout decodes in --decode mode (auto: compiled on a GPU).

The task is synthetic: compact countdown-style prompts, and a reward that is a fixed hash of the completion
text mapped to [0, 1). A random model says nothing meaningful, but the hash gives every group a spread of
rewards, so every advantage is non-zero and the objectives do their full work.

MFU = model FLOPs / (time x the card's dense bf16 peak). Model FLOPs count 2N per token for a forward pass and
2N more for a backward pass through frozen weights (input gradients only: LoRA does not need the base weights'
gradients), with N the parameters that take part in matrix products (the embedding table once, as the tied
output head). A step does: generation (2N per token: prefill and decode), pi_old recomputation (2N), and per
epoch a forward and a backward (4N), so 8N per token with one epoch. Attention's sequence-length term is left
out (under 3% at these lengths). "update MFU" is the pi_old recomputation + optimisation phase alone; "step
MFU" includes HF generate, which is latency-bound and far from peak (vLLM is what GPU users sample with).
These are the textbook FLOPs of the step's work. ladkit executes fewer: one prefill per prompt in generate,
one prompt pass per group in the trainer's forwards where `--shared-prompt-pass` is on (not by default on a
GPU), and no separate pi_old pass for the first mini-batch (ladkit/models/logprobs.py,
ladkit/training/optimise.py). The figures are therefore effective MFU (throughput in units of that work), and
stay comparable with runs made before those savings.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a bare checkout: nothing is installed on the GPU machine

from ladkit.config import build  # noqa: E402
from ladkit.tasks import TASKS, Example, RewardResult  # noqa: E402

# Qwen2.5-0.5B's shape (its config.json), and a tiny one for a CPU smoke run of this script.
SIZES = {
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6),
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1,
                 num_key_value_heads=1, vocab_size=1024, max_position_embeddings=1024, rope_theta=1e4),
}  # fmt: skip
SHARING = {"auto": None, "on": True, "off": False}  # --shared-prompt-pass -> TrainConfig.shared_prompt_pass
# Dense bf16 tensor-core peaks (no sparsity) from NVIDIA's data sheets, in TFLOP/s, matched on the device name.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("H800", 989.4), ("A100", 312.0))


class HashRewardTask:
    """Countdown-style prompts; reward = sha256(completion) mapped to [0, 1) (a spread in every group)."""

    name = "gpu_check"

    def __init__(self, train_size: int = 512, eval_size: int = 4, seed: int = 0):
        rng = random.Random(seed)
        prompts = [
            ",".join(str(rng.randint(1, 99)) for _ in range(4)) + f"->{rng.randint(10, 200)}:"
            for _ in range(train_size + eval_size)
        ]
        examples = [Example(id=f"gpu-{i}", prompt=p) for i, p in enumerate(prompts)]
        self._train, self._eval = examples[:train_size], examples[train_size:]

    def train_examples(self) -> list[Example]:
        return self._train

    def eval_examples(self) -> list[Example]:
        return self._eval

    def score(self, completions, examples) -> list[RewardResult]:
        return [RewardResult(int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) / 2**32) for c in completions]


def build_model(folder: Path, size: str, device: torch.device) -> int:
    """Random-init the model in bf16 on `device` and save it with its tokenizer; returns its matmul parameters."""
    from transformers import AutoModelForCausalLM, Qwen2Config

    from ladkit.models.tiny import char_tokenizer

    shape = SIZES[size]
    tokenizer = char_tokenizer(vocab_size=shape["vocab_size"])
    config = Qwen2Config(
        **shape,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())  # tied: the table is counted once, as the output head
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return params


def peak_tflops(device: torch.device, given: float | None) -> tuple[float | None, str]:
    if given:
        return given, "given"
    if device.type != "cuda":
        return None, "no GPU"
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS:
        if key in name:
            return value, name
    return None, name


def run_objective(objective: str, model_dir: Path, run_dir: Path, args, strategy: str = "ddp") -> list[dict]:
    """Train `args.steps` steps of one objective with ladkit's trainer; returns its metric rows."""
    from ladkit.training.config import TrainConfig
    from ladkit.training.loop import train

    config = build(
        TrainConfig,
        {
            "model": {
                "name_or_path": str(model_dir),
                "lora": True,
                "lora_rank": 16,
                "lora_alpha": 32,
                "dtype": "bfloat16",
                "gradient_checkpointing": args.gradient_checkpointing,
            },
            "task": {"name": "gpu_check", "eval_size": 4},
            "shared_prompt_pass": SHARING[args.shared_prompt_pass],
            "objective": objective,
            "rollout": {
                "backend": "hf",
                "max_new_tokens": args.max_new_tokens,
                "temperature": 1.0,
                "hf_decode": None if args.decode == "auto" else args.decode,
            },
            "optim": {
                "lr": 1e-5,
                "grad_accumulation": args.grad_accumulation,
                "micro_batch_tokens": args.micro_batch_tokens,
            },
            "steps": args.steps,
            "prompts_per_step": args.prompts,
            "group_size": args.group_size,
            "mini_batches": 2,
            "eval_every": 0,
            "eval_samples": 1,
            "checkpoint_every": 0,
            "samples_every": 0,
            "tracked_prompts": 0,
            "seed": 0,
            "distributed": {"strategy": strategy},
        },
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    train(config, run_dir)
    from ladkit.runs import read_rows

    return [r for r in read_rows(run_dir / "metrics.jsonl") if "perf/step_time_s" in r]


def compare_samplers(model_dir: Path, args, repeats: int = 2) -> dict:
    """Seconds of one rollout batch (prompts x G x max_new_tokens) with the hf backend's two seeded samplers:
    all rows at once by inverse CDF (its default) and one torch.multinomial per row (batched_sampling=False)."""
    from ladkit.models.loading import ModelConfig, load_policy, render_prompt
    from ladkit.rollout import SamplingConfig, make_backend

    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), dtype="bfloat16"))
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    prompts = [render_prompt(tokenizer, e.prompt) for e in HashRewardTask().train_examples()[: args.prompts]]
    length = min(args.max_new_tokens, 64)  # the per-token cost is what differs; keeps the check short
    sampling = SamplingConfig(length, 1.0, 1.0, 0, 0)
    times: dict[str, list[float]] = {"batched": [], "per_row": []}
    for round_ in range(repeats + 1):  # round 0 warms both up
        for name in ("batched", "per_row") if round_ % 2 else ("per_row", "batched"):
            backend = make_backend("hf", model, tokenizer, batched_sampling=name == "batched")
            begun = time.perf_counter()
            groups = backend.generate(prompts, args.group_size, sampling)
            if round_:
                times[name].append(time.perf_counter() - begun)
    tokens = sum(len(c.token_ids) for g in groups for c in g.completions)
    out = {f"{name}_rollout_s": statistics.median(t) for name, t in times.items()}
    out.update({f"{name}_tokens_per_s": tokens / out[f"{name}_rollout_s"] for name in times})
    out["per_row_over_batched"] = out["per_row_rollout_s"] / out["batched_rollout_s"]
    out["max_new_tokens"] = length
    del model
    return out


def compare_decode(model_dir: Path, args, modes: list[str], repeats: int = 2) -> dict:
    """Seconds of one seeded rollout batch (prompts x G x up to 64 tokens) per hf decode mode, and whether each
    mode sampled exactly eager's tokens (same seeds). The first call of a mode (compilation, graph capture)
    is timed apart as its warm-up."""
    from ladkit.models.loading import ModelConfig, load_policy, render_prompt
    from ladkit.rollout import SamplingConfig, make_backend

    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), dtype="bfloat16"))
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    prompts = [render_prompt(tokenizer, e.prompt) for e in HashRewardTask().train_examples()[: args.prompts]]
    sampling = SamplingConfig(min(args.max_new_tokens, 64), 1.0, 1.0, 0, 0)
    out: dict = {"max_new_tokens": sampling.max_new_tokens, "modes": {}}
    tokens: dict[str, list] = {}
    for mode in modes:
        backend = make_backend("hf", model, tokenizer, decode=mode)
        times = []
        for _ in range(repeats + 1):
            begun = time.perf_counter()
            groups = backend.generate(prompts, args.group_size, sampling, seeds=list(range(len(prompts))))
            _synchronize()
            times.append(time.perf_counter() - begun)
        tokens[mode] = [c.token_ids for g in groups for c in g.completions]
        count = sum(len(t) for t in tokens[mode])
        out["modes"][mode] = {"first_call_s": times[0], "rollout_s": statistics.median(times[1:]),
                              "tokens_per_s": count / statistics.median(times[1:])}  # fmt: skip
    for mode in modes:
        same = sum(a == b for a, b in zip(tokens[mode], tokens[modes[0]]))
        out["modes"][mode][f"same_tokens_as_{modes[0]}"] = same / len(tokens[modes[0]])
    del model
    return out


def vllm_sleep_check(model_dir: Path, args) -> dict:
    """A vLLM engine with sleep mode: sample, sleep (GPU memory freed, measured), wake, sample again."""
    from transformers import AutoTokenizer

    from ladkit.models.loading import render_prompt
    from ladkit.rollout import SamplingConfig, make_backend
    from ladkit.rollout.vllm import VLLMBackend

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [render_prompt(tokenizer, e.prompt) for e in HashRewardTask().train_examples()[: args.prompts]]
    sampling = SamplingConfig(min(args.max_new_tokens, 64), 1.0, 1.0, 0, 0)
    backend: VLLMBackend = make_backend(
        "vllm", None, tokenizer, model_path=str(model_dir), dtype="bfloat16", gpu_memory_utilization=0.3
    )
    out: dict = {"sleep_mode": backend.sleep_mode}
    seeds = list(range(len(prompts)))
    first = backend.generate(prompts, args.group_size, sampling, seeds=seeds)
    free_awake = torch.cuda.mem_get_info()[0]
    begun = time.perf_counter()
    backend.sleep()
    out["sleep_s"] = time.perf_counter() - begun
    out["freed_gib"] = (torch.cuda.mem_get_info()[0] - free_awake) / 2**30
    begun = time.perf_counter()
    again = backend.generate(prompts, args.group_size, sampling, seeds=seeds)  # wakes the engine first
    out["wake_and_rollout_s"] = time.perf_counter() - begun
    pairs = [(a.token_ids, b.token_ids) for x, y in zip(first, again) for a, b in zip(x.completions, y.completions)]
    out["same_tokens_after_wake"] = sum(a == b for a, b in pairs) / len(pairs)
    backend.close()
    return out


def fsdp_check(model_dir: Path, run_dir: Path, args, processes: int) -> list[dict]:
    """The first objective trained by `processes` processes under torchrun with distributed.strategy=fsdp (this
    script again, as --fsdp-worker); returns the main process's metric rows."""
    import subprocess

    from ladkit.runs import read_rows

    forwarded = ["--size", args.size, "--steps", str(args.steps), "--prompts", str(args.prompts),
                 "--group-size", str(args.group_size), "--max-new-tokens", str(args.max_new_tokens),
                 "--decode", args.decode, "--grad-accumulation", str(args.grad_accumulation),
                 "--objectives", args.objectives.split(",")[0], "--model-dir", str(model_dir)]  # fmt: skip
    if args.micro_batch_tokens is not None:
        forwarded += ["--micro-batch-tokens", str(args.micro_batch_tokens)]
    if args.allow_cpu:
        forwarded.append("--allow-cpu")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes)]
    subprocess.run([*launcher, __file__, "--fsdp-worker", str(run_dir), *forwarded], check=True)
    return [r for r in read_rows(run_dir / "metrics.jsonl") if "perf/step_time_s" in r]


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def summarise(rows: list[dict], warmup: int, flops_param: int, peak: float | None) -> dict:
    timed = rows[warmup:] or rows  # the first step pays for kernel selection and allocator growth
    median = lambda key: statistics.median(r[key] for r in timed)  # noqa: E731
    step, rollout, update = median("perf/step_time_s"), median("perf/rollout_time_s"), median("perf/update_time_s")
    tokens = statistics.median(r["perf/tokens_per_s"] * r["perf/step_time_s"] for r in timed)  # per step
    step_flops = 8 * flops_param * tokens  # generation 2N + pi_old 2N + forward/backward 4N, per token
    update_flops = 6 * flops_param * tokens
    out = {
        "steps_timed": len(timed),
        "step_time_s": step,
        "rollout_time_s": rollout,
        "update_time_s": update,
        "tokens_per_step": tokens,
        "tokens_per_s": tokens / step,
        "update_tokens_per_s": tokens / update,
        "peak_gpu_memory_gib": max(r["perf/peak_memory_mb"] for r in rows) / 1024,
        "completion_length_mean": statistics.mean(r["completion/length_mean"] for r in timed),
        "reward_std": statistics.mean(r["reward/std"] for r in timed),
        "loss_finite": all(r.get("optim/skipped_steps", 0) == 0 for r in rows),
        # |trainer log-prob - sampler log-prob| per token: bf16 generate vs the fp32-softmax recomputation
        "logprob_diff_max": max(r["rollout/logprob_diff"] for r in rows),
        "achieved_tflops_step": step_flops / step / 1e12,
        "achieved_tflops_update": update_flops / update / 1e12,
    }
    if peak:
        out["mfu_step"] = out["achieved_tflops_step"] / peak
        out["mfu_update"] = out["achieved_tflops_update"] / peak
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--objectives", default="lad,grpo")
    parser.add_argument("--steps", type=int, default=4, help="RL steps per objective (the first is warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--grad-accumulation", type=int, default=1, help="at least this many micro-batches")
    parser.add_argument(
        "--micro-batch-tokens", type=int, default=None, help="optim.micro_batch_tokens (unset: the device default)"
    )
    parser.add_argument("--decode", choices=["auto", "eager", "static", "compiled"], default="auto")
    parser.add_argument(
        "--decode-modes",
        default=None,
        help="hf decode modes timed side by side (default: eager,static,compiled on a GPU, eager,static on a CPU)",
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--shared-prompt-pass",
        choices=sorted(SHARING),
        default="auto",
        help="the trainer's shared_prompt_pass (auto: on a CPU only)",
    )
    parser.add_argument(
        "--no-compare-samplers",
        dest="compare_samplers",
        action="store_false",
        help="skip timing the hf backend's two seeded samplers side by side",
    )
    parser.add_argument(
        "--fsdp-processes",
        type=int,
        default=None,
        help="train the first objective with distributed.strategy=fsdp over this many processes (default: every "
        "GPU when there are 2 or more, else skipped)",
    )
    parser.add_argument("--fsdp-worker", type=Path, default=None, help=argparse.SUPPRESS)  # run folder (internal)
    parser.add_argument("--model-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak, if unknown")
    parser.add_argument("--allow-cpu", action="store_true", help="smoke-run on a CPU (with --size tiny)")
    parser.add_argument("--out", type=Path, default=None, help="write gpu_check.json here")
    args = parser.parse_args()

    if not torch.cuda.is_available() and not args.allow_cpu:
        sys.exit("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False); run it on a GPU machine")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak, card = peak_tflops(device, args.peak_tflops)
    TASKS.add("gpu_check", lambda config: HashRewardTask(eval_size=config.eval_size or 4, seed=config.seed))
    if args.fsdp_worker:  # one process of fsdp_check's torchrun
        run_objective(args.objectives.split(",")[0], args.model_dir, args.fsdp_worker, args, strategy="fsdp")
        return
    import peft
    import transformers
    from bench_env import environment  # benchmarks/bench_env.py (this script's folder is on sys.path)

    from ladkit.rollout.hf import default_decode
    from ladkit.training.config import OptimConfig
    from ladkit.training.optimise import micro_batch_size
    from ladkit.training.setup import resolve_shared_prompt_pass

    started = time.perf_counter()
    sharing = resolve_shared_prompt_pass(SHARING[args.shared_prompt_pass], device)
    result = {
        **environment(),
        "card": card,
        "peak_tflops_bf16": peak,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "size": args.size,
        "shared_prompt_pass": sharing,
        "decode": default_decode(device) if args.decode == "auto" else args.decode,
        # rows per micro-batch of a mini-batch (half the step's rows) at the longest width (64-token prompts)
        "micro_batch_rows": micro_batch_size(
            OptimConfig(grad_accumulation=args.grad_accumulation, micro_batch_tokens=args.micro_batch_tokens),
            device,
            args.prompts * args.group_size // 2,
            64 + args.max_new_tokens,
        ),
        "prompts": args.prompts,
        "group_size": args.group_size,
        "max_new_tokens": args.max_new_tokens,
        "steps": args.steps,
        "warmup": args.warmup,
        "objectives": {},
    }
    print(
        f"gpu_check on {card}: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"peft {peft.__version__}, shared prompt pass {'on' if result['shared_prompt_pass'] else 'off'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="ladkit-gpu-check-") as tmp:
        model_dir = Path(tmp) / "model"
        built = time.perf_counter()
        params = build_model(model_dir, args.size, device)
        result["parameters"] = params
        result["build_s"] = time.perf_counter() - built
        print(
            f"random-init {args.size} model: {params / 1e6:.1f}M parameters, built in {result['build_s']:.1f} s",
            flush=True,
        )
        for objective in args.objectives.split(","):
            begun = time.perf_counter()
            rows = run_objective(objective, model_dir, Path(tmp) / f"run-{objective}", args)
            summary = summarise(rows, args.warmup, params, peak)
            summary["wall_s"] = time.perf_counter() - begun
            result["objectives"][objective] = summary
            print(_line(objective, summary), flush=True)
            _write(args.out, result)  # what is measured survives a timeout
            _free(device)
        if args.compare_samplers:
            result["samplers"] = compare_samplers(model_dir, args)
            s = result["samplers"]
            print(
                f"rollout of {args.prompts}x{args.group_size}x{s['max_new_tokens']} tokens: batched sampler "
                f"{s['batched_rollout_s']:.2f} s, per-row sampler {s['per_row_rollout_s']:.2f} s "
                f"({s['per_row_over_batched']:.2f}x)",
                flush=True,
            )
            _free(device)
        modes = (args.decode_modes or ("eager,static,compiled" if device.type == "cuda" else "eager,static")).split(",")
        result["decode_modes"] = compare_decode(model_dir, args, modes)
        print(_decode_line(result["decode_modes"]), flush=True)
        _write(args.out, result)
        _free(device)
        processes = args.fsdp_processes
        if processes is None:
            processes = torch.cuda.device_count() if torch.cuda.device_count() >= 2 else 0
        if processes >= 2:
            rows = fsdp_check(model_dir, Path(tmp) / "run-fsdp", args, processes)
            result["fsdp"] = {"processes": processes, **summarise(rows, args.warmup, params, peak)}
            print(f"fsdp x{processes}: {_line(args.objectives.split(',')[0], result['fsdp'])}", flush=True)
            _write(args.out, result)
        else:
            result["fsdp"] = "not run: fewer than 2 GPUs (--fsdp-processes N to force)"
        if device.type == "cuda" and importlib.util.find_spec("vllm") is not None:
            result["vllm_sleep"] = vllm_sleep_check(model_dir, args)
            print(f"vllm sleep mode: {json.dumps(result['vllm_sleep'])}", flush=True)
            _write(args.out, result)
            _free(device)
    objectives = result["objectives"]
    if "lad" in objectives and "grpo" in objectives:
        result["lad_over_grpo_step"] = objectives["lad"]["step_time_s"] / objectives["grpo"]["step_time_s"]
        result["lad_over_grpo_update"] = objectives["lad"]["update_time_s"] / objectives["grpo"]["update_time_s"]
    result["total_s"] = time.perf_counter() - started
    _write(args.out, result)
    print(json.dumps(result))


def _write(out: Path | None, result: dict) -> None:
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _decode_line(record: dict) -> str:
    parts = [
        f"{mode} {m['rollout_s']:.2f} s (first call {m['first_call_s']:.1f} s, "
        f"same tokens {next(v for k, v in m.items() if k.startswith('same_tokens')):.0%})"
        for mode, m in record["modes"].items()
    ]
    return f"hf decode, {record['max_new_tokens']} new tokens: " + ", ".join(parts)


def _line(objective: str, s: dict) -> str:
    mfu = f"MFU step {s['mfu_step']:.1%} / update {s['mfu_update']:.1%}" if "mfu_step" in s else "MFU n/a"
    return (
        f"{objective:>5}: step {s['step_time_s']:.2f} s (rollout {s['rollout_time_s']:.2f} s, update "
        f"{s['update_time_s']:.2f} s), {s['tokens_per_s']:,.0f} tokens/s ({s['update_tokens_per_s']:,.0f} in the "
        f"update), peak memory {s['peak_gpu_memory_gib']:.2f} GiB, {mfu}, "
        f"{s['achieved_tflops_update']:.1f} TFLOP/s in the update, log-prob diff {s['logprob_diff_max']:.2g}"
    )


if __name__ == "__main__":
    main()
