"""User-written rewards, named by dotted path: `package.module:function`.

Owns loading the function and adapting what it returns. The function is called as
`function(completion: str, example: Example)` and may return a float, a `RewardResult`, or a dict with
"reward" and optional "parts" / "reason" / "extracted" (any other numeric keys are taken as parts).
It runs in the calling process, one completion at a time, each call bounded by `timeout_s` seconds of
wall-clock time (faults.call_with_timeout: a SIGALRM timer in the main thread; elsewhere a daemon
thread that is abandoned, still running, when it times out). A call that raises, returns something that
is not a finite number (NaN, None, a string, ...) or times out gives that completion a NaN reward (reason
"reward_error" or "timeout"): it trains with advantage 0, is counted in `reward/failed`, and the first
occurrence of each distinct error is reported as a RewardWarning naming the function and the example.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any

from ladkit.errors import LadkitError
from ladkit.tasks.base import Example, RewardResult
from ladkit.tasks.faults import ERROR, TIMEOUT, RewardTimeout, call_with_timeout, failed, warn_once

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


DEFAULT_TIMEOUT_S = 10.0  # wall-clock limit of one call when none is given (read when a reward is built)


class CustomReward:
    """Scores completions with a user function loaded from a dotted path, one isolated call each.

    timeout_s: wall-clock limit of one call (None: DEFAULT_TIMEOUT_S; math.inf: no limit).
    """

    def __init__(self, path: str, timeout_s: float | None = None):
        self.path = path
        self.timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
        self.function = load_reward(path)
        self.seen: set[str] = set()  # errors already warned about

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        return [self.score_one(c, e) for c, e in zip(completions, examples, strict=True)]

    def score_one(self, completion: str, example: Example) -> RewardResult:
        """The reward of one completion; a failed result (NaN) when the function fails on it."""
        try:
            return to_result(call_with_timeout(self.function, (completion, example), self.timeout_s), self.path)
        except RewardTimeout:
            key, reason = f"timed out after {self.timeout_s:g} s", TIMEOUT
        except LadkitError as error:  # a bad return value (to_result)
            key, reason = str(error).removeprefix(f"reward {self.path!r} "), ERROR
        except Exception as error:
            key, reason = f"raised {type(error).__name__}: {error}", ERROR
        warn_once(self.seen, key, f"reward {self.path!r} {key} on example {example.id!r}; such samples get no reward")
        return failed(reason)


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
