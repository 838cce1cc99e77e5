"""One bad row cannot take the process's memory (issue 20.4): a prompt or gold answer over
task.dataset.max_prompt_tokens x CHARS_PER_TOKEN characters is skipped and counted before any tokeniser sees it.
Then, with the model's tokenizer, prompts over max_prompt_tokens tokens as rendered are dropped (`fit_prompts`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ladkit.config import build
from ladkit.errors import LadkitError
from ladkit.tasks.datasets import CHARS_PER_TOKEN, DatasetTask
from ladkit.training.config import TrainConfig


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_prompt_or_answer_over_the_bound_is_skipped_and_counted(tmp_path):
    bound = 8 * CHARS_PER_TOKEN  # max_prompt_tokens = 8: 128 characters
    rows = [{"prompt": f"What is {i}+1?", "answer": str(i + 1)} for i in range(6)]
    rows += [
        {"prompt": "x" * (bound + 1), "answer": "1"},  # one character over
        {"prompt": "y" * bound, "answer": "2"},  # exactly at the bound: kept
        {"prompt": "short", "answer": "9" * (bound + 1)},  # a huge gold answer
        {"prompt": [{"role": "user", "content": "z" * 100}, {"role": "user", "content": "z" * 29}], "answer": "3"},
    ]
    task = DatasetTask(str(_write(tmp_path / "d.jsonl", rows)), eval_size=0, scorer=object(), max_prompt_tokens=8)
    prompts = [e.prompt[0]["content"].split("\n")[0] for e in task.train_examples()]
    assert len(prompts) == 7 and "y" * bound in prompts  # 6 short rows and the one at the bound
    # three rows over 128 characters: 129 x, a 129-digit answer, and chat messages of 100 + 29 characters
    assert task.stats["train"] == {"rows": 10, "skipped": 3, "too_long": 3, "duplicates": 0}


def test_max_prompt_tokens_is_a_documented_config_field():
    assert build(TrainConfig, {"task": {"dataset": {"max_prompt_tokens": 100}}}).task.dataset.max_prompt_tokens == 100
    with pytest.raises(LadkitError, match=r"^task\.dataset\.max_prompt_tokens must be >= 1, got 0$"):
        build(TrainConfig, {"task": {"dataset": {"max_prompt_tokens": 0}}})


PEAK = textwrap.dedent(
    """
    import json, resource, sys
    from ladkit.tasks.datasets import DatasetTask
    task = DatasetTask(sys.argv[1], eval_size=0, scorer=object())
    examples = task.train_examples()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"examples": len(examples), "too_long": task.stats["train"]["too_long"], "peak_mb": peak_mb}))
    """
)


def _peak(path) -> dict:
    out = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_one_twenty_million_character_row_costs_only_its_own_bytes(tmp_path):
    """The row is read (20 MB of text, held a few times over by json and the line reader) and dropped; it never
    reaches a tokeniser, whose buffers for 20M characters took a process to 22 GB in the issue."""
    rows = [{"prompt": f"What is {i}+1?", "answer": str(i + 1)} for i in range(50)]
    clean = _peak(_write(tmp_path / "clean.jsonl", rows))
    bad = _peak(_write(tmp_path / "bad.jsonl", [*rows, {"prompt": "9" * 20_000_000, "answer": "1"}]))
    assert (clean["examples"], bad["examples"], bad["too_long"]) == (50, 50, 1)
    # 20M characters are 20 MB as one str; json parsing and the line hold ~3 copies at once: < 150 MB more
    assert bad["peak_mb"] - clean["peak_mb"] < 150, (clean, bad)


SUMS = [{"prompt": f"{i}+{i % 7}=", "answer": str(i + i % 7)} for i in range(16)]  # 4-5 characters each


def _train_on(tmp_path, rows, **dataset) -> dict:
    """One step of the built-in model on `rows` (compact prompts); the run's meta.json."""
    from ladkit.training.loop import train

    data = {"path": str(_write(tmp_path / "d.jsonl", rows)), **dataset}
    config = build(
        TrainConfig,
        {"steps": 1, "prompts_per_step": 2, "group_size": 2, "eval_every": 0, "tracked_prompts": 0,
         "task": {"name": "dataset", "prompt_style": "compact", "eval_size": 2, "dataset": data}},
    )  # fmt: skip
    train(config, tmp_path / "run")
    return json.loads((tmp_path / "run" / "meta.json").read_text())


def test_a_training_run_records_the_rows_it_skipped_in_meta_json(tmp_path):
    long = {"prompt": "7" * (4096 * CHARS_PER_TOKEN + 1), "answer": "1"}  # over the default bound
    meta = _train_on(tmp_path, [*SUMS, long])
    assert meta["data_rows"]["train"] == {"rows": 17, "skipped": 1, "too_long": 1, "duplicates": 0}


def _lengths_task(tmp_path, lengths, **options):
    """A data set whose prompt i is "p<i>:" followed by lengths[i] - 1 letters (compact style, no chat text)."""
    rows = [{"prompt": f"p{i}:" + "a" * (n - 1), "answer": str(i)} for i, n in enumerate(lengths)]
    options = {"eval_size": 0, "scorer": object(), "prompt_style": "compact", **options}
    return DatasetTask(str(_write(tmp_path / "d.jsonl", rows)), **options)


def test_prompts_over_max_prompt_tokens_are_dropped_and_the_split_is_topped_up(tmp_path):
    lengths = [2, 9, 3, 9, 4, 5, 1]
    task = _lengths_task(tmp_path, lengths, train_size=3, max_prompt_tokens=8)
    assert len(task.train_examples()) == 3  # rows 0, 1, 2 before the model's tokenizer is known
    asked = []

    def tokens(example):  # stands in for the rendered length: the letters after "p<i>:", plus one
        asked.append(example.id)
        return lengths[int(example.prompt.split(":")[0][1:])]

    task.fit_prompts(tokens)
    # walked in order: 2 kept, 9 dropped, 3 kept, 9 dropped, 4 kept: three kept, so rows 5 and 6 are not asked
    assert [e.prompt.split(":")[0] for e in task.train_examples()] == ["p0", "p2", "p4"]
    assert len(asked) == 5
    assert task.stats["train"] == {"rows": 7, "skipped": 2, "too_long": 2, "duplicates": 0}
    task.fit_prompts(lambda example: 10**6)  # once: a second call changes nothing
    assert len(task.train_examples()) == 3 and task.stats["train"]["too_long"] == 2


def test_most_prompts_over_max_prompt_tokens_is_a_one_line_error(tmp_path):
    task = _lengths_task(tmp_path, [9, 9, 3, 9], max_prompt_tokens=8)  # 3 of 4 over: more than the half allowed
    with pytest.raises(LadkitError) as error:
        task.fit_prompts(lambda example: int(len(example.prompt.split(":")[1]) + 1))
    message = str(error.value)
    assert message.startswith("3 of 4 train prompts of ") and "\n" not in message
    assert "over task.dataset.max_prompt_tokens=8 tokens as the model renders them; raise max_prompt_tokens" in message


def test_a_training_run_drops_prompts_over_max_prompt_tokens_in_the_models_tokens(tmp_path):
    # the builtin model's character tokenizer: a compact prompt of n characters is n tokens (+ BOS); 30-character
    # prompts are far under the character bound (12 x 16 = 192) and over 12 tokens: only the tokenizer sees it
    long = [{"prompt": f"{i}" + "+0" * 14 + "=", "answer": str(i)} for i in (3, 5)]
    meta = _train_on(tmp_path, [*SUMS, *long], max_prompt_tokens=12)
    dropped = sum(part.get("too_long", 0) for part in meta["data_rows"].values())
    assert dropped == 2 and meta["data_rows"]["train"]["rows"] == 18
