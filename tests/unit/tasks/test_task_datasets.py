"""Data set tasks from local files that mimic each preset's hub schema (no network): mapping, splits, errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ladkit.errors import LadkitError
from ladkit.tasks.datasets import DatasetTask, as_answer
from ladkit.tasks.mathverify import MathVerifyScorer

DAPO_INSTRUCTION = "Solve the following math problem step by step. The last line of your response should be of the form Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"  # noqa: E501


@pytest.fixture(scope="module")
def scorer():
    with MathVerifyScorer(timeout_s=5, workers=2) as shared:
        yield shared


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def write_parquet(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


def gsm8k_rows(count: int, start: int = 0) -> list[dict]:
    # openai/gsm8k "main": question, answer = worked solution ending in "#### <number>"
    return [
        {
            "question": f"Tom has {i} apples and buys {i} more. How many?",
            "answer": f"{i}+{i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i:,}",
        }  # noqa: E501
        for i in range(start, start + count)
    ]


def dapo_rows(count: int) -> list[dict]:
    # BytedTsinghua-SIA/DAPO-Math-17k (verl format): prompt = chat messages, reward_model.ground_truth
    return [
        {
            "data_source": "math_dapo",
            "prompt": [{"content": f"{DAPO_INSTRUCTION}What is {i} squared?", "role": "user"}],
            "ability": "MATH",
            "reward_model": {"ground_truth": str(i * i), "style": "rule-lighteval/MATH_v2"},
            "extra_info": {"index": f"id-{i}"},
        }
        for i in range(count)
    ]


def test_gsm8k_preset_from_local_files(tmp_path, scorer):
    train = write_jsonl(tmp_path / "train.jsonl", gsm8k_rows(20))
    test = write_jsonl(tmp_path / "test.jsonl", gsm8k_rows(5, start=100))
    task = DatasetTask(train, preset="gsm8k", eval_split=test, scorer=scorer)
    assert len(task.train_examples()) == 20 and len(task.eval_examples()) == 5
    example = task.eval_examples()[0]
    assert example.answer == "200"  # "#### 200" -> 200 (and "#### 1,000" would give 1000)
    (message,) = example.prompt
    assert message["role"] == "user" and message["content"].startswith("Tom has 100 apples")
    assert "\\boxed{}" in message["content"]
    results = task.score(["... so \\boxed{200}", "#### 200", "200"], [example] * 3)
    assert [r.reward for r in results] == [1.0, 1.0, 0.0]


def test_gsm8k_preset_reads_the_hub_by_id(monkeypatch):
    # The product path: datasets.load_dataset("openai/gsm8k", "main", split=...), faked offline.
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return datasets.Dataset.from_list(gsm8k_rows(12 if split == "train" else 4, 0 if split == "train" else 50))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = DatasetTask(preset="gsm8k", prompt_style="compact")
    assert len(task.train_examples()) == 12 and len(task.eval_examples()) == 4
    assert calls == [("openai/gsm8k", "main", "train"), ("openai/gsm8k", "main", "test")]
    assert task.train_examples()[0].prompt == gsm8k_rows(1)[0]["question"]  # compact: the raw text


def test_math500_preset_is_eval_only(tmp_path, scorer):
    rows = [
        {
            "problem": "Simplify $\\frac{2}{4}$.",
            "solution": "...",
            "answer": "\\frac{1}{2}",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "test/algebra/1.json",
        }
    ] + [
        {
            "problem": f"What is {i}+{i}?",
            "solution": "...",
            "answer": str(2 * i),
            "subject": "Prealgebra",
            "level": 1,
            "unique_id": f"test/prealgebra/{i}.json",
        }
        for i in range(9)
    ]
    task = DatasetTask(write_parquet(tmp_path / "test.parquet", rows), preset="math500", scorer=scorer)
    assert task.train_examples() == [] and len(task.eval_examples()) == 10
    first = task.eval_examples()[0]
    assert task.score(["The answer is \\boxed{0.5}"], [first])[0].reward == 1.0


def test_dapo_preset_keeps_messages_and_nested_answer(tmp_path, scorer):
    rows = dapo_rows(10) * 3  # the hub copy repeats every prompt many times
    task = DatasetTask(
        write_parquet(tmp_path / "dapo.parquet", rows), preset="dapo_math", eval_split=0.2, scorer=scorer
    )
    examples = task.train_examples() + task.eval_examples()
    assert len(examples) == 10 and task.stats["train"]["duplicates"] == 20
    example = next(e for e in examples if e.answer == "49")
    assert example.prompt == [{"role": "user", "content": f"{DAPO_INSTRUCTION}What is 7 squared?"}]  # kept as is
    results = task.score(["7*7 is 49.\nAnswer: $49$", "Answer: 48"], [example, example])
    assert [r.reward for r in results] == [1.0, 0.0]


def test_aime_preset_with_integer_answers(tmp_path):
    rows = [
        {"id": 60 + i, "problem": f"Find {i}.", "solution": "...", "answer": i, "url": "u", "year": "2024"}
        for i in range(5)
    ]
    task = DatasetTask(write_jsonl(tmp_path / "aime.jsonl", rows), preset="aime")
    assert [e.answer for e in task.eval_examples()] == ["0", "1", "2", "3", "4"]


def test_missing_field_lists_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", gsm8k_rows(3))
    with pytest.raises(LadkitError) as caught:
        DatasetTask(path, prompt_field="query", answer_field="answer").train_examples()
    message = str(caught.value)
    assert "'query' not found" in message and "fields there: answer, question" in message
    assert "\n" not in message


def test_missing_nested_field_lists_the_nested_fields(tmp_path):
    path = write_parquet(tmp_path / "dapo.parquet", dapo_rows(3))
    with pytest.raises(LadkitError, match="'reward_model.truth' not found in 'reward_model'.*ground_truth, style"):
        DatasetTask(path, preset="dapo_math", answer_field="reward_model.truth").train_examples()


def test_hub_missing_field_lists_the_columns(monkeypatch):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: datasets.Dataset.from_list(gsm8k_rows(3)))
    with pytest.raises(LadkitError, match="'problem' not found .*fields there: answer, question"):
        DatasetTask("someone/data", prompt_field="problem").train_examples()


def test_unusable_rows_are_skipped_and_counted(tmp_path):
    rows = gsm8k_rows(10)
    rows += [
        {"question": "", "answer": "#### 3"},  # empty prompt
        {"question": "Q?", "answer": None},  # null answer
        {"question": None, "answer": "1"},  # null prompt
        {"answer": "#### 4"},  # no prompt key in this row
        {"question": "   ", "answer": "2"},  # blank prompt
        {"question": "Only words", "answer": "#### "},  # nothing after ####
    ]
    task = DatasetTask(write_jsonl(tmp_path / "d.jsonl", rows), preset="gsm8k", eval_split=0.1)
    assert task.skipped_rows == 6
    assert task.stats["train"]["rows"] == 16
    assert len(task.train_examples()) + len(task.eval_examples()) == 10


def test_held_out_fraction_is_disjoint_and_seeded(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(40))
    split = lambda seed: DatasetTask(path, preset="gsm8k", eval_split=0.25, seed=seed)  # noqa: E731
    task = split(0)
    train, held_out = task.train_examples(), task.eval_examples()
    assert len(held_out) == 10 and len(train) == 30
    assert not {e.id for e in train} & {e.id for e in held_out}
    assert [e.id for e in split(0).eval_examples()] == [e.id for e in held_out]
    assert [e.id for e in split(1).eval_examples()] != [e.id for e in held_out]


def test_default_hold_out_is_at_most_a_tenth(tmp_path):
    task = DatasetTask(write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(50)), prompt_field="question", eval_size=200)
    assert len(task.eval_examples()) == 5 and len(task.train_examples()) == 45
    assert DatasetTask(task.source, prompt_field="question", eval_size=0).eval_examples() == []


def test_eval_split_overlap_is_removed_from_training(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", gsm8k_rows(10))
    test = write_jsonl(tmp_path / "test.jsonl", gsm8k_rows(3, start=8))  # rows 8 and 9 also in train
    task = DatasetTask(train, preset="gsm8k", eval_split=test)
    assert len(task.train_examples()) == 8 and task.stats["train"]["overlap_removed"] == 2


def test_sizes_and_local_split_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", gsm8k_rows(30))
    task = DatasetTask(path, preset="gsm8k", eval_split=0.5, train_size=4, eval_size=3)
    assert (len(task.train_examples()), len(task.eval_examples())) == (4, 3)
    with pytest.raises(LadkitError, match="a local file has one split"):
        DatasetTask(path, preset="gsm8k", eval_split="test").train_examples()
    (tmp_path / "d.txt").write_text("question,answer\n")
    with pytest.raises(LadkitError, match="unsupported file type"):
        DatasetTask(str(tmp_path / "d.txt"), preset="gsm8k").train_examples()
    with pytest.raises(LadkitError, match="unknown data set preset"):
        DatasetTask(path, preset="gsm9k")


def test_hub_load_failure_is_one_line(monkeypatch):
    import datasets

    def fail(*args, **kwargs):
        raise FileNotFoundError("Couldn't find a dataset script\nat ... second line")

    monkeypatch.setattr(datasets, "load_dataset", fail)
    with pytest.raises(LadkitError) as caught:
        DatasetTask("nobody/nothing").train_examples()
    assert "could not load data set 'nobody/nothing'" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#### 1,234", "1234"),
        ("The total is \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        (72, "72"),
        ("", None),
        (None, None),
    ],
)
def test_gold_answers(raw, expected):
    assert as_answer(raw) == expected


def test_missing_nested_parent_lists_the_top_level_fields(tmp_path):
    path = write_parquet(tmp_path / "dapo.parquet", dapo_rows(3))
    with pytest.raises(LadkitError, match="'reward.truth' not found in .*fields there: ability, data_source, extra"):
        DatasetTask(path, preset="dapo_math", answer_field="reward.truth").train_examples()
