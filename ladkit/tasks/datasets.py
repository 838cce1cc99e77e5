"""Maths data sets as tasks: Hugging Face hub ids or local JSONL / JSON / parquet / CSV files.

Owns mapping fields to examples (dotted paths such as `reward_model.ground_truth`), the named presets, and the
train / eval split; reading the rows is `files.py`. Rewards default to math-verify (`mathverify.py`).

- A field absent from the data is a one-line LadkitError listing the fields there are. Rows whose prompt or
  answer is missing or empty are skipped and counted (`task.stats`, `task.skipped_rows`); repeated prompts are
  kept once, and no training prompt is also an eval prompt.
- A row whose prompt or answer is longer than `max_prompt_tokens` x CHARS_PER_TOKEN characters is skipped and
  counted (`too_long`, part of `skipped`) before any tokeniser sees it: one huge row cannot take the memory.
  Once the model's tokenizer is loaded, `fit_prompts` drops the prompts over `max_prompt_tokens` tokens as
  rendered (chat template included), as verl's filter_overlong_prompts does, counted the same way.
- A prompt that is a list of chat messages is kept as messages. A plain-text prompt is, in the `chat` style,
  one user message with an instruction to answer in \\boxed{}; in the `compact` style it is the raw text.
- Gold answers holding "#### x" (GSM8K) or \\boxed{x} are reduced to x.
- Eval split: a split name (loaded like the training split), a local file, a fraction in (0, 1) held out
  with the seed, or by default the preset's split (hub only) or `eval_size` held-out rows (at most a tenth
  of the data). The eval-only presets (math500, aime) put every row in the eval split.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladkit.errors import LadkitError
from ladkit.tasks.base import Example, Message, RewardResult
from ladkit.tasks.files import read_rows
from ladkit.tasks.mathverify import MathVerifyScorer, extract_answer

BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
_MISSING = object()
CHARS_PER_TOKEN = 16
"""No tokeniser ladkit runs averages more characters per token over a text (English BPE: ~4), so a text of more
than max_prompt_tokens x 16 characters is over max_prompt_tokens tokens, and can be refused unread."""


@dataclass(frozen=True)
class Preset:
    """Where a known data set lives and what its fields are called."""

    dataset: str
    config: str | None
    split: str
    prompt_field: str
    answer_field: str
    eval_split: str | None = None  # None: hold out rows of the training split
    eval_only: bool = False  # every row is an eval row (benchmarks too small or too precious to train on)


PRESETS = {
    "gsm8k": Preset("openai/gsm8k", "main", "train", "question", "answer", eval_split="test"),
    "math500": Preset("HuggingFaceH4/MATH-500", None, "test", "problem", "answer", eval_only=True),
    "dapo_math": Preset("BytedTsinghua-SIA/DAPO-Math-17k", None, "train", "prompt", "reward_model.ground_truth"),
    "aime": Preset("HuggingFaceH4/aime_2024", None, "train", "problem", "answer", eval_only=True),
}


@dataclass
class DatasetConfig:
    """The `task.dataset` section: where a data set's rows come from and what their fields are called (maths
    data sets and code tasks)."""

    path: str | None = None
    """A hub id (datasets.load_dataset) or a local .jsonl / .json / .parquet / .csv file."""
    config_name: str | None = None
    """The hub data set's config name (gsm8k: 'main')."""
    split: str | None = None
    """Training split (None: the preset's, else 'train'); ignored for a local file."""
    eval_split: str | float | None = None
    """Eval split name, a local file, or a fraction in (0, 1) held out (None: the preset's, else eval_size rows)."""
    prompt_field: str | None = None
    """Field holding the prompt (text, or a list of chat messages); dotted paths reach nested fields."""
    answer_field: str | None = None
    """Field holding the gold answer, e.g. reward_model.ground_truth (code tasks: the tests)."""
    preset: str | None = None
    """Named data set schema: gsm8k, math500, dapo_math or aime (fills path, fields and splits)."""
    max_skipped_fraction: float = 0.5
    """The run refuses to start when more than this share of a split's rows cannot be used (no prompt or answer
    where the field mapping points, or no usable tests); unusable rows below it are skipped and counted."""
    max_prompt_tokens: int = 4096
    """Prompts over this many tokens, as the run's tokenizer and chat template render them, are skipped and
    counted (meta.json data_rows too_long) before the run starts, in `ladkit train` and `ladkit eval` alike; rows
    over CHARS_PER_TOKEN = 16 characters per token (prompt or gold answer) are skipped before any tokenizer sees
    them. A kept prompt must also fit the model's context with rollout.max_new_tokens (a one-line error)."""

    def __post_init__(self) -> None:
        for key in ("path", "config_name", "split", "prompt_field", "answer_field"):
            if getattr(self, key) is not None and not str(getattr(self, key)).strip():
                raise LadkitError(f"task.dataset.{key} is an empty string; give a value or leave it unset (null)")
        if isinstance(self.eval_split, float) and not 0 < self.eval_split < 1:
            raise LadkitError(f"task.dataset.eval_split as a fraction must be in (0, 1), got {self.eval_split}")
        if self.preset is not None and self.preset not in PRESETS:
            raise LadkitError(f"task.dataset.preset {self.preset!r} is unknown; valid presets: {', '.join(PRESETS)}")
        if self.max_prompt_tokens < 1:
            raise LadkitError(f"task.dataset.max_prompt_tokens must be >= 1, got {self.max_prompt_tokens}")
        if not 0 <= self.max_skipped_fraction <= 1:
            raise LadkitError(f"task.dataset.max_skipped_fraction must be in [0, 1], got {self.max_skipped_fraction}")


# -------------------------------------------------------------------------------------------- field mapping


def resolve(row: Any, path: str) -> Any:
    """`row["a"]["b"]` for path "a.b"; `_MISSING` when a key is absent (None when a value is null)."""
    value = row
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _fields_at(rows: list[dict], path: str) -> tuple[str, list[str]]:
    """Where `path` stops resolving (the deepest record on it) and the keys that record has."""
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        for row in rows:
            node = resolve(row, parent)
            if isinstance(node, dict):
                return parent, sorted(node)
    return "", sorted({str(key) for row in rows if isinstance(row, dict) for key in row})


def check_field(rows: list[dict], path: str, role: str, source: str) -> None:
    """LadkitError naming the available fields when no row has `path` (a typo, not a gap in the data)."""
    if rows and all(resolve(row, path) is _MISSING for row in rows):
        parent, keys = _fields_at(rows, path)
        where = f"in {parent!r} " if parent else ""
        raise LadkitError(f"{role} {path!r} not found {where}in {source}; fields there: {', '.join(keys) or 'none'}")


def as_prompt(value: Any) -> str | list[Message] | None:
    """A usable prompt (text, or chat messages kept as they are), or None."""
    if isinstance(value, list):
        ok = value and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in value] if ok else None
    if value is _MISSING or value is None or isinstance(value, dict):
        return None
    return str(value).strip() or None


def as_answer(value: Any) -> str | None:
    """A usable gold answer as text; "#### 72" and \\boxed{72} become "72"."""
    if value is _MISSING or value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    if "####" in text or "\\boxed" in text or "\\fbox" in text:
        text = extract_answer(text) or ""
    return text.replace(",", "") if text.replace(",", "").lstrip("-").isdigit() else text or None


# ------------------------------------------------------------------------------------------------- the task


@dataclass
class _Split:
    examples: list[Example]
    stats: dict[str, int]


def _length(value: Any) -> int:
    """Characters of a field's text (a chat prompt: all its messages' contents); 0 for anything else."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(len(str(m.get("content", ""))) if isinstance(m, dict) else 0 for m in value)
    return 0


def _prompt_key(prompt: str | list[Message]) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


class DatasetTask:
    """Prompts and gold answers from a data set, scored by math-verify (or a custom reward via make_task)."""

    def __init__(
        self,
        dataset: str | None = None,
        preset: str | None = None,
        dataset_config: str | None = None,
        split: str | None = None,
        eval_split: str | float | None = None,
        prompt_field: str | None = None,
        answer_field: str | None = None,
        prompt_style: str = "chat",
        seed: int = 0,
        train_size: int | None = None,
        eval_size: int | None = 200,
        scorer: MathVerifyScorer | None = None,
        max_skipped_fraction: float = 0.5,
        max_prompt_tokens: int = 4096,
    ):
        if preset is not None and preset not in PRESETS:
            raise LadkitError(f"unknown data set preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        base = PRESETS[preset] if preset else None
        if dataset is None and base is None:
            raise LadkitError("task.dataset.path is required (a hub id or a local file) unless a preset is set")
        if prompt_style not in ("compact", "chat"):
            raise LadkitError(f"dataset: prompt_style must be 'compact' or 'chat', got {prompt_style!r}")
        self.source = dataset or base.dataset
        self.config = dataset_config if dataset_config is not None else (base.config if base else None)
        self.split = split or (base.split if base else "train")
        self.prompt_field = prompt_field or (base.prompt_field if base else "prompt")
        self.answer_field = answer_field or (base.answer_field if base else "answer")
        self.eval_only = base.eval_only if base and eval_split is None else False
        # A preset's eval split names a hub split; a local stand-in file has only one, so rows are held out.
        local = Path(self.source).expanduser().is_file()
        self.eval_split = eval_split if eval_split is not None or local or not base else base.eval_split
        self.name = preset or Path(self.source).stem.replace("-", "_").lower()
        self.prompt_style, self.seed = prompt_style, seed
        self.train_size, self.eval_size = train_size, eval_size
        self.scorer = scorer or MathVerifyScorer()
        self.max_skipped_fraction = max_skipped_fraction
        self.max_prompt_tokens = max_prompt_tokens
        self.max_chars = max_prompt_tokens * CHARS_PER_TOKEN
        self.stats: dict[str, dict[str, int]] = {}
        self._splits: tuple[list[Example], list[Example]] | None = None
        self._all: tuple[list[Example], list[Example]] = ([], [])  # the splits before train_size / eval_size
        self._fitted = False

    # -- loading

    def _examples(self, source: str, split: str, rows: list[dict]) -> _Split:
        check_field(rows, self.prompt_field, "prompt_field", source)
        check_field(rows, self.answer_field, "answer_field", source)
        examples, seen = [], set()
        stats = {"rows": len(rows), "skipped": 0, "too_long": 0, "duplicates": 0}
        for index, row in enumerate(rows):
            prompt, answer = resolve(row, self.prompt_field), resolve(row, self.answer_field)
            too_long = _length(prompt) > self.max_chars or _length(answer) > self.max_chars
            prompt, answer = (None, None) if too_long else (as_prompt(prompt), as_answer(answer))
            if prompt is None or answer is None:
                stats["skipped"] += 1
                stats["too_long"] += too_long
                continue
            key = _prompt_key(prompt)
            if key in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            example_id = f"{self.name}-{split}-{index}"
            examples.append(Example(example_id, self._styled(prompt), answer, {"split": split, "row": index}))
        self._check_skipped(source, stats)
        return _Split(examples, stats)

    def _check_skipped(self, source: str, stats: dict[str, int]) -> None:
        """Refuse data that is mostly unusable: a wrong field mapping or a broken file, not a few gaps."""
        skipped, total = stats["skipped"], stats["rows"]
        if total and skipped > self.max_skipped_fraction * total:
            raise LadkitError(
                f"{skipped} of {total} rows of {source} could not be used (no usable {self.prompt_field!r} or "
                f"{self.answer_field!r}); fix the data or the field mapping, or raise task.dataset.max_skipped_fraction"
            )

    def _styled(self, prompt: str | list[Message]) -> str | list[Message]:
        if isinstance(prompt, list) or self.prompt_style == "compact":
            return prompt
        return [{"role": "user", "content": f"{prompt}\n\n{BOXED_INSTRUCTION}"}]

    def _load(self, source: str, split: str) -> _Split:
        rows = read_rows(source, self.config, split, [self.prompt_field, self.answer_field])
        return self._examples(source, split, rows)

    def _held_out_fraction(self) -> float | None:
        """eval_split as a fraction in (0, 1), if it is one (YAML gives floats; `--set` may give text)."""
        try:
            fraction = float(self.eval_split)
        except (TypeError, ValueError):
            return None
        if not 0 < fraction < 1:
            raise LadkitError(f"task.dataset.eval_split as a fraction must be in (0, 1), got {self.eval_split}")
        return fraction

    def _split_examples(self) -> tuple[list[Example], list[Example]]:
        train = self._load(self.source, self.split)
        if self.eval_only:
            self.stats["eval"] = train.stats
            return [], train.examples
        self.stats["train"] = train.stats
        fraction = self._held_out_fraction()
        if self.eval_split is not None and fraction is None:
            return self._separate_eval(train)
        shuffled = list(train.examples)
        random.Random(self.seed).shuffle(shuffled)
        default = len(shuffled) // 10  # never hold out more than a tenth by default
        wanted = default if self.eval_size is None else min(self.eval_size, default)
        count = math.ceil(fraction * len(shuffled)) if fraction else wanted
        self.stats["eval"] = {"held_out": count}
        held_out = {e.id for e in shuffled[:count]}
        return [e for e in train.examples if e.id not in held_out], shuffled[:count]

    def _separate_eval(self, train: _Split) -> tuple[list[Example], list[Example]]:
        """Eval rows from another split (or file); any training prompt that is also an eval prompt goes."""
        split = str(self.eval_split)
        is_file = Path(split).expanduser().is_file()
        if Path(self.source).expanduser().is_file() and not is_file:
            raise LadkitError(
                f"task.dataset.eval_split {split!r}: a local file has one split; give a fraction in (0, 1) or a file"
            )
        evaluation = self._load(split if is_file else self.source, "eval" if is_file else split)
        eval_keys = {_prompt_key(e.prompt) for e in evaluation.examples}
        kept = [e for e in train.examples if _prompt_key(e.prompt) not in eval_keys]
        self.stats["eval"] = evaluation.stats
        self.stats["train"]["overlap_removed"] = len(train.examples) - len(kept)
        return kept, evaluation.examples

    def _ensure(self) -> tuple[list[Example], list[Example]]:
        if self._splits is None:
            self._all = self._split_examples()
            train, evaluation = self._all
            train = train[: self.train_size] if self.train_size is not None else train
            evaluation = evaluation[: self.eval_size] if self.eval_size is not None else evaluation
            self._splits = (train, evaluation)
        return self._splits

    def fit_prompts(self, tokens: Callable[[Example], int]) -> None:
        """Keep the prompts of at most max_prompt_tokens tokens as the model sees them (`tokens`: the length of
        an example's prompt rendered by the run's tokenizer and chat template), once.

        Each split's rows are walked in their order, longer prompts skipped and counted (`too_long`, part of
        `skipped`) until train_size / eval_size prompts are kept, so the sizes hold where the data allows; the
        same tokenizer and data keep the same prompts (a resumed run sees its own). More than
        max_skipped_fraction of the prompts walked over the limit is a one-line error."""
        if self._fitted:
            return
        self._ensure()
        train, evaluation = self._all
        self._splits = (
            self._fit(train, self.train_size, tokens, "train"),
            self._fit(evaluation, self.eval_size, tokens, "eval"),
        )
        self._fitted = True

    def _fit(self, examples: list[Example], size: int | None, tokens, split: str) -> list[Example]:
        kept, dropped = [], 0
        for example in examples:
            if size is not None and len(kept) >= size:
                break
            if tokens(example) > self.max_prompt_tokens:
                dropped += 1
            else:
                kept.append(example)
        if dropped:
            stats = self.stats.setdefault(split, {})
            stats["too_long"] = stats.get("too_long", 0) + dropped
            stats["skipped"] = stats.get("skipped", 0) + dropped
        walked = len(kept) + dropped
        if walked and dropped > self.max_skipped_fraction * walked:
            raise LadkitError(
                f"{dropped} of {walked} {split} prompts of {self.source} are over task.dataset.max_prompt_tokens="
                f"{self.max_prompt_tokens} tokens as the model renders them; raise max_prompt_tokens or "
                "task.dataset.max_skipped_fraction, or use shorter prompts"
            )
        return kept

    @property
    def skipped_rows(self) -> int:
        """Rows dropped for a missing or empty prompt or answer, over both splits (loads the data)."""
        self._ensure()
        return sum(part.get("skipped", 0) for part in self.stats.values())

    # -- the Task protocol

    def train_examples(self) -> list[Example]:
        return self._ensure()[0]

    def eval_examples(self) -> list[Example]:
        return self._ensure()[1]

    def score(self, completions: Sequence[str], examples: Sequence[Example]) -> list[RewardResult]:
        return self.scorer.score([extract_answer(text) for text in completions], [ex.answer for ex in examples])

    def close(self) -> None:
        self.scorer.close()
