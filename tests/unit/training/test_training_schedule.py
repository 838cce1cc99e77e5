"""The learning-rate schedule: warm-up then constant, linear or cosine decay over all optimiser steps."""

import pytest

from ladkit.config import build
from ladkit.training.config import TrainConfig
from ladkit.training.setup import schedule


def factor(kind: str, warmup: int = 0):
    config = build(TrainConfig, {"steps": 5, "mini_batches": 2, "optim": {"schedule": kind, "warmup_steps": warmup}})
    return schedule(config)  # 5 steps x 2 mini-batches x 1 epoch = 10 optimiser steps


def test_constant_with_warmup():
    f = factor("constant", warmup=3)
    assert [f(i) for i in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])


def test_linear_and_cosine_reach_zero_at_the_end():
    linear, cosine = factor("linear"), factor("cosine")
    assert linear(0) == 1.0 and linear(5) == pytest.approx(0.5) and linear(10) == 0.0
    assert cosine(5) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0, abs=1e-12)
