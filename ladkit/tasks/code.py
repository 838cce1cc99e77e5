"""Code tasks: a prompt, tests in `Example.answer`, and a reward from running the completion's code in the sandbox.

Owns code extraction, the code reward and `CodeTask` (data loading, splits and field mapping are
`DatasetTask`'s; row schemas and presets are in `code_data.py`; execution is `ladkit.sandbox`).

- Extraction, in order: the last closed ```python block, the last closed fenced block of any language, an
  unclosed ```python block running to the end (a truncated completion), else the whole completion when it
  has no fence (plain code; one that does not parse scores 0 with "syntax_error"). Nothing -> "no_code".
- Reward: the fraction of tests passed (`reward_mode` "fraction") or 1 only when all pass ("all"); parts
  `compiled` (the code parses) and `passed_frac`; reason: no_code, no_tests, bad_tests, syntax_error, or the
  most common failure among the tests (wrong_answer, timeout, memory, output_limit, crash).
- A row without usable tests is skipped when loading and counted (`task.stats`); an Example built by hand
  with no or malformed tests scores 0 with its reason, never an exception in the training loop.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ladkit.errors import LadkitError
from ladkit.sandbox import Limits, TestCase, TestResult, run_batch
from ladkit.tasks.base import Example, Message, RewardResult
from ladkit.tasks.code_data import CODE_PRESETS, CONVERTERS, CodeRow
from ladkit.tasks.datasets import DatasetTask, _prompt_key, _Split, check_field, read_rows

REWARD_MODES = ("fraction", "all")


@dataclass
class CodeConfig:
    """The `task.code` section, read by every code task (data comes from `task.dataset`, as for maths data)."""

    reward_mode: str = "fraction"
    """'fraction' (share of tests passed) or 'all' (1 only when every test passes)."""
    memory_mb: int = 512
    """Address-space limit per test execution in MiB (task.reward_timeout_s is its wall-clock limit)."""

    def __post_init__(self) -> None:
        if self.reward_mode not in REWARD_MODES:
            raise LadkitError(f"task.code.reward_mode must be 'fraction' or 'all', got {self.reward_mode!r}")
        if self.memory_mb < 64:
            raise LadkitError(f"task.code.memory_mb must be >= 64 (Python itself needs ~30), got {self.memory_mb}")


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.DOTALL)
_OPEN_PYTHON = re.compile(r"```[ \t]*(?:python|py|python3)[ \t]*\n(.*)\Z", re.DOTALL | re.IGNORECASE)
STDIN_INSTRUCTION = (
    "Write a complete Python 3 program that reads the input from standard input and prints the answer to "
    "standard output. Put the whole program in one ```python code block."
)
FUNCTION_INSTRUCTION = "Write the Python 3 function `{entry}` (with any imports it needs) in one ```python code block."


def extract_code(completion: str) -> str | None:
    """The program in `completion` (see the module docstring), or None."""
    blocks = _FENCE.findall(completion)
    python = [body for lang, body in blocks if lang.lower() in ("python", "py", "python3")]
    for candidates in (python, [body for _, body in blocks]):
        if candidates and candidates[-1].strip():
            return candidates[-1].strip("\n")
    if match := _OPEN_PYTHON.search(completion):
        return match.group(1).strip("\n") or None
    text = completion.strip("\n")
    return text if text.strip() and "```" not in text else None  # plain code; it may still not parse


def build_program(code: str, example: Example) -> str:
    """`code`, after the example's prefix when the code does not define the entry point itself (HumanEval)."""
    prefix, entry = example.metadata.get("prefix", ""), example.metadata.get("entry_point")
    if prefix and entry and not re.search(rf"\bdef\s+{re.escape(entry)}\s*\(", code):
        return prefix + code
    return code


def _parse_tests(tests: object) -> list[TestCase] | str:
    """The tests, or the reason there are none usable ("no_tests" / "bad_tests: ...")."""
    if not isinstance(tests, (list, tuple)) or not tests:
        return "no_tests"
    try:
        return [TestCase.parse(test) for test in tests]
    except LadkitError as error:
        return f"bad_tests: {error}"


def _zero(reason: str, compiled: float = 0.0, extracted: str | None = None) -> RewardResult:
    return RewardResult(0.0, {"compiled": compiled, "passed_frac": 0.0}, reason=reason, extracted=extracted)


def code_reward(results: Sequence[TestResult], mode: str, code: str) -> RewardResult:
    """The reward of one program from its test results (see the module docstring)."""
    passed = sum(result.passed for result in results) / len(results)
    failures = Counter(result.reason for result in results if not result.passed)
    if failures.get("syntax_error"):
        return _zero("syntax_error", extracted=code)
    reward = passed if mode == "fraction" else float(passed == 1.0)
    reason = failures.most_common(1)[0][0] if failures else None
    return RewardResult(reward, {"compiled": 1.0, "passed_frac": passed}, reason=reason, extracted=code)


class CodeScorer:
    """Runs extracted programs against their examples' tests in the sandbox, `workers` executions at once."""

    def __init__(self, mode: str = "fraction", limits: Limits | None = None, workers: int = 4):
        if mode not in REWARD_MODES:
            raise LadkitError(f"code reward mode must be one of {', '.join(REWARD_MODES)}, got {mode!r}")
        self.mode, self.limits, self.workers = mode, limits or Limits(), workers

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        results: list[RewardResult | None] = [None] * len(completions)
        programs, positions = [], []
        for i, (text, example) in enumerate(zip(completions, examples, strict=True)):
            code, tests = extract_code(text), _parse_tests(example.answer)
            if isinstance(tests, str):
                results[i] = _zero(tests, extracted=code)
            elif code is None:
                results[i] = _zero("no_code")
            else:
                programs.append((build_program(code, example), tests))
                positions.append((i, code))
        for (i, code), tests_run in zip(positions, run_batch(programs, self.limits, self.workers)):
            results[i] = code_reward(tests_run, self.mode, code)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        """Nothing to release: every execution ends (and is cleaned up) inside `score`."""


class CodeTask(DatasetTask):
    """Programming problems from a code preset or a file of {prompt, tests} rows; see the module docstring."""

    def __init__(
        self,
        preset: str,
        dataset: str | None = None,
        dataset_config: str | None = None,
        split: str | None = None,
        eval_split: str | float | None = None,
        prompt_field: str | None = None,
        answer_field: str | None = None,
        prompt_style: str = "chat",
        seed: int = 0,
        train_size: int | None = None,
        eval_size: int | None = 200,
        scorer: CodeScorer | None = None,
        max_skipped_fraction: float = 0.5,
    ):
        if preset not in CODE_PRESETS:
            raise LadkitError(f"unknown code preset {preset!r}; valid: {', '.join(CODE_PRESETS)}")
        base = CODE_PRESETS[preset]
        source = dataset or base.dataset
        if not source:
            raise LadkitError(f"task.dataset.path is required for task {preset!r} (a hub id or a local .jsonl file)")
        # A local stand-in file has one split: rows are held out unless an eval split or file is given.
        local = Path(source).expanduser().is_file()
        eval_split = eval_split if eval_split is not None or local else base.eval_split
        super().__init__(
            source,
            None,
            dataset_config if dataset_config is not None else base.config,
            split or base.split,
            eval_split,
            prompt_field or base.prompt_field,
            answer_field or base.tests_field,
            prompt_style,
            seed,
            train_size,
            eval_size,
            max_skipped_fraction=max_skipped_fraction,
        )
        self.eval_only = base.eval_only and eval_split is None
        self.name, self.schema = preset, base.schema
        self.scorer = scorer or CodeScorer()  # replaces DatasetTask's (lazy, never started) math-verify scorer

    def _load(self, source: str, split: str) -> _Split:
        fields = [self.prompt_field, self.answer_field, "entry_point", "test_setup_code", "metadata"]
        rows = read_rows(source, self.config, split, fields)
        return self._examples(source, split, rows)

    def _examples(self, source: str, split: str, rows: list[dict]) -> _Split:
        check_field(rows, self.prompt_field, "prompt_field", source)
        check_field(rows, self.answer_field, "answer_field", source)
        examples, seen = [], set()
        stats = {"rows": len(rows), "skipped": 0, "bad_tests": 0, "duplicates": 0}
        for index, raw in enumerate(rows):
            row = CONVERTERS[self.schema](raw, self.prompt_field, self.answer_field)
            if row is None or isinstance(_parse_tests(row.tests), str):
                stats["skipped"] += 1
                stats["bad_tests"] += row is not None
                continue
            if (key := _prompt_key(row.prompt)) in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            metadata = {"split": split, "row": index, "entry_point": row.entry_point, "prefix": row.prefix}
            given = next((raw[key] for key in ("id", "task_id") if raw.get(key) is not None), None)
            example_id = str(given) if given is not None else f"{self.name}-{split}-{index}"
            examples.append(Example(example_id, self._code_prompt(row), row.tests, metadata))
        self._check_skipped(source, stats)
        return _Split(examples, stats)

    def _code_prompt(self, row: CodeRow) -> str | list[Message]:
        if self.prompt_style == "compact":
            return row.prompt
        stdin = any("input" in test for test in row.tests)
        instruction = FUNCTION_INSTRUCTION.format(entry=row.entry_point) if row.entry_point else STDIN_INSTRUCTION
        return [{"role": "user", "content": f"{row.prompt}\n\n{STDIN_INSTRUCTION if stdin else instruction}"}]

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        return self.scorer.score(completions, examples)
