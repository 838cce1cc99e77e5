"""Judging programs against test cases: stdin/stdout comparison, asserts with their marker, parsing, the pool."""

from __future__ import annotations

import pytest

from ladkit.errors import LadkitError
from ladkit.sandbox import Limits, TestCase, check_syntax, execute, run_batch, run_tests

FAST = Limits(wall_s=3.0, cpu_s=2, memory_mb=256)


def test_stdin_stdout_compares_tokens_not_whitespace():
    tests = [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "4\n\n"}, {"input": "2 3", "output": "6"}]
    results = run_tests("print(sum(map(int, input().split())), end='  \\n')", tests, FAST, workers=2)
    assert [r.passed for r in results] == [True, True, False]
    assert results[2].reason == "wrong_answer" and "'6'" in results[2].detail


def test_failed_assert_is_a_wrong_answer_and_other_errors_a_crash():
    code = "def f(x):\n    return 10 // x\n"
    tests = [{"assert": "assert f(5) == 2"}, {"assert": "assert f(5) == 3"}, {"assert": "assert f(0) == 0"}]
    results = run_tests(code, tests, FAST, workers=2)
    assert [(r.passed, r.reason) for r in results] == [(True, None), (False, "wrong_answer"), (False, "crash")]


def test_syntax_error_fails_every_test_without_a_process():
    results = run_batch([("def f(:", [{"assert": "assert True"}] * 3)], FAST)
    assert {r.reason for r in results[0]} == {"syntax_error"}
    assert execute("def f(:", "", FAST).status == "syntax_error"
    assert check_syntax("x = 1") is None and "SyntaxError" in check_syntax("x = (")


def test_batch_keeps_programs_and_tests_in_order():
    programs = [(f"print({i})", [{"input": "", "output": str(i)}, {"input": "", "output": "-1"}]) for i in range(6)]
    results = run_batch(programs, FAST, workers=3)
    assert [[r.passed for r in tests] for tests in results] == [[True, False]] * 6


@pytest.mark.parametrize("raw", [{"input": "1"}, {"assert": ""}, "assert True", {"input": None, "output": "1"}])
def test_malformed_test_cases_are_errors(raw):
    with pytest.raises(LadkitError):
        TestCase.parse(raw)


def test_limits_must_be_positive():
    with pytest.raises(LadkitError, match="wall_s"):
        Limits(wall_s=0)
