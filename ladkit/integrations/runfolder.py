"""Engine metrics -> ladkit run folders, so `ladkit compare` and the notebooks read TRL and verl runs next to ladkit's.

A run folder from an engine is an ordinary ladkit run folder (ladkit.runs.RunWriter): config.yaml (with
`engine: trl` or `engine: verl`, the objective and its section, seed, group geometry), meta.json, metrics.jsonl.
A metric is renamed to ladkit's key only where the quantity is the same (README glossary); other engine metrics
keep their own name under the engine's prefix (`trl/...`, `verl/...`), so nothing is dropped and nothing is
passed off as a ladkit quantity it is not.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, is_dataclass
from typing import Any

# TRL 1.16 GRPOTrainer log keys (grpo_trainer.py: _generate_and_score_completions, _compute_loss) -> ladkit keys.
TRL_KEYS = {
    "reward": "reward/mean",  # mean over the generation batch of the summed reward functions
    "reward_std": "reward/std",
    "frac_reward_zero_std": "reward/zero_variance_frac",
    "entropy": "policy/entropy",  # mean token entropy of the current policy over completion tokens
    "completions/mean_length": "completion/length_mean",
    "completions/max_length": "completion/length_max",
    "completions/clipped_ratio": "completion/truncated_frac",
    "learning_rate": "optim/lr",
    "grad_norm": "optim/grad_norm",
}

# verl 0.9.1 metric keys (trainer/ppo/metric_utils.py, ray_trainer.py) -> ladkit keys.
VERL_KEYS = {
    "critic/score/mean": "reward/mean",  # the task score before any KL-in-reward
    "actor/entropy": "policy/entropy",
    "response_length/mean": "completion/length_mean",
    "response_length/max": "completion/length_max",
    "response_length/clip_ratio": "completion/truncated_frac",
    "actor/lr": "optim/lr",
    "actor/grad_norm": "optim/grad_norm",
}
# verl validation: val-core/<data source>/<reward var>/mean@N (avg@N = pass@1 for 0/1 rewards) and
# best@k/mean (the bootstrap estimate of the best of k, = pass@k for 0/1 rewards).
VERL_VALIDATION = re.compile(r"^val-core/(?P<source>.+)/acc/(?:mean@\d+|best@(?P<k>\d+)/mean)$")


def rename(row: dict[str, Any], keys: dict[str, str], engine: str) -> dict[str, float]:
    """One engine log row -> ladkit keys where the quantity is the same, `engine/<key>` otherwise.

    Keys already in ladkit's `area/name` form from a ladkit objective (lad/*, ratio/*, loss/*, diversity/*,
    grpo/*, ...) are kept as they are; non-numbers and non-finite values are dropped (strict JSON)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if key in keys:
            out[keys[key]] = float(value)
        elif "/" in key and key.split("/", 1)[0] in LADKIT_AREAS:
            out[key] = float(value)
        else:
            out[f"{engine}/{key}"] = float(value)
    return out


LADKIT_AREAS = ("lad", "ratio", "loss", "diversity", "grpo", "flowrl", "clip_cov", "kl_cov", "ent_adv", "eval")


def verl_validation(row: dict[str, Any]) -> dict[str, float]:
    """verl's val-core accuracy keys as eval/pass@1 and eval/pass@k (one data source) or eval/<source>/pass@k."""
    matches = [(VERL_VALIDATION.match(key), value) for key, value in row.items()]
    matches = [(m, v) for m, v in matches if m and isinstance(v, (int, float))]
    sources = {m["source"] for m, _ in matches}
    out = {}
    for match, value in matches:
        prefix = "eval" if len(sources) == 1 else f"eval/{match['source']}"
        out[f"{prefix}/pass@{match['k'] or 1}"] = float(value)
    return out


def section(config: Any) -> dict[str, Any]:
    """An objective config (dataclass) as a config.yaml section."""
    return asdict(config) if is_dataclass(config) else dict(config or {})
