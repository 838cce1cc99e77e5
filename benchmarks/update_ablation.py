"""Update ablation: one micro-batch of the trainer's forward/backward, with and without the shared prompt pass.

The H100 GPU check of 2026-11-27 found the update phase twice as slow as on 2026-11-26 (4.0 s against 2.1 s per
step) after the work-savers landed, while on the CPU they made it faster. This script times the pieces apart on
the GPU check's shapes (a random-init model of Qwen2.5-0.5B's shape, LoRA rank 16 on every linear layer, a
micro-batch of 2 prompts x 8 rows, prompts of 10-14 tokens left-padded, 256 response tokens):

- `full`: one forward over prompt + response (`prompt_index=None`), as before the savers;
- `shared`: one prompt pass per distinct prompt, its cache repeated to the rows, then the response pass
  (ladkit.models.logprobs, "Shared prompt pass");

each as the trainer runs it: with gradients (forward, fp32 log-probs, backward), with gradients and entropy
(the first mini-batch, which fills pi_old), and under no_grad with entropy (the pi_old recomputation). It then
profiles the slower training variant and prints its top operators.

    python benchmarks/update_ablation.py [--size 0.5b] [--prompt-lengths 14,512] [--repeats 5] [--out DIR]
(on a GPU; --size tiny smoke-runs it on a CPU)
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a bare checkout: nothing is installed on the GPU machine
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_env import environment, write_record  # noqa: E402
from gpu_check import SIZES, build_model  # noqa: E402

from ladkit.models.loading import ModelConfig, load_policy  # noqa: E402
from ladkit.models.logprobs import sequence_logprobs  # noqa: E402


def micro_batch(
    vocab: int, prompts: int, group: int, width: int, device: torch.device, prompt_length: int = 14, seed: int = 0
):
    """(input_ids, attention_mask [N, P + T], prompt_index [N]): left-padded prompts of `prompt_length` - 4 to
    `prompt_length` tokens, each
    repeated to `group` rows, then `width` response tokens (all real: a random model never stops)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max(1, prompt_length - 4), prompt_length + 1, (prompts,), generator=gen).tolist()
    pad = max(lengths)
    ids, mask = [], []
    for length in lengths:
        prompt = torch.randint(3, vocab, (length,), generator=gen)
        for _ in range(group):
            response = torch.randint(3, vocab, (width,), generator=gen)
            ids.append(torch.cat([torch.zeros(pad - length, dtype=torch.long), prompt, response]))
            mask.append(torch.cat([torch.zeros(pad - length, dtype=torch.long), torch.ones(length + width).long()]))
    index = torch.arange(prompts).repeat_interleave(group)
    return torch.stack(ids).to(device), torch.stack(mask).to(device), index.to(device)


def run_once(model, ids, mask, index, width: int, grad: bool, entropy: bool, shared: bool) -> None:
    with torch.set_grad_enabled(grad):
        response_mask = torch.ones(len(ids), width, dtype=torch.bool, device=ids.device)  # [N, T]
        logprobs, _ = sequence_logprobs(
            model, ids, mask, response_mask, 1.0, with_entropy=entropy, prompt_index=index if shared else None
        )  # the trainer's path: the lm_head on the response columns, the written-out gradient
        if grad:
            logprobs.sum().backward()


def timed(fn, device: torch.device, repeats: int, warmup: int = 2) -> list[float]:
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        begun = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - begun)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--prompts", type=int, default=2, help="distinct prompts in the micro-batch")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=256, help="response tokens")
    parser.add_argument("--prompt-lengths", default="14", help="comma-separated longest prompt lengths to time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--out", type=Path, default=None, help="write update_ablation.json here")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    result: dict = {
        **environment("transformers", "peft"),
        "torch": torch.__version__,
        "card": torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU",
        "size": args.size,
        "rows": args.prompts * args.group_size,
        "width": args.width,
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="ladkit-ablation-") as tmp:
        build_model(Path(tmp), args.size, device)
        model, _ = load_policy(ModelConfig(name_or_path=tmp, dtype="bfloat16", lora=True))
    model.to(device).train()
    variants = {
        "train": dict(grad=True, entropy=False),
        "train+entropy": dict(grad=True, entropy=True),
        "no_grad+entropy": dict(grad=False, entropy=True),
    }
    for prompt_length in [int(x) for x in args.prompt_lengths.split(",")]:
        ids, mask, index = micro_batch(
            SIZES[args.size]["vocab_size"], args.prompts, args.group_size, args.width, device, prompt_length
        )
        for name, kind in variants.items():
            for shared in (False, True):
                label = f"P{prompt_length} {name} {'shared' if shared else 'full'}"
                once = functools.partial(run_once, model, ids, mask, index, args.width, shared=shared, **kind)
                try:
                    times = timed(once, device, args.repeats)
                except torch.OutOfMemoryError:  # a long prompt without gradient checkpointing: say so, go on
                    result["variants"][label] = {"error": "out of memory"}
                    print(f"{label:>30}: out of memory", flush=True)
                    model.zero_grad(set_to_none=True)
                    torch.cuda.empty_cache()
                    continue
                result["variants"][label] = {"median_s": statistics.median(times), "all_s": times}
                print(
                    f"{label:>30}: {statistics.median(times) * 1e3:8.1f} ms  "
                    f"({', '.join(f'{t * 1e3:.0f}' for t in times)})",
                    flush=True,
                )
        write_record(result, args.out / "update_ablation.json" if args.out else None, quiet=True)  # survives a kill
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        pair = [f"P{prompt_length} train full", f"P{prompt_length} train shared"]  # the last prompt length's
        slow = max(pair, key=lambda k: result["variants"][k].get("median_s", 0.0))
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            run_once(model, ids, mask, index, args.width, grad=True, entropy=False, shared=slow.endswith("shared"))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(f"profile of '{slow}', top operators by {key}:")
        print(prof.key_averages().table(sort_by=key, row_limit=14, max_name_column_width=60))
    write_record(result, args.out / "update_ablation.json" if args.out else None)


if __name__ == "__main__":
    main()
