"""User-written rewards, named by dotted path: `package.module:function`.

Owns loading the function and adapting what it returns. The function is called as
`function(completion: str, example: Example)` and may return a float, a `RewardResult`, or a dict with
"reward" and optional "parts" / "reason" / "extracted" (any other numeric keys are taken as parts).
It runs in the calling process, one completion at a time; an exception in it is a bug in the reward and
stops the run with a one-line error naming the function and the example.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from ladkit.errors import LadkitError
from ladkit.tasks.base import Example, RewardResult

RewardFunction = Callable[[str, Example], Any]


def load_reward(path: str) -> RewardFunction:
    """The function named by `package.module:function` (a one-line LadkitError when it cannot be found)."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise LadkitError(f"reward {path!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or the module itself failing (SyntaxError, ...)
        raise LadkitError(f"reward {path!r}: cannot import {module_name!r} ({type(error).__name__}: {error})") from None
    function = module
    for part in attribute.split("."):  # "module:Class.method" works too
        function = getattr(function, part, None)
        if function is None:
            raise LadkitError(f"reward {path!r}: {module_name!r} has no attribute {attribute!r}")
    if not callable(function):
        raise LadkitError(f"reward {path!r}: {attribute!r} is not callable")
    return function


def to_result(value: Any, path: str) -> RewardResult:
    """A RewardResult from what a reward function returned."""
    if isinstance(value, RewardResult):
        return value
    if isinstance(value, dict):
        if "reward" not in value:
            raise LadkitError(f"reward {path!r} returned a dict without 'reward' (keys: {', '.join(map(str, value))})")
        extra = {k: float(v) for k, v in value.items() if k not in _DICT_KEYS and isinstance(v, (int, float))}
        parts = {**extra, **{k: float(v) for k, v in value.get("parts", {}).items()}}
        return RewardResult(_number(value["reward"], path), parts, value.get("reason"), value.get("extracted"))
    return RewardResult(_number(value, path))


_DICT_KEYS = ("reward", "parts", "reason", "extracted")


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise LadkitError(f"reward {path!r} must return a finite number, a RewardResult or a dict, got {value!r}")
    return float(value)


class CustomReward:
    """Scores completions with a user function loaded from a dotted path."""

    def __init__(self, path: str):
        self.path = path
        self.function = load_reward(path)

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        results = []
        for completion, example in zip(completions, examples, strict=True):
            try:
                value = self.function(completion, example)
            except Exception as error:
                raise LadkitError(
                    f"reward {self.path!r} raised {type(error).__name__} on example {example.id!r}: {error}"
                ) from error
            results.append(to_result(value, self.path))
        return results


class WithCustomReward:
    """A task whose data comes from `task` and whose rewards come from `reward`."""

    def __init__(self, task: Any, reward: CustomReward):
        self.task, self.reward = task, reward
        self.name = task.name

    def train_examples(self) -> Sequence[Example]:
        return self.task.train_examples()

    def eval_examples(self) -> Sequence[Example]:
        return self.task.eval_examples()

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        return self.reward.score(completions, examples)

    def __getattr__(self, name: str) -> Any:  # reference(), stats, close(), ... of the wrapped task
        if name == "task":  # not set yet (copy / unpickling): avoid recursing forever
            raise AttributeError(name)
        return getattr(self.task, name)
