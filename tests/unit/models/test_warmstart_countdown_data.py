"""The warm-start data: compact format, brute-force solver and the exact (never-eval) checker."""

from __future__ import annotations

import random

import pytest

from ladkit.models import countdown_data as cd


def test_compact_prompt_has_no_spaces():
    assert cd.compact_prompt((7, 5, 9, 3), 36) == "7,5,9,3->36:"


@pytest.mark.parametrize(
    "expression, numbers, target, ok",
    [
        ("(7+5)*(9-3)", (7, 5, 9, 3), 72, True),
        ("(7+5)*(9-3)", (7, 5, 9, 3), 36, False),  # wrong value
        ("7*1/1+6", (6, 7, 1, 1), 13, True),  # reasoning-gym's own style, division included
        ("10/4*2*2", (10, 4, 2, 2), 10, True),  # exact fractions: 10/4 = 5/2 is fine mid-way
        ("7+5+9", (7, 5, 9, 3), 21, False),  # a number unused
        ("7+5+9+3+3", (7, 5, 9, 3), 27, False),  # a number twice
        ("7+5+9+33", (7, 5, 9, 3), 54, False),  # digits glued into another number
        ("(7+5)*(9-3", (7, 5, 9, 3), 72, False),  # syntax error
        ("9/(3-3)+7+5", (7, 5, 9, 3, 3), 12, False),  # division by zero
        ("2**5", (2, 5), 32, False),  # power is not an allowed operator
        ("__import__('os')", (1,), 1, False),
        ("-7+5+9+3", (7, 5, 9, 3), 10, False),  # unary minus is not allowed
        ("", (1, 2), 3, False),
    ],
)
def test_is_correct(expression, numbers, target, ok):
    assert cd.is_correct(expression, numbers, target) is ok


def test_solver_solutions_are_all_correct_and_distinct():
    found = cd.solutions((7, 5, 9, 3), 72)
    assert "(7+5)*(9-3)" in found and "(9-3)*(7+5)" in found
    assert len(found) == len(set(found)) > 4
    assert all(cd.is_correct(text, (7, 5, 9, 3), 72) for text in found)
    assert all(" " not in text for text in found)


def test_solver_uses_minimal_parentheses():
    found = cd.solutions((1, 2, 3, 4), 10)
    assert "1+2+3+4" in found and "(1+2)+3+4" not in found
    assert "4*3-2*1" in found  # precedence does the work, no brackets
    assert "10-(3-2)" in cd.solutions((10, 3, 2), 9)  # 3 numbers work too; the right operand of '-' keeps its brackets


def test_solver_finds_nothing_for_impossible_targets():
    assert cd.solutions((1, 1, 1, 1), 40) == ()


def test_reasoning_gym_problems_and_the_held_out_split():
    problems = cd.reasoning_gym_problems(12, seed=3)
    assert len(problems) == 12
    for problem in problems:
        assert len(problem.numbers) == 4 and all(1 <= n <= 10 for n in problem.numbers)
        assert 10 <= problem.target <= 40
        assert cd.is_correct(problem.reference, problem.numbers, problem.target)
    kept = cd.split_problems(problems, {problems[0].key})
    assert problems[0].key not in {p.key for p in kept} and len({p.key for p in kept}) == len(kept)


def test_sample_completion_draws_correct_varied_solutions():
    problem = cd.Problem((7, 5, 9, 3), 72, "(7+5)*(9-3)")
    rng = random.Random(0)
    drawn = {cd.sample_completion(problem, rng) for _ in range(40)}
    assert len(drawn) > 3 and all(cd.is_correct(text, problem.numbers, problem.target) for text in drawn)
