"""ClipCov, KLCov and EntAdv end to end: each preset builds and trains the built-in model for 2 steps through
the same trainer as LAD, logging its own metrics (EntAdv receives the policy's token entropies)."""

from __future__ import annotations

import json
import math

import pytest

from ladkit.config import build, to_dict
from ladkit.training.config import TrainConfig
from ladkit.training.loop import train
from ladkit.training.resolve import resolve

SMALL = {"steps": 2, "prompts_per_step": 4, "group_size": 4, "eval_every": 0, "checkpoint_every": 0, "eval_samples": 2}
TASK = {"train_size": 64, "eval_size": 4}
KEYS = {
    "clip-cov": ("clip_cov", "clip_cov/detached_frac"),
    "kl-cov": ("kl_cov", "kl_cov/penalised_frac"),
    "ent-adv": ("ent_adv", "ent_adv/bonus"),
}


def preset_config(preset: str) -> TrainConfig:
    data = to_dict(resolve(preset, [], {}))
    data.update(SMALL, task={**data["task"], **TASK})
    return build(TrainConfig, data)


@pytest.mark.parametrize("preset", sorted(KEYS))
def test_preset_trains_the_builtin_model(preset, tmp_path):
    objective, key = KEYS[preset]
    config = preset_config(preset)
    assert config.objective == objective and config.model.name_or_path == "builtin"
    train(config, tmp_path / preset)
    rows = [json.loads(line) for line in (tmp_path / preset / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if row["step"] < 2]
    assert len(steps) == 2 and all(key in row and math.isfinite(row["loss/value"]) for row in steps)
    if objective == "ent_adv":
        # the entropies EntAdv received are the current policy's: at step 0 (pi_theta starts at pi_old) their mean
        # is close to the rollouts' policy/entropy (same responses, averaged over micro-batches instead)
        assert steps[0]["ent_adv/entropy"] == pytest.approx(steps[0]["policy/entropy"], rel=0.1)
        assert steps[0]["ent_adv/entropy"] > 0
