"""Tasks: prompts with their verifiable rewards (countdown, arithmetic, maths data sets, code).

Owns the task config schema (`TaskConfig`: the options every task reads, and one section per kind of task,
declared beside it: `CountdownConfig`, `ArithmeticConfig`, `DatasetConfig`, `CodeConfig`), the `TASKS`
registry and `make_task(config) -> Task`.

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
from typing import Any, ClassVar

from ladkit.config import move_keys
from ladkit.errors import LadkitError
from ladkit.registry import Registry
from ladkit.tasks.arithmetic import ArithmeticConfig
from ladkit.tasks.base import Example, Message, RewardResult, Task
from ladkit.tasks.code import CodeConfig
from ladkit.tasks.code_data import CODE_PRESETS
from ladkit.tasks.countdown import CountdownConfig
from ladkit.tasks.datasets import PRESETS, DatasetConfig

TASKS: Registry[Callable[[TaskConfig], Task]] = Registry("task")
PROMPT_STYLES = ("compact", "chat")
ARITHMETIC_TASKS = ("arithmetic", "gsm_symbolic")


@dataclass
class TaskConfig:
    """Where prompts come from and how completions are scored: options every task reads, then one section per
    kind of task (`task.countdown`, `task.arithmetic`, `task.dataset`, `task.code`), declared and checked in
    that task's module."""

    name: str = "countdown"
    """countdown, arithmetic, gsm_symbolic, dataset, a data set preset used as a name (gsm8k, math500,
    dapo_math, aime), or a code task (humaneval, humanevalplus, mbpp, deepcoder, code, code_builtin)."""
    prompt_style: str = "compact"
    """compact (plain text for the built-in character-level model) or chat (messages for instruct models)."""
    seed: int = 0
    """Seeds problem generation and the held-out split."""
    train_size: int | None = None
    """Training examples (None: countdown 1000, arithmetic / gsm_symbolic 2000, data sets every usable row)."""
    eval_size: int | None = 200
    """Held-out examples (0: none; None: all a data set's eval split has)."""
    reward: str | None = None
    """Custom reward 'package.module:function', called as function(completion, example) (None: the task's)."""
    reward_timeout_s: float = 5.0
    """Wall-clock bound per reward check (math-verify, a custom reward call, a code test); past it the sample
    scores 0 with reason 'timeout'."""
    reward_workers: int = 4
    """math-verify worker processes (checks run in parallel, off the training thread); code: sandboxed test
    executions at once."""
    countdown: CountdownConfig = field(default_factory=CountdownConfig)
    """countdown: numbers per problem and generator settings."""
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    """arithmetic and gsm_symbolic: generator settings."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """Data sets and code tasks: the source, its splits and field mapping, the share of unusable rows allowed."""
    code: CodeConfig = field(default_factory=CodeConfig)
    """Code tasks: the reward rule and the memory limit of a test run."""

    # keys of the flat layout (before the sections): an error naming the new key, moved on reading a run folder
    MOVED: ClassVar[dict[str, str]] = {
        "num_numbers": "countdown.num_numbers",
        "generator_options": "countdown.generator_options (or arithmetic.generator_options)",
        "dataset": "dataset.path",
        "dataset_config": "dataset.config_name",
        **{key: f"dataset.{key}" for key in ("split", "eval_split", "prompt_field", "answer_field", "preset")},
        "max_skipped_fraction": "dataset.max_skipped_fraction",
        "code_reward": "code.reward_mode",
        "code_memory_mb": "code.memory_mb",
    }

    def __post_init__(self) -> None:
        TASKS.get(self.name)  # an unknown name lists the valid ones
        if self.prompt_style not in PROMPT_STYLES:
            raise LadkitError(f"task.prompt_style must be compact or chat, got {self.prompt_style!r}")
        if self.train_size is not None and self.train_size < 1:
            raise LadkitError(f"task.train_size must be >= 1 (or null for the task's default), got {self.train_size}")
        if self.eval_size is not None and self.eval_size < 0:
            raise LadkitError(f"task.eval_size must be >= 0, got {self.eval_size}")
        self._check_data_set()
        self._check_reward()

    def _check_data_set(self) -> None:
        preset = self.dataset.preset
        if self.name in PRESETS and preset not in (None, self.name):
            raise LadkitError(
                f"task.name {self.name!r} is itself a preset; task.dataset.preset {preset!r} contradicts it"
            )
        if self.name == "dataset" and self.dataset.path is None and preset is None:
            raise LadkitError(
                "task.dataset.path is required for task.name 'dataset' (a hub id or a file), or set task.dataset.preset"
            )
        if self.name == "code" and self.dataset.path is None:
            raise LadkitError("task.dataset.path is required for task.name 'code' (a hub id or a .jsonl of tests)")
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


def upgrade_task_section(data: dict[str, Any]) -> dict[str, Any]:
    """A `task` mapping of the flat layout (a config.yaml written before the sections) in the sectioned one; a
    mapping already sectioned comes back unchanged. generator_options goes to the section of the task named."""
    arithmetic = data.get("name") in ARITHMETIC_TASKS
    moves = {
        **{old: new for old, new in TaskConfig.MOVED.items() if old != "generator_options"},
        "generator_options": "arithmetic.generator_options" if arithmetic else "countdown.generator_options",
    }
    return move_keys(data, moves)


def _scorer(config: TaskConfig):
    from ladkit.tasks.mathverify import MathVerifyScorer

    return MathVerifyScorer(timeout_s=config.reward_timeout_s, workers=config.reward_workers)


@TASKS.register("countdown")
def _countdown(config: TaskConfig) -> Task:
    from ladkit.tasks.countdown import CountdownTask

    countdown = config.countdown
    return CountdownTask(
        config.prompt_style,
        config.seed,
        config.train_size or 1000,
        config.eval_size,
        countdown.num_numbers,
        countdown.generator_options,
    )


def _arithmetic(generator: str) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        from ladkit.tasks.arithmetic import ArithmeticTask

        return ArithmeticTask(
            generator,
            config.prompt_style,
            config.seed,
            config.train_size or 2000,
            config.eval_size,
            config.arithmetic.generator_options,
            _scorer(config),
        )

    return build


def _dataset(preset: str | None) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        from ladkit.tasks.datasets import DatasetTask

        data = config.dataset
        return DatasetTask(
            data.path,
            preset or data.preset,
            data.config_name,
            data.split,
            data.eval_split,
            data.prompt_field,
            data.answer_field,
            config.prompt_style,
            config.seed,
            config.train_size,
            config.eval_size,
            _scorer(config),
            data.max_skipped_fraction,
            data.max_prompt_tokens,
        )

    return build


def _code(preset: str) -> Callable[[TaskConfig], Task]:
    def build(config: TaskConfig) -> Task:
        import math

        from ladkit.sandbox import Limits
        from ladkit.tasks.code import CodeScorer, CodeTask

        wall, data = config.reward_timeout_s, config.dataset
        limits = Limits(wall_s=wall, cpu_s=max(1, math.ceil(wall)), memory_mb=config.code.memory_mb)
        return CodeTask(
            preset,
            data.path,
            data.config_name,
            data.split,
            data.eval_split,
            data.prompt_field,
            data.answer_field,
            config.prompt_style,
            config.seed,
            config.train_size,
            config.eval_size,
            CodeScorer(config.code.reward_mode, limits, config.reward_workers),
            data.max_skipped_fraction,
        )

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


__all__ = ["TASKS", "Example", "Message", "RewardResult", "Task", "TaskConfig", "make_task", "upgrade_task_section"]
