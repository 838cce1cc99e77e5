"""Countdown: prompts in both styles, rewards on known completions, splits, determinism, reference solutions."""

from __future__ import annotations

import re

import pytest

from ladkit.tasks import countdown
from ladkit.tasks.base import Example
from ladkit.tasks.countdown import CountdownTask, compact_prompt, problem_key, solutions

PROBLEM = Example("p", "7,5,9,3->72:", 72, {"numbers": [7, 5, 9, 3], "target": 72})


def score(style: str, completion: str):
    return CountdownTask(prompt_style=style).score([completion], [PROBLEM])[0]


@pytest.fixture(scope="module")
def task() -> CountdownTask:
    # 200 training + 50 held-out problems: enough for the "every reference scores 1" check (~1 s to generate)
    return CountdownTask(seed=3, train_size=200, eval_size=50)


@pytest.mark.parametrize(
    ("completion", "reward", "reason"),
    [
        ("(7+5)*(9-3)", 1.0, None),
        ("(9-3)*(5+7)\nthen some rambling", 1.0, None),  # only the first line is the answer
        ("  (7+5)*(9-3)  ", 1.0, None),
        ("7+5+9+3", 0.0, "wrong_value"),  # 24, every number used once
        ("(7+5)*9", 0.0, "wrong_numbers"),  # 3 unused
        ("(7+5)*(9-3)*1", 0.0, "wrong_numbers"),  # an extra number
        ("(7+7)*(9-3)", 0.0, "wrong_numbers"),  # 7 twice, 5 unused
        ("(7+5)*(9-3", 0.0, "parse_error"),
        ("7**2", 0.0, "parse_error"),
        ("", 0.0, "no_answer"),
        ("\n(7+5)*(9-3)", 0.0, "no_answer"),  # an empty first line
        ("7*5/(9-9)", 0.0, "wrong_numbers"),
        ("(7*9)/(3-3)+5", 0.0, "wrong_numbers"),
    ],
)
def test_compact_rewards(completion, reward, reason):
    result = score("compact", completion)
    assert result.reward == reward
    assert (result.reason or "").startswith(reason or "")
    assert result.parts["correct"] == reward


def test_division_by_zero_with_the_right_numbers_is_a_wrong_value():
    problem = Example("z", "", 5, {"numbers": [3, 3, 7, 5], "target": 5})
    result = CountdownTask().score(["7*5/(3-3)"], [problem])[0]
    assert (result.reward, result.reason, result.parts["format"]) == (0.0, "wrong_value", 1.0)


def test_parse_error_names_the_problem():
    assert score("compact", "7**2").reason == "parse_error: power operator '**' is not allowed"
    assert score("compact", "7**2").parts == {"format": 0.0, "correct": 0.0}


@pytest.mark.parametrize(
    ("completion", "reward", "reason"),
    [
        ("Let me think. <answer>(7+5)*(9-3)</answer>", 1.0, None),
        ("<answer>7+5+9+3</answer> no wait <answer>(7+5)*(9-3)</answer>", 1.0, None),  # the last block counts
        ("<answer>(7+5)*(9-3)</answer> hmm <answer>7+5+9+3</answer>", 0.0, "wrong_value"),
        ("<answer>\n(7 + 5) * (9 - 3)\n</answer>", 1.0, None),
        ("(7+5)*(9-3)", 0.0, "no_answer"),  # right expression, but not in the tags the prompt asks for
        ("<answer></answer>", 0.0, "no_answer"),
        ("<answer>72</answer>", 0.0, "wrong_numbers"),
        ("<answer>(7+5)*(9-3)=72</answer>", 0.0, "parse_error"),  # the prompt says: no '='
    ],
)
def test_chat_rewards(completion, reward, reason):
    result = score("chat", completion)
    assert result.reward == reward
    assert (result.reason or "").startswith(reason or "")


def test_extracted_is_the_canonical_form():
    a, b = score("compact", "(7+5)*(9-3)"), score("compact", "(9-3)*(5+7)")
    assert a.extracted == b.extracted == "(5+7)*(9-3)"
    assert score("compact", "7+5+9+3").extracted == "3+5+7+9"  # wrong answers are canonicalised too
    assert score("compact", "").extracted is None


def test_compact_prompt_format_and_generator_order(task):
    import reasoning_gym

    example = task.train_examples()[0]
    numbers, target = example.metadata["numbers"], example.answer
    assert example.prompt == ",".join(map(str, numbers)) + f"->{target}:"
    assert re.fullmatch(r"\d+,\d+,\d+,\d+->\d+:", example.prompt)
    assert compact_prompt([7, 5, 9, 3], 36) == "7,5,9,3->36:"
    # numbers stay in the generator's (shuffled) order
    entry = reasoning_gym.create_dataset(
        "countdown", seed=3, size=1, min_numbers=4, max_numbers=4, **countdown.DEFAULT_GENERATOR
    )[example.metadata["source_index"]]
    assert entry["metadata"]["numbers"] == numbers
    assert entry["metadata"]["target"] == target


def test_chat_prompt_is_one_user_message():
    task = CountdownTask(prompt_style="chat", seed=3, train_size=20, eval_size=5)
    (message,) = task.train_examples()[0].prompt
    assert message["role"] == "user"
    assert "<answer>" in message["content"]
    numbers = task.train_examples()[0].metadata["numbers"]
    assert ", ".join(map(str, numbers)) in message["content"]


def test_splits_are_disjoint_and_distinct(task):
    train = {problem_key(e.metadata["numbers"], e.answer) for e in task.train_examples()}
    held_out = [problem_key(e.metadata["numbers"], e.answer) for e in task.eval_examples()]
    assert len(task.train_examples()) == 200 and len(held_out) == 50
    assert len(set(held_out)) == 50  # no repeated problem in the held-out split
    assert not train & set(held_out)
    assert not {e.id for e in task.train_examples()} & {e.id for e in task.eval_examples()}


def test_default_distribution(task):
    for example in task.train_examples():
        assert len(example.metadata["numbers"]) == 4
        assert all(1 <= n <= 10 for n in example.metadata["numbers"])
        assert 10 <= example.answer <= 40


def test_deterministic_by_seed():
    countdown._generate.cache_clear()  # rebuild from scratch, not from the cache
    first = CountdownTask(seed=11, train_size=20, eval_size=5)
    keys = [e.prompt for e in first.train_examples() + first.eval_examples()]
    countdown._generate.cache_clear()
    again = CountdownTask(seed=11, train_size=20, eval_size=5)
    assert [e.prompt for e in again.train_examples() + again.eval_examples()] == keys
    other = CountdownTask(seed=12, train_size=20, eval_size=5)
    assert [e.prompt for e in other.train_examples()] != keys[:20]


def test_reference_solutions_score_one(task):
    examples = task.train_examples() + task.eval_examples()
    assert len(examples) >= 250
    results = task.score([task.reference(e) for e in examples], examples)
    failures = [(e.metadata, r) for e, r in zip(examples, results) if r.reward != 1.0]
    assert not failures


def test_reference_in_chat_style_scores_one():
    chat = CountdownTask(prompt_style="chat", seed=3, train_size=20, eval_size=5)
    examples = chat.train_examples()[:20]
    assert chat.reference(examples[0]).startswith("<answer>")
    assert all(r.reward == 1.0 for r in chat.score([chat.reference(e) for e in examples], examples))


def test_solutions_hand_worked():
    # 1,2,3,4 -> 24: 1*2*3*4 (and every reordering of it), 2*3*4/1, (1+3)*(2+4), 4*(1+2+3)
    assert solutions([4, 3, 2, 1], 24) == {"1*2*3*4", "2*3*4/1", "(1+3)*(2+4)", "4*(1+2+3)"}
    assert solutions([3, 3, 8, 8], 24) == {"8/(3-8/3)"}  # needs a fractional intermediate (1/3)
    assert solutions([1, 1, 1, 1], 40) == frozenset()


def test_every_solution_scores_one(task):
    example = task.train_examples()[0]
    numbers, target = example.metadata["numbers"], example.answer
    found = sorted(solutions(numbers, target))
    assert found
    results = task.score(found, [example] * len(found))
    assert all(r.reward == 1.0 for r in results)
    assert [r.extracted for r in results] == found  # a canonical form is its own canonical form


def test_bad_settings_are_one_line_errors():
    from ladkit.errors import LadkitError

    with pytest.raises(LadkitError, match="prompt_style"):
        CountdownTask(prompt_style="fancy")
    with pytest.raises(LadkitError, match="at most 5"):
        solutions([1, 2, 3, 4, 5, 6], 10)
