"""TaskConfig validation, the TASKS registry, make_task, and custom rewards by dotted path."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

from ladkit.config import build
from ladkit.errors import LadkitError, UnknownNameError
from ladkit.tasks import TASKS, RewardResult, TaskConfig, make_task
from ladkit.tasks.arithmetic import ArithmeticTask
from ladkit.tasks.base import RewardWarning
from ladkit.tasks.countdown import CountdownTask
from ladkit.tasks.datasets import DatasetTask

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


def test_make_task_forwards_settings(data_file):
    arithmetic = make_task(TaskConfig(name="gsm_symbolic", prompt_style="chat", reward_timeout_s=2.5, reward_workers=3))
    assert isinstance(arithmetic, ArithmeticTask) and arithmetic.generator == "gsm_symbolic"
    assert (arithmetic.scorer.timeout_s, arithmetic.scorer.workers, arithmetic.train_size) == (2.5, 3, 2000)
    preset = make_task(TaskConfig(name="gsm8k", dataset=data_file, prompt_field="prompt", eval_split=0.25))
    assert isinstance(preset, DatasetTask) and preset.name == "gsm8k" and preset.answer_field == "answer"
    assert len(preset.eval_examples()) == 5
    dataset = make_task(TaskConfig(name="dataset", dataset=data_file, train_size=7, eval_size=2, seed=3))
    assert (len(dataset.train_examples()), len(dataset.eval_examples())) == (7, 2)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "sudoku"}, "unknown task 'sudoku'; valid tasks: aime, arithmetic, code, code_builtin, countdown"),
        ({"prompt_style": "fancy"}, "task.prompt_style"),
        ({"train_size": 0}, "task.train_size"),
        ({"eval_size": -1}, "task.eval_size"),
        ({"eval_size": None}, "task.eval_size must be a number"),
        ({"num_numbers": 9}, "task.num_numbers"),
        ({"name": "dataset"}, "task.dataset is required"),
        ({"name": "dataset", "preset": "gsm9k"}, "task.preset 'gsm9k' is unknown; valid presets: gsm8k"),
        ({"name": "gsm8k", "preset": "aime"}, "contradicts"),
        ({"reward": "module.function"}, "package.module:function"),
        ({"reward_timeout_s": 0}, "task.reward_timeout_s"),
        ({"reward_workers": 0}, "task.reward_workers"),
        ({"generator_options": [1]}, "task.generator_options"),
    ],
)
def test_validation_errors_name_the_key(settings, message):
    with pytest.raises(LadkitError) as caught:
        TaskConfig(**settings)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_name_is_an_unknown_name_error():
    with pytest.raises(UnknownNameError):
        TaskConfig(name="nope")


def test_builds_from_yaml_style_dicts():
    config = build(TaskConfig, {"name": "dataset", "preset": "dapo_math", "eval_split": 0.05, "train_size": None})
    assert config.eval_split == 0.05 and config.preset == "dapo_math"
    assert build(TaskConfig, {"eval_split": "test"}).eval_split == "test"
    with pytest.raises(LadkitError, match="unknown config key task_size"):
        build(TaskConfig, {"task_size": 3})


def test_custom_reward_float_dict_and_result(data_file, reward_module):
    def scored(function: str, completions: list[str]):
        task = make_task(TaskConfig(name="dataset", dataset=data_file, reward=f"{reward_module}:{function}"))
        return task.score(completions, task.train_examples()[: len(completions)])

    assert [r.reward for r in scored("length", ["abc", ""])] == [3.0, 0.0]
    task = make_task(TaskConfig(name="dataset", dataset=data_file, reward=f"{reward_module}:as_dict"))
    example = task.train_examples()[0]
    (result,) = task.score([example.answer], [example])
    assert result.reward == 1.0 and result.parts == {"shape": 0.5, "exact": 1.0}
    assert scored("as_result", ["hello"]) == [RewardResult(0.25, {"custom": 1.0}, "because", "hel")]
    assert task.eval_examples() == make_task(TaskConfig(name="dataset", dataset=data_file)).eval_examples()


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
        make_task(TaskConfig(name="dataset", dataset=data_file, reward=function.format(module=reward_module)))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_reward_function_failures_are_reported(data_file, reward_module):
    # a failing reward does not stop scoring: that sample gets NaN (no reward) and a warning names the error
    for function, message in [
        ("broken", "raised ZeroDivisionError: oops on example"),
        ("not_a_number", "finite number"),
    ]:
        task = make_task(TaskConfig(name="dataset", dataset=data_file, reward=f"{reward_module}:{function}"))
        with pytest.warns(RewardWarning, match=message):
            (result,) = task.score(["x"], task.train_examples()[:1])
        assert math.isnan(result.reward) and result.reason == "reward_error"
