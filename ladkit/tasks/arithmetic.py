"""Arithmetic and grade-school maths from reasoning-gym generators, scored with math-verify.

Owns the `arithmetic` task (reasoning-gym's `basic_arithmetic`: "-33 / 11 + -22" -> -25) and the
`gsm_symbolic` task (templated GSM8K-style word problems with integer answers). Both generate offline.

    compact  arithmetic: the expression without spaces then "=", e.g. "-33/11+-22=", completion "-25";
             gsm_symbolic: the question then "\\nAnswer:". The reward reads the completion's first line.
    chat     the question in one user message asking for the final answer in \\boxed{}.

Held-out problems come from a distant generator seed and are deduplicated against training by question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ladkit.errors import LadkitError
from ladkit.tasks.base import Example, GeneratedSplits, RewardResult
from ladkit.tasks.mathverify import MathVerifyScorer, extract_answer, first_line


@dataclass
class ArithmeticConfig:
    """The `task.arithmetic` section, read by the arithmetic and gsm_symbolic tasks."""

    generator_options: dict[str, Any] = field(default_factory=dict)
    """Extra reasoning-gym generator settings, e.g. {max_digits: 3} (on top of the small defaults below)."""

    def __post_init__(self) -> None:
        if not isinstance(self.generator_options, dict):
            raise LadkitError(f"task.arithmetic.generator_options must be a mapping, got {self.generator_options!r}")


# Small problems by default, so the built-in character-level model can learn them; widen via options.
DEFAULT_OPTIONS = {
    "basic_arithmetic": {"min_terms": 2, "max_terms": 3, "min_digits": 1, "max_digits": 2},
    "gsm_symbolic": {},
}
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@lru_cache(maxsize=16)
def _generate(generator: str, seed: int, count: int, options: tuple, exclude: frozenset) -> tuple[dict, ...]:
    """`count` entries with distinct questions (none in `exclude`), in generator order."""
    import reasoning_gym

    try:
        dataset = reasoning_gym.create_dataset(generator, seed=seed, size=10 * count + 100, **dict(options))
    except (TypeError, AssertionError) as error:  # an unknown or invalid generator option
        raise LadkitError(f"{generator}: bad generator option(s) {dict(options)}: {error}") from None
    entries, seen = [], set(exclude)
    for index in range(len(dataset)):
        if len(entries) == count:
            break
        entry = dataset[index]
        if entry["question"] not in seen:
            seen.add(entry["question"])
            entries.append({**entry, "index": index})
    if len(entries) < count:
        raise LadkitError(f"{generator}: only {len(entries)} distinct problems for {dict(options)}; ask for fewer")
    return tuple(entries)


class ArithmeticTask(GeneratedSplits):
    """A reasoning-gym maths generator (`basic_arithmetic` or `gsm_symbolic`) with a math-verify reward."""

    def __init__(
        self,
        generator: str = "basic_arithmetic",
        prompt_style: str = "chat",
        seed: int = 0,
        train_size: int = 2000,
        eval_size: int = 200,
        generator_options: dict | None = None,
        scorer: MathVerifyScorer | None = None,
    ):
        if generator not in DEFAULT_OPTIONS:
            raise LadkitError(f"unknown arithmetic generator {generator!r}; valid: {', '.join(DEFAULT_OPTIONS)}")
        if prompt_style not in ("compact", "chat"):
            raise LadkitError(f"{generator}: prompt_style must be 'compact' or 'chat', got {prompt_style!r}")
        self.generator, self.prompt_style, self.seed = generator, prompt_style, seed
        self.name = "arithmetic" if generator == "basic_arithmetic" else generator
        self.train_size, self.eval_size = train_size, eval_size
        self.options = {**DEFAULT_OPTIONS[generator], **(generator_options or {})}
        self.scorer = scorer or MathVerifyScorer()

    def _build(self, seed: int, count: int, exclude: frozenset) -> list[Example]:
        options = tuple(sorted(self.options.items()))
        entries = _generate(self.generator, seed, count, options, exclude) if count else ()
        return [self._example(seed, entry) for entry in entries]

    def _example(self, seed: int, entry: dict) -> Example:
        meta = entry["metadata"]
        metadata = {"question": entry["question"], "seed": seed, "source_index": entry["index"]}
        if "answer_cot" in meta:  # gsm_symbolic's worked solution, ending in "#### <answer>"
            metadata["solution"] = meta["answer_cot"]
        if "expression" in meta:
            metadata["expression"] = meta["expression"]
        example_id = f"{self.name}-{seed}-{entry['index']}"
        return Example(example_id, self._prompt(entry), str(entry["answer"]), metadata)

    def _prompt(self, entry: dict):
        if self.prompt_style == "chat":
            return [{"role": "user", "content": f"{entry['question']}\n\n{BOXED_INSTRUCTION}"}]
        if self.generator == "basic_arithmetic":
            return entry["metadata"]["expression"].replace(" ", "") + "="
        return f"{entry['question']}\nAnswer:"

    def _key(self, example: Example):
        """What makes two problems the same (eval problems are kept out of training)."""
        return example.metadata["question"]

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        extract = first_line if self.prompt_style == "compact" else extract_answer
        return self.scorer.score([extract(text) for text in completions], [ex.answer for ex in examples])

    def reference(self, example: Example) -> str:
        """A completion that scores 1.0: the bare answer (compact) or a boxed one after any worked solution."""
        if self.prompt_style == "compact":
            return example.answer
        steps = example.metadata.get("solution", "").rsplit("####", 1)[0].strip()
        return f"{steps}\n\nThe answer is \\boxed{{{example.answer}}}.".strip()

    def close(self) -> None:
        self.scorer.close()
