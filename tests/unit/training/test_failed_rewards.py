"""A reward that fails on every sample (raises, times out) gives no learning signal: after
max_failed_reward_steps consecutive such steps the run stops with a one-line error and status failed, instead of
ending "completed" (issue 20.3)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from ladkit.errors import LadkitError
from ladkit.training.loop import _check_rewards


def _ctx(limit: int, world_size: int = 1):
    config = SimpleNamespace(prompts_per_step=4, group_size=4, max_failed_reward_steps=limit)
    return SimpleNamespace(config=config, info=SimpleNamespace(world_size=world_size))


def test_the_count_runs_over_consecutive_all_failed_steps_only():
    ctx = _ctx(limit=3)
    count = 0
    for failed in (16, 15, 16, 16):  # 16 = every one of 4 prompts x 4 samples; 15: one sample scored
        count = _check_rewards(ctx, {"reward/failed": failed}, count)
    assert count == 2  # the step with 15 failures reset the count
    with pytest.raises(LadkitError, match=r"^training stopped: every reward failed in 3 consecutive steps"):
        _check_rewards(ctx, {"reward/failed": 16}, count)
    # limit 0: never stops; two processes: each has 2 prompts x 4 = 8 samples, the row holds their mean
    assert _check_rewards(_ctx(limit=0), {"reward/failed": 16}, 99) == 100
    assert _check_rewards(_ctx(limit=3, world_size=2), {"reward/failed": 8.0}, 0) == 1


def test_a_run_whose_reward_always_raises_stops_failed(tmp_path, monkeypatch):
    (tmp_path / "broken_reward.py").write_text("def reward(completion, example):\n    raise RuntimeError('no')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from ladkit.config import build
    from ladkit.training.config import TrainConfig
    from ladkit.training.loop import train

    config = build(
        TrainConfig,
        {"steps": 5, "prompts_per_step": 2, "group_size": 2, "eval_every": 0, "tracked_prompts": 0,
         "max_failed_reward_steps": 2, "task": {"train_size": 8, "eval_size": 2, "reward": "broken_reward:reward"}},
    )  # fmt: skip
    with pytest.raises(LadkitError, match="every reward failed in 2 consecutive steps"):
        train(config, tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0, 1] and all(row["reward/failed"] == 4 for row in rows)
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["status"] == "failed"
