"""The task contract: where prompts come from and how a completion is scored.

A task owns its data (train and held-out eval examples) and its reward. Rewards return their parts
for logging (e.g. `format` and `correct`) and a reason when they give 0, so a run folder shows *why*
a sample scored what it did. Model output is only ever parsed, never executed or passed to `eval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, str]  # {"role": "user", "content": "..."}


@dataclass
class Example:
    """One prompt with what is needed to score answers to it."""

    id: str
    prompt: str | list[Message]  # plain text, or chat messages rendered with the tokenizer's template
    answer: Any = None  # reference answer (a number, an expression target, tests, ...)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RewardResult:
    """A completion's reward, its named parts (logged), and why it got 0 when it did."""

    reward: float
    parts: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # e.g. "no_answer", "wrong", "timeout", "parse_error"
    extracted: str | None = None  # the answer parsed out of the completion, for diversity metrics


class Task(Protocol):
    """What the trainer needs from a task."""

    name: str

    def train_examples(self) -> Sequence[Example]:
        """The training prompts (deterministic for a given task config and seed)."""
        ...

    def eval_examples(self) -> Sequence[Example]:
        """Held-out prompts, disjoint from the training ones."""
        ...

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        """Rewards for completions[i] answering examples[i] (batched so slow verifiers can run in parallel)."""
        ...


class RewardWarning(UserWarning):
    """A reward could not be computed for some completions (they train with advantage 0); once per error."""


class GeneratedSplits:
    """Mixin for procedurally generated tasks: a held-out eval split drawn with its own seed, then a training
    split generated without the eval problems (`_build(seed, count, exclude)` and `_key(example)` given by the task).
    """

    EVAL_SEED_OFFSET = 1_000_000_007  # item i is seeded seed + i: a nearby seed would repeat the training items
    seed: int
    train_size: int
    eval_size: int
    _train: list[Example] | None = None
    _eval: list[Example] | None = None

    def _build(self, seed: int, count: int, exclude: frozenset) -> list[Example]:
        raise NotImplementedError

    def _key(self, example: Example):
        raise NotImplementedError

    def eval_examples(self) -> list[Example]:
        if self._eval is None:
            self._eval = self._build(self.seed + self.EVAL_SEED_OFFSET, self.eval_size, frozenset())
        return self._eval

    def train_examples(self) -> list[Example]:
        if self._train is None:
            held_out = frozenset(self._key(e) for e in self.eval_examples())
            self._train = self._build(self.seed, self.train_size, held_out)
        return self._train
