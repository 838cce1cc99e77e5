"""Arithmetic and gsm_symbolic from reasoning-gym: prompt formats, held-out split, math-verify rewards."""

from __future__ import annotations

import re

import pytest

from ladkit.errors import LadkitError
from ladkit.tasks import arithmetic
from ladkit.tasks.arithmetic import ArithmeticTask
from ladkit.tasks.mathverify import MathVerifyScorer


@pytest.fixture(scope="module")
def scorer():
    with MathVerifyScorer(timeout_s=5, workers=2) as shared:
        yield shared


def test_compact_arithmetic_prompt_and_rewards(scorer):
    task = ArithmeticTask("basic_arithmetic", "compact", seed=1, train_size=30, eval_size=10, scorer=scorer)
    example = task.train_examples()[0]
    # the expression without spaces, then "=": e.g. "-33/11+-22=" with answer "-25"
    assert re.fullmatch(r"[-+*/()0-9]+=", example.prompt)
    assert example.prompt == example.metadata["expression"].replace(" ", "") + "="
    wrong = str(int(example.answer) + 1)
    results = task.score(
        [example.answer, f"{example.answer}\nand more", wrong, "", "\n" + example.answer], [example] * 5
    )
    assert [r.reward for r in results] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert [r.reason for r in results[2:]] == ["wrong", "no_answer", "no_answer"]


def test_references_score_one_in_both_styles_and_generators(scorer):
    for generator in ("basic_arithmetic", "gsm_symbolic"):
        for style in ("compact", "chat"):
            task = ArithmeticTask(generator, style, seed=2, train_size=15, eval_size=5, scorer=scorer)
            examples = task.train_examples() + task.eval_examples()
            results = task.score([task.reference(e) for e in examples], examples)
            assert [r.reward for r in results] == [1.0] * len(examples), (generator, style)


def test_chat_prompt_asks_for_boxed(scorer):
    task = ArithmeticTask("gsm_symbolic", "chat", seed=2, train_size=15, eval_size=5, scorer=scorer)
    example = task.train_examples()[0]
    (message,) = example.prompt
    assert message["role"] == "user" and "\\boxed{}" in message["content"]
    assert example.metadata["solution"].rstrip().endswith(f"#### {example.answer}")
    unboxed = f"I think it is {example.answer}."  # right number, but not in a box
    results = task.score([unboxed, f"\\boxed{{{example.answer}}}"], [example, example])
    assert [r.reason for r in results] == ["no_answer", None]


def test_held_out_split_is_disjoint_and_deterministic(scorer):
    task = ArithmeticTask("basic_arithmetic", "chat", seed=4, train_size=300, eval_size=50, scorer=scorer)
    train = {e.metadata["question"] for e in task.train_examples()}
    held_out = [e.metadata["question"] for e in task.eval_examples()]
    assert len(train) == 300 and len(set(held_out)) == 50
    assert not train & set(held_out)
    arithmetic._generate.cache_clear()  # regenerate rather than reuse the cached problems
    again = ArithmeticTask("basic_arithmetic", "chat", seed=4, train_size=300, eval_size=50, scorer=scorer)
    assert [e.prompt for e in again.train_examples()] == [e.prompt for e in task.train_examples()]
    other = ArithmeticTask("basic_arithmetic", "chat", seed=5, train_size=300, eval_size=50, scorer=scorer)
    assert [e.prompt for e in other.train_examples()] != [e.prompt for e in task.train_examples()]


def test_generator_options_and_errors(scorer):
    task = ArithmeticTask(
        "basic_arithmetic", "compact", train_size=20, eval_size=0, generator_options={"max_terms": 2}, scorer=scorer
    )
    for example in task.train_examples():  # two terms: exactly one binary operator after the first number
        assert len(re.findall(r"(?<=\d)\s*[-+*/]", example.metadata["expression"])) == 1
    assert task.eval_examples() == []
    with pytest.raises(LadkitError, match="bad generator option"):
        ArithmeticTask("basic_arithmetic", generator_options={"nonsense": 1}, scorer=scorer).train_examples()
    with pytest.raises(LadkitError, match="unknown arithmetic generator"):
        ArithmeticTask("calculus", scorer=scorer)
