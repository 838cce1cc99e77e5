"""TaskConfig validation, the TASKS registry, make_task, and custom rewards by dotted path."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from ladkit.config import build, to_dict
from ladkit.errors import LadkitError, UnknownNameError
from ladkit.tasks import TASKS, RewardResult, TaskConfig, make_task, upgrade_task_section
from ladkit.tasks.arithmetic import ArithmeticTask
from ladkit.tasks.base import RewardWarning
from ladkit.tasks.countdown import CountdownTask
from ladkit.tasks.datasets import DatasetConfig, DatasetTask

REWARD_MODULE = """
from ladkit.tasks.base import RewardResult

def length(completion, example):
    return float(len(completion))

def as_dict(completion, example):
    return {"reward": 1.0 if completion == example.answer else 0.0, "parts": {"exact": 1.0}, "shape": 0.5}

def as_result(completion, example):
    return RewardResult(0.25, {"custom": 1.0}, reason="because", extracted=completion[:3])

def broken(completion, example):
    raise ZeroDivisionError("oops")

def not_a_number(completion, example):
    return "high"
"""


def dataset_config(path: str, **settings) -> TaskConfig:
    """Task 'dataset' on the file `path`, other settings as given."""
    return TaskConfig(name="dataset", dataset=DatasetConfig(path=path), **settings)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"{i}+{i}?", "answer": str(2 * i)}) + "\n" for i in range(20)))
    return str(path)


@pytest.fixture
def reward_module(tmp_path, monkeypatch):
    (tmp_path / "toy_rewards_mod.py").write_text(textwrap.dedent(REWARD_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "toy_rewards_mod"


def test_registry_names():
    maths = {"countdown", "arithmetic", "gsm_symbolic", "dataset", "gsm8k", "math500", "dapo_math", "aime"}
    code = {"code", "code_builtin", "deepcoder", "humaneval", "humanevalplus", "mbpp"}
    assert set(TASKS) == maths | code


def test_defaults_make_the_compact_countdown_task():
    config = TaskConfig()
    task = make_task(config)
    assert isinstance(task, CountdownTask)
    assert (task.prompt_style, task.train_size, task.eval_size, task.num_numbers) == ("compact", 1000, 200, 4)
    assert config.countdown.num_numbers == 4 and config.dataset.path is None and config.code.memory_mb == 512


def test_make_task_forwards_settings(data_file):
    arithmetic = make_task(TaskConfig(name="gsm_symbolic", prompt_style="chat", reward_timeout_s=2.5, reward_workers=3))
    assert isinstance(arithmetic, ArithmeticTask) and arithmetic.generator == "gsm_symbolic"
    assert (arithmetic.scorer.timeout_s, arithmetic.scorer.workers, arithmetic.train_size) == (2.5, 3, 2000)
    preset = make_task(
        build(
            TaskConfig, {"name": "gsm8k", "dataset": {"path": data_file, "prompt_field": "prompt", "eval_split": 0.25}}
        )
    )
    assert isinstance(preset, DatasetTask) and preset.name == "gsm8k" and preset.answer_field == "answer"
    assert len(preset.eval_examples()) == 5
    dataset = make_task(dataset_config(data_file, train_size=7, eval_size=2, seed=3))
    assert (len(dataset.train_examples()), len(dataset.eval_examples())) == (7, 2)
    countdown = make_task(build(TaskConfig, {"countdown": {"num_numbers": 3, "generator_options": {"max_target": 20}}}))
    assert (countdown.num_numbers, countdown.generator_options["max_target"]) == (3, 20)
    options = {"generator_options": {"max_terms": 2}}
    arithmetic = make_task(build(TaskConfig, {"name": "arithmetic", "arithmetic": options, "eval_size": 2}))
    assert arithmetic.options["max_terms"] == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "sudoku"}, "unknown task 'sudoku'; valid tasks: aime, arithmetic, code, code_builtin, countdown"),
        ({"prompt_style": "fancy"}, "task.prompt_style"),
        ({"train_size": 0}, "task.train_size"),
        ({"eval_size": -1}, "task.eval_size"),
        ({"eval_size": None}, "task.eval_size must be a number"),
        ({"countdown": {"num_numbers": 9}}, "task.countdown.num_numbers must be in 2..6, got 9"),
        ({"name": "dataset"}, "task.dataset.path is required"),
        (
            {"name": "dataset", "dataset": {"preset": "gsm9k"}},
            "task.dataset.preset 'gsm9k' is unknown; valid presets: gsm8k",
        ),
        ({"name": "gsm8k", "dataset": {"preset": "aime"}}, "contradicts"),
        ({"name": "code"}, "task.dataset.path is required for task.name 'code'"),
        ({"dataset": {"eval_split": 1.5}}, "task.dataset.eval_split as a fraction must be in (0, 1), got 1.5"),
        ({"dataset": {"prompt_field": " "}}, "task.dataset.prompt_field is an empty string"),
        ({"dataset": {"max_skipped_fraction": 2.0}}, "task.dataset.max_skipped_fraction must be in [0, 1]"),
        ({"code": {"reward_mode": "most"}}, "task.code.reward_mode must be 'fraction' or 'all', got 'most'"),
        ({"code": {"memory_mb": 10}}, "task.code.memory_mb must be >= 64"),
        ({"arithmetic": {"generator_options": [1]}}, "task.arithmetic.generator_options must be a mapping"),
        ({"reward": "module.function"}, "package.module:function"),
        ({"reward_timeout_s": 0}, "task.reward_timeout_s"),
        ({"reward_workers": 0}, "task.reward_workers"),
        ({"countdown": {"generator_options": [1]}}, "task.countdown.generator_options must be a mapping"),
    ],
)
def test_validation_errors_name_the_key(settings, message):
    with pytest.raises(LadkitError) as caught:
        build(TaskConfig, settings, "task.")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_name_is_an_unknown_name_error():
    with pytest.raises(UnknownNameError):
        TaskConfig(name="nope")


def test_builds_from_yaml_style_dicts():
    config = build(TaskConfig, {"name": "dataset", "dataset": {"preset": "dapo_math", "eval_split": 0.05}})
    assert config.dataset.eval_split == 0.05 and config.dataset.preset == "dapo_math" and config.train_size is None
    assert build(TaskConfig, {"dataset": {"eval_split": "test"}}).dataset.eval_split == "test"
    with pytest.raises(LadkitError, match="unknown config key task_size"):
        build(TaskConfig, {"task_size": 3})
    with pytest.raises(LadkitError, match="unknown config key task.dataset.pathh in task.dataset; valid keys: path,"):
        build(TaskConfig, {"dataset": {"pathh": "x"}}, "task.")
    with pytest.raises(LadkitError, match="^task.countdown.num_numbers must be an integer, got 'four'$"):
        build(TaskConfig, {"countdown": {"num_numbers": "four"}}, "task.")


@pytest.mark.parametrize(
    ("flat", "new"),
    [
        ({"prompt_field": "q"}, "task.dataset.prompt_field"),
        ({"answer_field": "a"}, "task.dataset.answer_field"),
        ({"dataset": "data.jsonl"}, "task.dataset.path"),  # a value where the section now stands
        ({"dataset_config": "main"}, "task.dataset.config_name"),
        ({"split": "train"}, "task.dataset.split"),
        ({"eval_split": 0.1}, "task.dataset.eval_split"),
        ({"preset": "gsm8k"}, "task.dataset.preset"),
        ({"max_skipped_fraction": 0.2}, "task.dataset.max_skipped_fraction"),
        ({"num_numbers": 3}, "task.countdown.num_numbers"),
        ({"generator_options": {}}, "task.countdown.generator_options (or arithmetic.generator_options)"),
        ({"code_reward": "all"}, "task.code.reward_mode"),
        ({"code_memory_mb": 256}, "task.code.memory_mb"),
    ],
)
def test_old_flat_keys_name_their_new_key(flat, new):
    with pytest.raises(LadkitError) as caught:
        build(TaskConfig, flat, "task.")
    old = next(iter(flat))
    assert str(caught.value) == f"config key task.{old} is now {new}; rename it in the YAML file or --set"


def test_flat_run_config_is_moved_into_the_sections():
    # a run folder's config.yaml written before the sections; generator_options follows the task named
    flat = {
        "name": "dataset",
        "dataset": "d.jsonl",
        "dataset_config": "main",
        "prompt_field": "q",
        "split": "tr",
        "eval_split": 0.1,
        "answer_field": "a",
        "preset": None,
        "max_skipped_fraction": 0.3,
        "num_numbers": 3,
        "generator_options": {"max_target": 9},
        "code_reward": "all",
        "code_memory_mb": 256,
        "seed": 2,
    }
    config = build(TaskConfig, upgrade_task_section(flat))
    assert config.dataset == DatasetConfig("d.jsonl", "main", "tr", 0.1, "q", "a", None, 0.3)
    assert (config.countdown.num_numbers, config.countdown.generator_options, config.seed) == (3, {"max_target": 9}, 2)
    assert (config.code.reward_mode, config.code.memory_mb) == ("all", 256)
    arithmetic = upgrade_task_section({"name": "gsm_symbolic", "generator_options": {"max_digits": 3}})
    assert arithmetic == {"name": "gsm_symbolic", "arithmetic": {"generator_options": {"max_digits": 3}}}
    assert upgrade_task_section(to_dict(config)) == to_dict(config)  # the new layout is left as it is


def test_custom_reward_float_dict_and_result(data_file, reward_module):
    def scored(function: str, completions: list[str]):
        task = make_task(dataset_config(data_file, reward=f"{reward_module}:{function}"))
        return task.score(completions, task.train_examples()[: len(completions)])

    assert [r.reward for r in scored("length", ["abc", ""])] == [3.0, 0.0]
    task = make_task(dataset_config(data_file, reward=f"{reward_module}:as_dict"))
    example = task.train_examples()[0]
    (result,) = task.score([example.answer], [example])
    assert result.reward == 1.0 and result.parts == {"shape": 0.5, "exact": 1.0}
    assert scored("as_result", ["hello"]) == [RewardResult(0.25, {"custom": 1.0}, "because", "hel")]
    assert task.eval_examples() == make_task(dataset_config(data_file)).eval_examples()


def test_custom_reward_works_on_generated_tasks(reward_module):
    task = make_task(TaskConfig(name="countdown", train_size=5, eval_size=2, reward=f"{reward_module}:length"))
    example = task.train_examples()[0]
    assert task.score(["12345"], [example])[0].reward == 5.0
    assert task.reference(example) == example.metadata["solution"]  # the wrapped task's helpers still work


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("toy_missing_module:score", "cannot import 'toy_missing_module'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:", "must look like 'package.module:function'"),
    ],
)
def test_bad_reward_paths_are_one_line_errors(data_file, reward_module, function, message):
    with pytest.raises(LadkitError) as caught:
        make_task(dataset_config(data_file, reward=function.format(module=reward_module)))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_reward_function_failures_are_reported(data_file, reward_module):
    # a failing reward does not stop scoring: that sample gets NaN (no reward) and a warning names the error
    for function, message in [
        ("broken", "raised ZeroDivisionError: oops on example"),
        ("not_a_number", "finite number"),
    ]:
        task = make_task(dataset_config(data_file, reward=f"{reward_module}:{function}"))
        with pytest.warns(RewardWarning, match=message):
            (result,) = task.score(["x"], task.train_examples()[:1])
        assert math.isnan(result.reward) and result.reason == "reward_error"
