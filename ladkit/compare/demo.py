"""Synthetic run folders for the compare notebook and tests: SYNTHETIC numbers, not training results.

They follow the real layout (config.yaml, meta.json, metrics.jsonl with a final eval-only row, eval.jsonl,
tracked.jsonl) and tell the paper's story in caricature: LAD keeps its entropy and its policy tracks the
advantage-induced distribution softmax(A/eta) over a prompt's G completions; GRPO's entropy decays and its
policy piles onto the single best completion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

GROUP_SIZE = 8
EVAL_EVERY = 5
TRACKED_PROMPTS = ("Using 3, 5, 7 reach 22.", "Using 2, 9, 4 reach 17.")


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def _train_row(step: int, steps: int, lad: bool, rng: np.random.Generator) -> dict:
    """One step of plausible metrics: reward climbs for both, entropy and diversity only hold for LAD."""
    progress = step / max(steps - 1, 1)
    reward = 0.2 + (0.45 if lad else 0.4) * progress + rng.normal(0, 0.03)
    entropy = (0.9 - 0.1 * progress if lad else 0.9 - 0.6 * progress) + rng.normal(0, 0.02)
    return {
        "step": step,
        "reward/mean": round(float(reward), 4),
        "policy/entropy": round(float(entropy), 4),
        "diversity/distinct_correct": round(float(1 + (2.0 if lad else 0.6) * progress + rng.normal(0, 0.1)), 4),
        "diversity/dist3": round(float(0.6 - (0.05 if lad else 0.3) * progress + rng.normal(0, 0.01)), 4),
        "diversity/dist4": round(float(0.7 - (0.05 if lad else 0.3) * progress + rng.normal(0, 0.01)), 4),
        "loss/value": round(float(rng.normal(0, 0.05)), 4),
    }


def _eval_row(step: int, steps: int, lad: bool, rng: np.random.Generator) -> dict:
    """pass@k rises with k; LAD's wider policy gains more from extra samples (larger pass@4 - pass@1)."""
    progress = step / max(steps, 1)
    pass1 = 0.15 + (0.3 if lad else 0.28) * progress + rng.normal(0, 0.01)
    spread = 0.25 if lad else 0.1
    row = {f"eval/pass@{k}": round(float(min(pass1 + spread * np.log2(k) / 2, 1.0)), 4) for k in (1, 2, 4)}
    row["diversity/dist4"] = round(float(0.7 - (0.05 if lad else 0.3) * progress), 4)
    return {"step": step, **row}


def _tracked_rows(step: int, steps: int, lad: bool, rng: np.random.Generator) -> list[dict]:
    """Per tracked prompt: G completions, their rewards/advantages, target and policy distributions."""
    rows = []
    for index, prompt in enumerate(TRACKED_PROMPTS):
        prompt_rng = np.random.default_rng(index)  # the same completions at every step
        rewards = prompt_rng.choice([0.0, 0.5, 1.0], size=GROUP_SIZE, p=[0.4, 0.3, 0.3])
        advantages = (rewards - rewards.mean()) / (rewards.std() + 1e-6)
        target = _softmax(2.0 * advantages)  # softmax(A/eta) with 1/eta = 2
        collapsed = np.eye(GROUP_SIZE)[int(np.argmax(advantages))]
        end = target if lad else collapsed
        mix = step / max(steps - 1, 1)
        policy = (1 - mix) * np.full(GROUP_SIZE, 1 / GROUP_SIZE) + mix * end + rng.uniform(0, 0.01, GROUP_SIZE)
        policy /= policy.sum()
        sequence = policy * rng.uniform(0.9, 1.1, GROUP_SIZE)
        rows.append(
            {
                "step": step,
                "example_id": f"demo-{index}",
                "prompt": prompt,
                "completions": [f"completion {g} (synthetic)" for g in range(GROUP_SIZE)],
                "rewards": rewards.tolist(),
                "advantages": advantages.round(4).tolist(),
                "advantage_dist": target.round(4).tolist(),
                "policy_dist": policy.round(4).tolist(),
                "sequence_dist": (sequence / sequence.sum()).round(4).tolist(),
            }
        )
    return rows


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def make_demo_run(folder: Path, objective: str, seed: int, steps: int = 20) -> Path:
    """One synthetic run folder (completed) of `objective` ("lad" or "grpo") with `steps` steps."""
    lad = objective == "lad"
    rng = np.random.default_rng(1000 * seed + (1 if lad else 2))
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "objective": objective,
        "lad": {"divergence": "js", "inv_eta": 2.0},
        "seed": seed,
        "steps": steps,
        "task": {"name": "countdown"},
        "group_size": GROUP_SIZE,
        "synthetic": True,
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    meta = {"command": "demo", "status": "completed", "synthetic": True}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    rows = [_train_row(step, steps, lad, rng) for step in range(steps)]
    evals = [_eval_row(step, steps, lad, rng) for step in [*range(0, steps, EVAL_EVERY), steps]]
    for row in rows:  # eval rows are merged into the training row of the same step, as the trainer does
        row.update(next((e for e in evals if e["step"] == row["step"]), {}))
    _jsonl(folder / "metrics.jsonl", [*rows, evals[-1]])  # last row: step = steps, eval keys only
    _jsonl(folder / "eval.jsonl", [{**e, "checkpoint": f"checkpoints/step_{e['step']:06d}"} for e in evals[1:]])
    _jsonl(folder / "tracked.jsonl", [r for step in range(steps) for r in _tracked_rows(step, steps, lad, rng)])
    return folder


def make_demo_runs(root: str | Path, seeds: int = 3, steps: int = 20) -> list[Path]:
    """Synthetic LAD (JS) and GRPO runs, `seeds` seeds each, under `root`; returns their folders."""
    root = Path(root)
    return [
        make_demo_run(root / f"demo-{objective}-s{seed}", objective, seed, steps)
        for objective in ("lad", "grpo")
        for seed in range(seeds)
    ]
