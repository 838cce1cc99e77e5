"""Code tasks: extraction, the reward and its reasons, presets read from local files mimicking hub schemas."""

from __future__ import annotations

import json

import pytest

from ladkit.errors import LadkitError
from ladkit.sandbox import Limits
from ladkit.tasks import TaskConfig, make_task
from ladkit.tasks.base import Example
from ladkit.tasks.code import CodeScorer, CodeTask, extract_code
from ladkit.tasks.code_data import BUILTIN_PATH
from ladkit.tasks.datasets import DatasetConfig

FAST = Limits(wall_s=10.0, cpu_s=2, memory_mb=256)  # wall: slack for a loaded CI machine; CPU bounds loops
ADD_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}]
ADD = "a, b = map(int, input().split())\nprint(a + b)"


@pytest.fixture(scope="module")
def scorer():
    return CodeScorer("fraction", FAST, workers=2)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def example(tests, **metadata) -> Example:
    return Example("x", "prompt", tests, metadata)


# ---------------------------------------------------------------------------------------------- extraction


def test_extract_prefers_the_last_python_block():
    text = "try:\n```python\nprint(1)\n```\nbetter:\n```python\nprint(2)\n```\n```text\nout\n```"
    assert extract_code(text) == "print(2)"


def test_extract_falls_back_to_any_block_then_an_unclosed_one_then_plain_code():
    assert extract_code("```\nprint(3)\n```") == "print(3)"
    assert extract_code("here:\n```python\nprint(4)\nprint(5") == "print(4)\nprint(5"
    assert extract_code("print(6)\n") == "print(6)"
    assert extract_code("   \n") is None


# ------------------------------------------------------------------------------------------------- reward


def test_fraction_and_all_or_nothing_rewards(scorer):
    half = "a, b = map(int, input().split())\nprint(3)"
    fraction = scorer.score([f"```python\n{half}\n```"], [example(ADD_TESTS)])[0]
    assert fraction.reward == 0.5 and fraction.parts == {"compiled": 1.0, "passed_frac": 0.5}
    assert fraction.reason == "wrong_answer"
    strict = CodeScorer("all", FAST, workers=2).score([half], [example(ADD_TESTS)])[0]
    assert strict.reward == 0.0 and strict.parts["passed_frac"] == 0.5


def test_correct_program_scores_one_with_no_reason(scorer):
    result = scorer.score([ADD], [example(ADD_TESTS)])[0]
    assert (result.reward, result.reason, result.extracted) == (1.0, None, ADD)


def test_assert_tests_and_the_humaneval_prefix(scorer):
    prefix = "def add(a, b):\n    '''Add.'''\n"
    tests = [{"assert": "assert add(1, 2) == 3"}, {"assert": "assert add(0, 0) == 0"}]
    body_only = scorer.score(["    return a + b\n"], [example(tests, prefix=prefix, entry_point="add")])[0]
    assert body_only.reward == 1.0
    early_exit = scorer.score(["import sys\nsys.exit(0)"], [example(tests)])[0]
    assert early_exit.reward == 0.0 and early_exit.reason == "wrong_answer"


@pytest.mark.parametrize(
    ("completion", "tests", "reason"),
    [
        ("print(1)", None, "no_tests"),
        ("print(1)", [], "no_tests"),
        ("print(1)", [{"input": "1"}], "bad_tests"),
        ("print(1)", ["assert True"], "bad_tests"),
        ("", ADD_TESTS, "no_code"),
        ("def f(:\n", ADD_TESTS, "syntax_error"),
        ("while True:\n    pass", ADD_TESTS[:1], "timeout"),
        ("raise ValueError('boom')", ADD_TESTS[:1], "crash"),
    ],
)
def test_bad_input_scores_zero_with_its_reason(scorer, completion, tests, reason):
    result = scorer.score([completion], [example(tests)])[0]
    assert result.reward == 0.0
    assert result.reason.split(":")[0] == reason


def test_unknown_reward_mode_is_an_error():
    with pytest.raises(LadkitError, match="fraction"):
        CodeScorer("most")


# ---------------------------------------------------------------------------------------------- presets


def test_humaneval_schema_is_eval_only_and_scores_the_canonical_solution(tmp_path, scorer):
    prompt = 'def inc(x):\n    """Add one."""\n'
    test = "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n"
    row = {"task_id": "HumanEval/0", "prompt": prompt, "canonical_solution": "    return x + 1\n", "test": test}
    source = write_jsonl(tmp_path / "he.jsonl", [{**row, "entry_point": "inc"}, {**row, "entry_point": None}])
    task = CodeTask("humaneval", source, scorer=scorer)
    assert task.train_examples() == [] and len(task.eval_examples()) == 1
    assert task.stats["eval"]["skipped"] == 1
    (ex,) = task.eval_examples()
    assert ex.id == "HumanEval/0" and "check(inc)" in ex.answer[0]["assert"]
    assert task.score(["```python\n    return x + 1\n```"], [ex])[0].reward == 1.0
    assert task.score(["    return x + 2\n"], [ex])[0].reward == 0.0


def test_mbpp_schema_puts_the_first_test_in_the_prompt(tmp_path):
    rows = [
        {
            "task_id": i,
            "text": f"Write a function to add {i}.",
            "code": "",
            "test_list": [f"assert add{i}(1) == {1 + i}"],
        }
        for i in range(20)
    ]
    task = make_task(
        TaskConfig(
            name="mbpp",
            dataset=DatasetConfig(write_jsonl(tmp_path / "mbpp.jsonl", rows)),
            eval_size=2,
            prompt_style="chat",
        )
    )
    examples = task.train_examples() + task.eval_examples()
    assert len(task.eval_examples()) == 2 and len(examples) == 20
    first = next(e for e in examples if e.id == "0")
    assert "assert add0(1) == 1" in first.prompt[0]["content"] and first.metadata["entry_point"] == "add0"


def test_deepcoder_schema_reads_tests_from_a_json_string(tmp_path, scorer):
    stdin_tests = json.dumps([{"input": "2\n", "output": "4\n", "testtype": "stdin"}])
    functional = json.dumps([{"input": "3\n4", "output": "7", "testtype": "functional"}])
    rows = [
        {"problem": "Double n.", "tests": stdin_tests, "metadata": "{}"},
        {"problem": "Add.", "tests": functional, "metadata": json.dumps({"func_name": "add"})},
        {"problem": "Broken.", "tests": "not json", "metadata": "{}"},
    ]
    task = CodeTask("deepcoder", write_jsonl(tmp_path / "dc.jsonl", rows), eval_split=None, eval_size=0, scorer=scorer)
    double, add = task.train_examples()
    assert task.stats["train"]["skipped"] == 1
    solution = "class Solution:\n    def add(self, a, b):\n        return a + b\n"
    results = task.score(["print(2 * int(input()))", solution], [double, add])
    assert [r.reward for r in results] == [1.0, 1.0]


def test_local_rows_with_malformed_tests_are_skipped_and_counted(tmp_path):
    rows = [
        {"prompt": "ok", "tests": ADD_TESTS},
        {"prompt": "no tests", "tests": []},
        {"prompt": "bad", "tests": [{"inp": "1"}]},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    task = make_task(
        TaskConfig(name="code", dataset=DatasetConfig(path, max_skipped_fraction=0.7), eval_size=0, prompt_style="chat")
    )
    assert [e.prompt[0]["content"].split("\n")[0] for e in task.train_examples()] == ["ok"]
    assert task.stats["train"]["skipped"] == 2 and task.stats["train"]["bad_tests"] == 1
    # 2 of 3 rows unusable is past the default share (0.5): the run refuses to start, naming the knob
    strict = make_task(TaskConfig(name="code", dataset=DatasetConfig(path), eval_size=0, prompt_style="chat"))
    with pytest.raises(LadkitError, match="2 of 3 rows .* could not be used.*max_skipped_fraction"):
        strict.train_examples()


def test_code_task_needs_a_data_set():
    with pytest.raises(LadkitError, match="task.dataset.path is required"):
        TaskConfig(name="code")


def test_builtin_task_is_compact_and_every_reference_solution_passes():
    task = make_task(TaskConfig(name="code_builtin", prompt_style="compact", reward_workers=2))
    examples = task.train_examples() + task.eval_examples()
    assert len(examples) == 50 and len(task.eval_examples()) == 5
    solutions = {row["id"]: row["solution"] for row in map(json.loads, BUILTIN_PATH.read_text().splitlines())}
    results = task.score([solutions[e.id] for e in examples], examples)
    assert [e.id for e, r in zip(examples, results) if r.reward != 1.0] == []
