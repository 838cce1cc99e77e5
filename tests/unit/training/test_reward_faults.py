"""Reward faults and numeric extremes, without training: per-completion isolation of custom rewards
(raise, NaN, wrong type, hang), the per-completion fallback when task.score fails for a whole batch, and
finite losses and gradients of every objective at extreme advantages and long sequences."""

from __future__ import annotations

import math
import textwrap
import threading
import time
import warnings

import pytest
import torch

from ladkit.objectives import DIVERGENCES, FlowRLConfig, GRPOConfig, LADConfig, objective_loss
from ladkit.tasks.base import Example, RewardResult, RewardWarning
from ladkit.tasks.custom import CustomReward
from ladkit.tasks.faults import score_safely

torch.set_num_threads(1)

REWARDS = """
import math, time

def picky(completion, example):
    if completion == "boom":
        raise ZeroDivisionError("oops")
    return {"nan": math.nan, "text": "high", "none": None, "inf": math.inf, "flag": True}.get(completion, 1.0)

def sleepy(completion, example):
    if completion == "slow":
        time.sleep(10)
    return 0.5
"""


@pytest.fixture
def module(tmp_path, monkeypatch):
    (tmp_path / "fault_rewards_unit.py").write_text(textwrap.dedent(REWARDS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "fault_rewards_unit"


def examples(n: int) -> list[Example]:
    return [Example(id=f"e{i}", prompt="p") for i in range(n)]


def test_every_bad_value_becomes_a_nan_reward_with_a_reason(module):
    reward = CustomReward(f"{module}:picky")
    texts = ["ok", "boom", "nan", "text", "none", "inf", "flag", "boom"]
    with pytest.warns(RewardWarning) as caught:
        results = reward.score(texts, examples(len(texts)))
    assert results[0] == RewardResult(1.0)
    assert all(math.isnan(r.reward) for r in results[1:])
    assert [r.reason for r in results[1:]] == ["reward_error"] * 7
    messages = [str(w.message) for w in caught]
    # one warning per distinct error: the two ZeroDivisionErrors give one, each bad value its own
    assert sum("ZeroDivisionError: oops" in m for m in messages) == 1
    assert "fault_rewards_unit:picky" in messages[0] and "'e1'" in messages[0]
    assert len(messages) == 6 and all("\n" not in m for m in messages)


def test_a_hanging_reward_is_cut_off_at_its_timeout(module):
    reward = CustomReward(f"{module}:sleepy", timeout_s=0.5)
    start = time.perf_counter()
    with pytest.warns(RewardWarning, match="timed out after 0.5 s"):
        results = reward.score(["fast", "slow", "fast"], examples(3))
    assert time.perf_counter() - start < 3  # not the 10 s sleep
    assert [r.reward for r in results[::2]] == [0.5, 0.5]
    assert math.isnan(results[1].reward) and results[1].reason == "timeout"


class BatchFailingTask:
    """task.score fails for any batch holding "bad"; alone, "bad" raises and "odd" returns a wrong type."""

    def score(self, completions, examples):
        if len(completions) > 1 and "bad" in completions:
            raise RuntimeError("batch verifier crashed")
        if completions == ["bad"]:
            raise KeyError("bad")
        return ["not a result" if c == "odd" else RewardResult(float(len(c))) for c in completions]


def test_a_whole_batch_failure_falls_back_to_one_completion_at_a_time():
    task = BatchFailingTask()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = score_safely(task, ["ab", "bad", "odd", "abcd"], examples(4))
    assert [r.reward for r in results[::3]] == [2.0, 4.0]
    assert math.isnan(results[1].reward) and math.isnan(results[2].reward)
    assert {r.reason for r in results[1:3]} == {"reward_error"}
    messages = " | ".join(str(w.message) for w in caught)
    assert "RuntimeError: batch verifier crashed" in messages and "KeyError" in messages
    assert "returned 'not a result'" in messages


def test_a_wrong_number_of_results_falls_back_too():
    class Short:
        def score(self, completions, examples):
            return [RewardResult(1.0)]  # one result whatever it is asked

    with pytest.warns(RewardWarning, match="returned 1 results for 3 completions"):
        results = score_safely(Short(), ["a", "b", "c"], examples(3))
    assert [r.reward for r in results] == [1.0, 1.0, 1.0]


# Extreme inputs: |A| up to 1e4 and sequence log-ratios summing to +-1e4 over T = 4096 tokens.
N, T = 8, 4096


def extreme_inputs():
    generator = torch.Generator().manual_seed(0)
    advantages = torch.tensor([1e4, -1e4, 3e3, -3e3, 1.0, -1.0, 0.0, 1e4])  # [N]
    old = -torch.rand(N, T, generator=generator) * 5  # [N, T]
    # per-token log-ratio +-1e4 / T so each sequence sums to +-1e4 (alternating sign by row), plus a small noise
    shift = torch.tensor([1, -1, 1, -1, 1, -1, 1, -1.0])[:, None] * (1e4 / T)  # [N, 1]
    new = (old + shift + 0.01 * torch.randn(N, T, generator=generator)).requires_grad_(True)  # [N, T]
    mask = torch.ones(N, T, dtype=torch.bool)  # [N, T]
    return new, old, advantages, mask


CONFIGS = [
    *(("lad", LADConfig(divergence=d, level=level)) for d in sorted(DIVERGENCES) for level in ("sequence", "token")),
    ("grpo", GRPOConfig()),
    ("grpo", GRPOConfig(beta=0.1)),
    ("flowrl", FlowRLConfig()),
]


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=lambda c: str(getattr(c, "divergence", c))[:12])
def test_objectives_stay_finite_at_extreme_advantages_and_long_sequences(name, config):
    new, old, advantages, mask = extreme_inputs()
    extra = {}
    if name == "grpo" and config.beta:
        extra["ref_logprobs"] = old - 1e4 / T  # the reference far away too
    if name == "flowrl":
        extra["log_z"] = torch.zeros(N, requires_grad=True)  # [N]
    loss, metrics = objective_loss(
        name, config, new, old, advantages, mask, **extra, max_completion_length=T, num_tokens=float(mask.sum())
    )
    loss.backward()
    assert torch.isfinite(loss), (name, config)
    assert torch.isfinite(new.grad).all(), (name, config)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values()), (name, config)


def test_the_timeout_also_holds_off_the_main_thread(module):
    # signals only reach the main thread: there the call runs in a daemon thread that is abandoned
    reward = CustomReward(f"{module}:sleepy", timeout_s=0.5)
    box = {}
    worker = threading.Thread(target=lambda: box.update(results=reward.score(["slow", "fast"], examples(2))))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        worker.start()
        worker.join(5)
    assert time.perf_counter() - start < 3 and not worker.is_alive()
    assert box["results"][0].reason == "timeout" and box["results"][1].reward == 0.5


def test_a_timer_set_by_someone_else_is_given_back(module):
    import signal

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        assert CustomReward(f"{module}:sleepy", timeout_s=0.2).score(["fast"], examples(1))[0].reward == 0.5
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 1.0  # still counting down
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired
