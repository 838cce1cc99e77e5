"""Countdown: reach a target with every given number used exactly once (+ - * / and parentheses).

Owns the countdown task: problems from reasoning-gym's generator, the two prompt styles, the reward, the
reference completions for a supervised warm start, and a brute-force solver.

    compact  prompt "7,5,9,3->36:" (numbers in the generator's order, no spaces); the completion is the bare
             expression, "(7+5)*(9-3)", ended by EOS; the reward reads the completion up to its first newline.
    chat     one user message in words; the reward reads the last <answer>...</answer> block.

The reward uses `expressions.py` (never reasoning-gym's scorer, which runs sympy's parser on model text):
parts `format` (an expression was parsed) and `correct` (every number used exactly once, value exactly the
target); reward = correct. `extracted` is the canonical form, so reorderings count as one distinct answer.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ladkit.errors import LadkitError
from ladkit.tasks.base import Example, GeneratedSplits, Message, RewardResult
from ladkit.tasks.expressions import BinOp, ExpressionError, Node, Num, canonical, evaluate, literals, parse_expression

MAX_NUMBERS = 6  # reasoning-gym's generator slows down and answers stop fitting short completions


@dataclass
class CountdownConfig:
    """The `task.countdown` section: how countdown problems are generated."""

    num_numbers: int = 4
    """Numbers per problem (4 gives several distinct solutions per problem; 3 usually one)."""
    generator_options: dict[str, Any] = field(default_factory=dict)
    """Extra reasoning-gym countdown settings, e.g. {max_target: 100}."""

    def __post_init__(self) -> None:
        if not 2 <= self.num_numbers <= MAX_NUMBERS:
            raise LadkitError(f"task.countdown.num_numbers must be in 2..{MAX_NUMBERS}, got {self.num_numbers}")
        if not isinstance(self.generator_options, dict):
            raise LadkitError(f"task.countdown.generator_options must be a mapping, got {self.generator_options!r}")


# docs/design.md 9: values 1-10 and targets 10-40 give 4-number problems a median of 5 distinct solutions.
DEFAULT_GENERATOR = {"min_value": 1, "max_value": 10, "min_target": 10, "max_target": 40}
# reasoning-gym seeds item i with Random(seed + i): held-out items start this far away, so the two splits
# never draw the same generator state (a dedup by problem then removes chance collisions).
MAX_SOLVER_NUMBERS = 5
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)

CHAT_TEMPLATE = (
    "Using the numbers {numbers}, write an arithmetic expression that equals {target}. "
    "Use each number exactly once; you may use +, -, *, / and parentheses. "
    "Think it through, then give only the final expression (no '=' and no target) inside <answer></answer> "
    "tags, for example <answer>(1+2)*3-4</answer>."
)


def compact_prompt(numbers: Sequence[int], target: int) -> str:
    """`"7,5,9,3->36:"`: the exact prompt text of the compact style (and of the built-in model)."""
    return ",".join(str(n) for n in numbers) + f"->{target}:"


def chat_prompt(numbers: Sequence[int], target: int) -> list[Message]:
    return [{"role": "user", "content": CHAT_TEMPLATE.format(numbers=", ".join(map(str, numbers)), target=target)}]


def problem_key(numbers: Sequence[int], target: int) -> tuple[tuple[int, ...], int]:
    """Order-free identity of a problem: the splits are disjoint in this key."""
    return tuple(sorted(numbers)), int(target)


# ---------------------------------------------------------------------------------------------- reward


def extract_answer(completion: str, prompt_style: str) -> str | None:
    """The answer text: the first line (compact) or the last <answer> block (chat); None when absent."""
    if prompt_style == "compact":
        text = completion.split("\n", 1)[0].strip()
    else:
        blocks = _ANSWER.findall(completion)
        text = blocks[-1].strip() if blocks else ""
    return text or None


def score_expression(answer: str | None, numbers: Sequence[int], target: int) -> RewardResult:
    """The countdown reward of one extracted answer (see the module docstring)."""
    if answer is None:
        return RewardResult(0.0, {"format": 0.0, "correct": 0.0}, reason="no_answer")
    try:
        node = parse_expression(answer)
    except ExpressionError as error:
        return RewardResult(0.0, {"format": 0.0, "correct": 0.0}, reason=f"parse_error: {error}")
    form = canonical(node)
    if sorted(literals(node)) != sorted(numbers):
        return RewardResult(0.0, {"format": 1.0, "correct": 0.0}, reason="wrong_numbers", extracted=form)
    try:
        value = evaluate(node)
    except ExpressionError:  # e.g. x/(3-3): parsed and uses the numbers, but has no value
        value = None
    if value != target:
        return RewardResult(0.0, {"format": 1.0, "correct": 0.0}, reason="wrong_value", extracted=form)
    return RewardResult(1.0, {"format": 1.0, "correct": 1.0}, extracted=form)


# ---------------------------------------------------------------------------------------------- solver


def _combinations(items: tuple[tuple[Fraction, Node], ...]):
    """Every expression tree over all `items` (value, node), yielded at the root."""
    if len(items) == 1:
        yield items[0]
        return
    for i, j in itertools.combinations(range(len(items)), 2):
        rest = tuple(item for k, item in enumerate(items) if k not in (i, j))
        (va, a), (vb, b) = items[i], items[j]
        options = [(va + vb, BinOp("+", a, b)), (va - vb, BinOp("-", a, b)), (vb - va, BinOp("-", b, a))]
        options.append((va * vb, BinOp("*", a, b)))
        options += [(va / vb, BinOp("/", a, b))] if vb else []
        options += [(vb / va, BinOp("/", b, a))] if va else []
        for combined in options:
            yield from _combinations((*rest, combined))


@lru_cache(maxsize=4096)
def _solutions(numbers: tuple[int, ...], target: int) -> frozenset[str]:
    leaves = tuple((Fraction(n), Num(n)) for n in numbers)
    return frozenset(canonical(node) for value, node in _combinations(leaves) if value == target)


def solutions(numbers: Sequence[int], target: int) -> frozenset[str]:
    """Canonical forms of every solution (rational intermediates allowed, as the reward allows them).

    Brute force: ~4k trees for 4 numbers (tens of ms, cached); refused above 5 numbers (~230k trees).
    """
    if len(numbers) > MAX_SOLVER_NUMBERS:
        raise LadkitError(f"solutions() enumerates at most {MAX_SOLVER_NUMBERS} numbers, got {len(numbers)}")
    return _solutions(tuple(sorted(numbers)), int(target))


# ------------------------------------------------------------------------------------------------ data


@lru_cache(maxsize=16)
def _generate(seed: int, count: int, num_numbers: int, options: tuple, exclude: frozenset) -> tuple[Example, ...]:
    """`count` problems with distinct keys (none in `exclude`), from reasoning-gym, in generator order.

    Cached: reasoning-gym's generator costs ~5 ms a problem (sympy), and tasks are rebuilt per command.
    """
    import reasoning_gym

    generator = reasoning_gym.create_dataset(
        "countdown", seed=seed, size=10 * count + 100, min_numbers=num_numbers, max_numbers=num_numbers, **dict(options)
    )
    examples, seen = [], set(exclude)
    for index in range(len(generator)):
        if len(examples) == count:
            return tuple(examples)
        try:
            meta = generator[index]["metadata"]
        except ValueError:  # reasoning-gym gives up on an index after 100 draws outside the target range
            continue
        key = problem_key(meta["numbers"], meta["target"])
        if key not in seen:
            seen.add(key)
            examples.append(_example(seed, index, meta))
    raise LadkitError(
        f"countdown: only {len(examples)} distinct problems of {num_numbers} numbers for {dict(options)}; "
        "ask for fewer (train_size / eval_size) or widen the value and target ranges"
    )


def _example(seed: int, index: int, meta: dict) -> Example:
    numbers, target = [int(n) for n in meta["numbers"]], int(meta["target"])
    metadata = {
        "numbers": numbers,
        "target": target,
        "solution": meta["expression"].replace(" ", ""),  # reasoning-gym's own solution, e.g. "10*(9-7)+6"
        "seed": seed,
        "source_index": index,
    }
    return Example(id=f"countdown-{seed}-{index}", prompt="", answer=target, metadata=metadata)


class CountdownTask(GeneratedSplits):
    """Countdown problems from reasoning-gym with a disjoint held-out split; see the module docstring."""

    name = "countdown"

    def __init__(
        self,
        prompt_style: str = "compact",
        seed: int = 0,
        train_size: int = 2000,
        eval_size: int = 200,
        num_numbers: int = 4,
        generator_options: dict | None = None,
    ):
        if prompt_style not in ("compact", "chat"):
            raise LadkitError(f"countdown: prompt_style must be 'compact' or 'chat', got {prompt_style!r}")
        self.prompt_style, self.seed, self.num_numbers = prompt_style, seed, num_numbers
        self.train_size, self.eval_size = train_size, eval_size
        self.generator_options = {**DEFAULT_GENERATOR, **(generator_options or {})}

    def _build(self, seed: int, count: int, exclude: frozenset) -> list[Example]:
        options = tuple(sorted(self.generator_options.items()))
        try:
            examples = _generate(seed, count, self.num_numbers, options, exclude) if count else ()
        except (TypeError, AssertionError) as error:  # reasoning-gym's config rejected an option
            raise LadkitError(f"countdown: bad generator option(s) {self.generator_options}: {error}") from None
        return [self._with_prompt(example) for example in examples]

    def _with_prompt(self, example: Example) -> Example:
        numbers, target = example.metadata["numbers"], example.metadata["target"]
        prompt = compact_prompt(numbers, target) if self.prompt_style == "compact" else chat_prompt(numbers, target)
        return Example(example.id, prompt, example.answer, dict(example.metadata))

    def _key(self, example: Example):
        """What makes two problems the same (eval problems are kept out of training)."""
        return problem_key(example.metadata["numbers"], example.answer)

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        return [
            score_expression(extract_answer(text, self.prompt_style), ex.metadata["numbers"], ex.answer)
            for text, ex in zip(completions, examples, strict=True)
        ]

    def reference(self, example: Example) -> str:
        """A completion that scores 1.0: reasoning-gym's solution, bare (compact) or in <answer> tags (chat)."""
        solution = example.metadata["solution"]
        return solution if self.prompt_style == "compact" else f"<answer>{solution}</answer>"

    def close(self) -> None:
        """Nothing to release (the interface matches the tasks that own verifier processes)."""
