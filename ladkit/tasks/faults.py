"""Rewards that fail: every way a reward can go wrong ends as a NaN reward with a reason, plus one warning.

Lives with the tasks (below the trainer and the evaluators, which call it through ladkit.scoring.score). A NaN
reward makes the sample invalid in training/collect.build_batch: it is kept out of its group's baseline, gets
advantage 0 and is counted in `reward/failed`; evaluation counts it as wrong. Training goes on. The ways covered:
- task.score raises (or returns the wrong number of results) for the whole batch: the batch is scored
  again one completion at a time and only the completions that fail on their own are marked;
- a result that is not a RewardResult with a finite real-number reward (NaN, inf, None, a string, a bool);
- a custom reward that raises, returns a bad value or runs past its timeout (custom.py, via call_with_timeout).

Warnings are `RewardWarning`s, one per distinct error (type and message) per task, naming the first
completion's example that hit it. Hangs inside a built-in task's own score are bounded by that task
(math-verify and the code sandbox run with their own timeouts), not here.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ladkit.tasks.base import Example, RewardResult, RewardWarning

ERROR, TIMEOUT = "reward_error", "timeout"  # RewardResult.reason of a failed sample

_SEEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # task -> errors already warned about


class RewardTimeout(BaseException):  # noqa: N818 (BaseException: a reward's own `except Exception` cannot swallow it)
    """A reward call ran past its wall-clock limit."""


def failed(reason: str = ERROR) -> RewardResult:
    """The result of a sample without a reward."""
    return RewardResult(math.nan, reason=reason)


def warn_once(seen: set[str], key: str, message: str) -> None:
    """A RewardWarning with `message`, the first time `key` is seen in `seen`."""
    if key not in seen:
        seen.add(key)
        warnings.warn(" ".join(message.split()), RewardWarning, stacklevel=3)


def bad_value(value: Any) -> str | None:
    """Why `value` is not a usable reward (None when it is a finite real number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"returned {_short(value)} (not a number)"
    return None if math.isfinite(value) else f"returned a non-finite reward {value}"


def score_safely(task, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
    """task.score with its failures turned into NaN rewards (see the module docstring)."""
    seen = _seen(task)
    try:
        results = list(task.score(completions, examples))
        if len(results) != len(completions):
            raise ValueError(f"returned {len(results)} results for {len(completions)} completions")
    except Exception as error:
        key = f"{type(error).__name__}: {error}"
        warn_once(seen, key, f"task.score failed on the whole batch ({key}); scoring one completion at a time")
        return [_score_one(task, c, e, seen) for c, e in zip(completions, examples)]
    return [_checked(r, e, seen) for r, e in zip(results, examples)]


def _score_one(task, completion: str, example: Example, seen: set[str]) -> RewardResult:
    try:
        results = list(task.score([completion], [example]))
        if len(results) != 1:
            raise ValueError(f"returned {len(results)} results for 1 completion")
    except Exception as error:
        key = f"{type(error).__name__}: {error}"
        warn_once(seen, key, f"reward failed on example {example.id!r} ({key}); such samples get no reward")
        return failed()
    return _checked(results[0], example, seen)


def _checked(result: Any, example: Example, seen: set[str]) -> RewardResult:
    """`result` if it is a RewardResult with a finite reward, else a failed result (and a warning)."""
    if isinstance(result, RewardResult):
        problem = bad_value(result.reward)
        if problem is None:
            return result
        if result.reason in (ERROR, TIMEOUT):  # already failed and warned about (a custom reward)
            return RewardResult(math.nan, result.parts, result.reason, result.extracted)
    else:
        problem = f"returned {_short(result)} (not a RewardResult)"
    key = problem.split(" ")[0] + " " + type(result).__name__
    warn_once(seen, key, f"reward on example {example.id!r} {problem}; such samples get no reward")
    return failed()


def call_with_timeout(function: Callable[..., Any], args: tuple, timeout_s: float | None) -> Any:
    """function(*args), raising RewardTimeout after timeout_s seconds of wall-clock time (None or inf: no limit).

    In the main thread a SIGALRM timer interrupts the call (nothing is left running; C code that never
    returns to the interpreter is only interrupted when it does). Elsewhere (signals only reach the main
    thread) the call runs in a daemon thread that is abandoned on timeout: it runs on until the function
    returns, but training does not wait for it.
    """
    if timeout_s is None or not math.isfinite(timeout_s):
        return function(*args)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _with_alarm(function, args, timeout_s)
    return _with_thread(function, args, timeout_s)


def _with_alarm(function, args: tuple, timeout_s: float) -> Any:
    def expire(signum, frame):
        raise RewardTimeout

    start = time.monotonic()
    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # someone else's timer was running: give it back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


def _with_thread(function, args: tuple, timeout_s: float) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function(*args)
        except BaseException as error:  # handed to the caller below
            box["error"] = error

    thread = threading.Thread(target=run, name="ladkit-reward", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise RewardTimeout
    if "error" in box:
        raise box["error"]
    return box["value"]


def _seen(task) -> set[str]:
    try:
        return _SEEN.setdefault(task, set())
    except TypeError:  # not weak-referenceable: warn per call instead of per task
        return set()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
