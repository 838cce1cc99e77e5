"""Tasks: prompts with their verifiable rewards (countdown, arithmetic, maths data sets, code).

Owns the task config schema (`TaskConfig`), the `TASKS` registry and `make_task(config) -> Task`.

    base.py         the contract: Example, RewardResult, Task
    expressions.py  restricted arithmetic parser, exact evaluator, canonical form (countdown answers)
    countdown.py    countdown from reasoning-gym; compact "7,5,9,3->36:" and chat prompts; exact reward
    arithmetic.py   reasoning-gym basic_arithmetic and gsm_symbolic, scored with math-verify
    mathverify.py   answer extraction and math-verify in time-bounded worker processes
    datasets.py     hub ids or local files with field mapping and presets (gsm8k, math500, dapo_math, aime)
    code.py         code tasks: extraction, reward from sandboxed tests (ladkit.sandbox), CodeTask
    code_data.py    code presets (humaneval, humanevalplus, mbpp, deepcoder, code, code_builtin) and row schemas
    custom.py       user rewards by dotted path `package.module:function`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ladkit.errors import LadkitError
from ladkit.registry import Registry
from ladkit.tasks.base import Example, Message, RewardResult, Task
from ladkit.tasks.code_data import CODE_PRESETS
from ladkit.tasks.datasets import PRESETS

TASKS: Registry[Callable[[TaskConfig], Task]] = Registry("task")
PROMPT_STYLES = ("compact", "chat")
MAX_NUMBERS = 6  # countdown: reasoning-gym's generator slows down and answers stop fitting short completions


@dataclass
class TaskConfig:
    """Where prompts come from and how completions are scored."""

    name: str = "countdown"
    """countdown, arithmetic, gsm_symbolic, dataset, or a data set preset used as a name (gsm8k, math500,
    dapo_math, aime)."""
    prompt_style: str = "compact"
    """compact (plain text for the built-in character-level model) or chat (messages for instruct models)."""
    seed: int = 0
    """Seeds problem generation and the held-out split."""
    train_size: int | None = None
    """Training examples (None: countdown 1000, arithmetic / gsm_symbolic 2000, data sets every usable row)."""
    eval_size: int | None = 200
    """Held-out examples (0: none; None: all a data set's eval split has)."""
    num_numbers: int = 4
    """countdown: numbers per problem (4 gives several distinct solutions per problem; 3 usually one)."""
    generator_options: dict[str, Any] = field(default_factory=dict)
    """Extra reasoning-gym generator settings, e.g. {max_target: 100} (countdown) or {max_digits: 3}."""
    dataset: str | None = None
    """Data set: a hub id (datasets.load_dataset) or a local .jsonl / .json / .parquet / .csv file."""
    dataset_config: str | None = None
    """The hub data set's config name (gsm8k: 'main')."""
    split: str | None = None
    """Training split (None: the preset's, else 'train'); ignored for a local file."""
    eval_split: str | float | None = None
    """Eval split name, a local file, or a fraction in (0, 1) held out (None: the preset's, else eval_size rows)."""
    prompt_field: str | None = None
    """Field holding the prompt (text, or a list of chat messages); dotted paths reach nested fields."""
    answer_field: str | None = None
    """Field holding the gold answer, e.g. reward_model.ground_truth."""
    preset: str | None = None
    """Named data set schema: gsm8k, math500, dapo_math or aime (fills dataset, fields and splits)."""
    reward: str | None = None
    """Custom reward 'package.module:function', called as function(completion, example) (None: the task's)."""
    reward_timeout_s: float = 5.0
    """Wall-clock bound per reward check (math-verify, a custom reward call, a code test); past it the sample
    scores 0 with reason 'timeout'."""
    reward_workers: int = 4
    """math-verify worker processes (checks run in parallel, off the training thread); code: sandboxed test
    executions at once."""
    code_reward: str = "fraction"
    """Code tasks: 'fraction' (share of tests passed) or 'all' (1 only when every test passes)."""
    code_memory_mb: int = 512
    """Code tasks: address-space limit per test execution in MiB (reward_timeout_s is its wall-clock limit)."""
    max_skipped_fraction: float = 0.5
    """Data sets and code tasks: the run refuses to start when more than this share of a split's rows cannot be
    used (no prompt or answer where the field mapping points, or no usable tests); unusable rows below it are
    skipped and counted."""

    def __post_init__(self) -> None:
        TASKS.get(self.name)  # an unknown name lists the valid ones
        if self.prompt_style not in PROMPT_STYLES:
            raise LadkitError(f"task.prompt_style must be compact or chat, got {self.prompt_style!r}")
        if self.train_size is not None and self.train_size < 1:
            raise LadkitError(f"task.train_size must be >= 1 (or null for the task's default), got {self.train_size}")
        if self.eval_size is not None and self.eval_size < 0:
            raise LadkitError(f"task.eval_size must be >= 0, got {self.eval_size}")
        if not 2 <= self.num_numbers <= MAX_NUMBERS:
            raise LadkitError(f"task.num_numbers must be in 2..{MAX_NUMBERS}, got {self.num_numbers}")
        if not isinstance(self.generator_options, dict):
            raise LadkitError(f"task.generator_options must be a mapping, got {self.generator_options!r}")
        self._check_data_set()
        self._check_reward()

    def _check_data_set(self) -> None:
        for key in ("dataset", "dataset_config", "split", "prompt_field", "answer_field"):
            if getattr(self, key) is not None and not str(getattr(self, key)).strip():
                raise LadkitError(f"task.{key} is an empty string; give a value or leave it unset (null)")
        if isinstance(self.eval_split, float) and not 0 < self.eval_split < 1:
            raise LadkitError(f"task.eval_split as a fraction must be in (0, 1), got {self.eval_split}")
        if self.preset is not None and self.preset not in PRESETS:
            raise LadkitError(f"task.preset {self.preset!r} is unknown; valid presets: {', '.join(PRESETS)}")
        if self.name in PRESETS and self.preset not in (None, self.name):
            raise LadkitError(f"task.name {self.name!r} is itself a preset; task.preset {self.preset!r} contradicts it")
        if self.name == "dataset" and self.dataset is None and self.preset is None:
            raise LadkitError("task.dataset is required for task.name 'dataset' (a hub id or a file), or set a preset")
        if self.name == "code" and self.dataset is None:
            raise LadkitError("task.dataset is required for task.name 'code' (a hub id or a .jsonl of prompt/tests)")
        if self.eval_size is None and self.name not in ("dataset", *PRESETS, *CODE_PRESETS):
            # "all of the eval split" is meaningful for data sets only; generators have no end
            raise LadkitError(f"task.eval_size must be a number for task {self.name!r}, got null")

    def _check_reward(self) -> None:
        if self.reward is not None and ":" not in self.reward:
            raise LadkitError(f"task.reward {self.reward!r} must look like 'package.module:function'")
        if not self.reward_timeout_s > 0:
            raise LadkitError(f"task.reward_timeout_s must be > 0, got {self.reward_timeout_s}")
        if self.reward_workers < 1:
            raise LadkitError(f"task.reward_workers must be >= 1, got {self.reward_workers}")
        if self.code_reward not in ("fraction", "all"):
            raise LadkitError(f"task.code_reward must be 'fraction' or 'all', got {self.code_reward!r}")
        if not 0 <= self.max_skipped_fraction <= 1:
            raise LadkitError(f"task.max_skipped_fraction must be in [0, 1], got {self.max_skipped_fraction}")
        if self.code_memory_mb < 64:
            raise LadkitError(f"task.code_memory_mb must be >= 64 (Python itself needs ~30), got {self.code_memory_mb}")


def _scorer(config: TaskConfig):
    from ladkit.tasks.mathverify import MathVerifyScorer

    return MathVerifyScorer(timeout_s=config.reward_timeout_s, workers=config.reward_workers)


@TASKS.register("countdown")
def _countdown(config: TaskConfig) -> Task:
    from ladkit.tasks.countdown import CountdownTask

    return CountdownTask(
        config.prompt_style, config.seed, config.train_size or 1000, config.eval_size, config.num_numbers,
        config.generator_options,
    )  # fmt: skip


def _arithmetic(generator: str) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        from ladkit.tasks.arithmetic import ArithmeticTask

        return ArithmeticTask(
            generator, config.prompt_style, config.seed, config.train_size or 2000, config.eval_size,
            config.generator_options, _scorer(config),
        )  # fmt: skip

    return build


def _dataset(preset: str | None) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        from ladkit.tasks.datasets import DatasetTask

        return DatasetTask(
            config.dataset, preset or config.preset, config.dataset_config, config.split, config.eval_split,
            config.prompt_field, config.answer_field, config.prompt_style, config.seed, config.train_size,
            config.eval_size, _scorer(config), config.max_skipped_fraction,
        )  # fmt: skip

    return build


def _code(preset: str) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        import math

        from ladkit.sandbox import Limits
        from ladkit.tasks.code import CodeScorer, CodeTask

        wall = config.reward_timeout_s
        limits = Limits(wall_s=wall, cpu_s=max(1, math.ceil(wall)), memory_mb=config.code_memory_mb)
        return CodeTask(
            preset, config.dataset, config.dataset_config, config.split, config.eval_split, config.prompt_field,
            config.answer_field, config.prompt_style, config.seed, config.train_size, config.eval_size,
            CodeScorer(config.code_reward, limits, config.reward_workers), config.max_skipped_fraction,
        )  # fmt: skip

    return build


TASKS.add("arithmetic", _arithmetic("basic_arithmetic"))
TASKS.add("gsm_symbolic", _arithmetic("gsm_symbolic"))
TASKS.add("dataset", _dataset(None))
for _name in PRESETS:
    TASKS.add(_name, _dataset(_name))
for _name in CODE_PRESETS:
    TASKS.add(_name, _code(_name))


def make_task(config: TaskConfig) -> Task:
    """The task `config` describes; with `config.reward` set, its rewards come from that function instead."""
    task = TASKS.get(config.name)(config)
    if config.reward is None:
        return task
    from ladkit.tasks.custom import CustomReward, WithCustomReward

    return WithCustomReward(task, CustomReward(config.reward, config.reward_timeout_s))


__all__ = ["TASKS", "Example", "Message", "RewardResult", "Task", "TaskConfig", "make_task"]
