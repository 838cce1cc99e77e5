"""Training under faults: rewards that raise, hang, or return NaN or the wrong type for some completions,
and optimiser steps with a non-finite loss. The run goes on (or stops with a clear error), the failures are
counted and reported, and a skipped step leaves weights and optimiser state exactly as they were."""

from __future__ import annotations

import copy
import json
import math
import textwrap

import pytest
import torch
from test_train_builtin import rows_of, small_config

from ladkit.errors import LadkitError
from ladkit.tasks.base import RewardWarning
from ladkit.training import optimise
from ladkit.training.loop import train

torch.set_num_threads(1)

# A reward that fails on every EVERY-th call (a module-level counter: calls are made in record order).
REWARD = """
import math, time

calls = 0

def reward(completion, example):
    global calls
    i, calls = calls, calls + 1
    if i % {every}:
        return (len(completion) % 3) / 2
    {fault}
"""
FAULTS = {  # name: (statement, every, what the warning says)
    "raise": ('raise RuntimeError("fault injected")', 3, "raised RuntimeError: fault injected"),
    "nan": ("return math.nan", 3, "got nan"),
    "string": ('return "high"', 3, "got 'high'"),
    "none": ("return None", 3, "got None"),
    "hang": ("time.sleep(10)", 9, "timed out after 1 s"),
}
B, G = 2, 4  # prompts per step, completions per prompt: calls 0-7 score step 0, calls 8-15 step 1


@pytest.mark.parametrize("fault", FAULTS)
def test_reward_faults_leave_training_running(fault, tmp_path, monkeypatch):
    statement, every, message = FAULTS[fault]
    module = f"fault_reward_{fault}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(REWARD.format(every=every, fault=statement)))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = small_config(
        steps=2,
        prompts_per_step=B,
        group_size=G,
        eval_every=0,
        mini_batches=1,
        tracked_prompts=0,
        **{"task.reward": f"{module}:reward", "task.reward_timeout_s": 1.0},
    )
    run = tmp_path / "run"
    with pytest.warns(RewardWarning) as caught:
        train(config, run)
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    first = next(str(w.message) for w in caught if issubclass(w.category, RewardWarning))
    assert message in first and f"{module}:reward" in first, first
    rows = rows_of(run)
    for step in (0, 1):
        records = [json.loads(line) for line in (run / f"samples/step_{step:06d}.jsonl").read_text().splitlines()]
        failed = [j for j in range(B * G) if (step * B * G + j) % every == 0]  # the calls that failed
        assert rows[step]["reward/failed"] == len(failed)
        for j, record in enumerate(records):
            if j in failed:
                assert record["reward"] is None and record["advantage"] == 0.0  # NaN is written as null (strict JSON)
                assert record["reason"] == ("timeout" if fault == "hang" else "reward_error")
            else:
                assert math.isfinite(record["reward"])
        assert any(records[j]["advantage"] != 0 for j in range(B * G) if j not in failed)  # the rest still learn
    assert all(math.isfinite(rows[s]["loss/value"]) and rows[s]["optim/skipped_steps"] == 0 for s in (0, 1))


def poison_loss(monkeypatch, bad_calls):
    """Make the objective's loss NaN on the given (0-based) calls of objective_loss."""
    calls = {"n": 0}
    real = optimise.objective_loss

    def poisoned(*args, **kwargs):
        loss, metrics = real(*args, **kwargs)
        i, calls["n"] = calls["n"], calls["n"] + 1
        return (loss * math.nan, metrics) if bad_calls(i) else (loss, metrics)

    monkeypatch.setattr(optimise, "objective_loss", poisoned)


def test_a_non_finite_loss_skips_the_step_and_changes_nothing(tmp_path, monkeypatch):
    poison_loss(monkeypatch, lambda i: i == 1)  # step 0's second mini-batch (the optimiser has state by then)
    real_step, seen = optimise.mini_batch_step, []

    def watched(ctx, batch, rows, old):
        before = ([p.detach().clone() for p in ctx.parameters], copy.deepcopy(ctx.optimizer.state_dict()))
        metrics = real_step(ctx, batch, rows, old)
        weights, state = before
        unchanged = all(torch.equal(a, p) for a, p in zip(weights, ctx.parameters))
        same_state = _states_equal(state, ctx.optimizer.state_dict())
        seen.append((metrics is None, unchanged, same_state, all(p.grad is None for p in ctx.parameters)))
        return metrics

    monkeypatch.setattr(optimise, "mini_batch_step", watched)
    run = tmp_path / "run"
    train(small_config(steps=2, eval_every=0), run)
    assert seen[1] == (True, True, True, True)  # skipped; weights, optimiser state unchanged; no stale grads
    assert [s[:3] for s in seen[:1] + seen[2:]] == [(False, False, False)] * 3  # the others do step
    rows = rows_of(run)
    assert [rows[0]["optim/skipped_steps"], rows[1]["optim/skipped_steps"]] == [1, 0]
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"


def _states_equal(a: dict, b: dict) -> bool:
    if a["param_groups"] != b["param_groups"] or a["state"].keys() != b["state"].keys():
        return False
    return all(
        torch.equal(torch.as_tensor(x), torch.as_tensor(b["state"][k][name]))
        for k, entry in a["state"].items()
        for name, x in entry.items()
    )


def test_repeated_skips_stop_the_run_with_a_clear_error(tmp_path, monkeypatch):
    poison_loss(monkeypatch, lambda i: True)
    run = tmp_path / "run"
    with pytest.raises(LadkitError) as caught:
        train(small_config(steps=3, eval_every=0, max_skipped_steps=3), run)  # 2 mini-batches a step
    assert str(caught.value) == (
        "training stopped: 3 consecutive optimiser steps had a non-finite loss or gradient "
        "(lower optim.lr, or check rewards/advantages)"
    )
    assert json.loads((run / "meta.json").read_text())["status"] == "failed"
    assert [r["step"] for r in rows_of(run)] == [0]  # stopped in step 1, on its first mini-batch
