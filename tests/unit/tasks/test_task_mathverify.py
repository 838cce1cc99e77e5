"""math-verify scoring: answer extraction, equivalent forms, and wall-clock bounds that hold on any thread."""

from __future__ import annotations

import faulthandler
import threading
import time

import pytest

from ladkit.errors import LadkitError
from ladkit.tasks.mathverify import MAX_ANSWER_CHARS, MathVerifyScorer, extract_answer, first_line

BOUND_S = 1.0
# Inputs measured here to take sympy far longer than the bound: 9^(9^(9^9)) never finishes verifying,
# 30 nested parentheses take ~5 s to parse, (10^100000)! takes ~8 s to verify.
PATHOLOGICAL = ["9^{9^{9^{9}}}", "(" * 30 + "1" + ")" * 30, "(10^{100000})!"]


@pytest.fixture(scope="module")
def scorer():
    with MathVerifyScorer(timeout_s=BOUND_S, workers=3) as shared:
        yield shared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),  # nested braces inside the box
        ("\\boxed{1} first, finally \\boxed{2}", "2"),  # the last box
        ("\\boxed{3} and a truncated \\boxed{\\frac{1}{", "3"),  # an unclosed box is skipped
        ("\\fbox{7}", "7"),
        ("Natalia sold 48+24 = 72 clips.\n#### 72", "72"),
        ("#### 1,000\n", "1,000"),
        ("<answer> 42 </answer>", "42"),
        ("<answer>1</answer> then <answer>$x^2$</answer>", "x^2"),  # last block, $ stripped
        ("Working...\nAnswer: $34$", "34"),  # DAPO's "Answer: $Answer" line
        ("\\boxed{5} but #### 6", "5"),  # a box wins over the other markers
        ("The answer is 5.", None),  # no marker: no answer (format matters)
        ("\\boxed{}", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_first_line():
    assert first_line(" -25 \nmore") == "-25"
    assert first_line("\n-25") is None


def test_equivalent_forms_are_correct(scorer):
    answers = ["0.5", "1/2", "\\frac{1}{2}", "\\frac12", "\\dfrac{1}{2}", "0.50", "x = \\frac{1}{2}"]
    results = scorer.score(answers, ["\\frac{1}{2}"] * len(answers))
    assert [r.reward for r in results] == [1.0] * len(answers)
    assert all(r.parts == {"format": 1.0, "correct": 1.0} and r.reason is None for r in results)


def test_wrong_and_unparsable_answers(scorer):
    answers = ["0.4", "1000", "72", "\\sqrt{8}", "hello world", None]
    golds = ["1/2", "1,000", "72.0", "2\\sqrt{2}", "5", "5"]
    results = scorer.score(answers, golds)
    assert [r.reward for r in results] == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert results[0].reason == "wrong" and results[0].parts["format"] == 1.0
    assert results[4].reason.startswith(("parse_error", "wrong"))  # math-verify reads words as symbols
    assert results[5].reason == "no_answer" and results[5].parts["format"] == 0.0
    assert results[1].extracted == "1000"


def test_pathological_inputs_time_out_within_the_bound(scorer):
    while scorer._pool is None or not all(worker.ready for worker in scorer._pool.workers):
        scorer.score(["1"], ["1"])  # start every worker, so each stuck item lands on one of these three
    before = [worker.process for worker in scorer._pool.workers]
    # Were the bound broken this call would never return: abort the test process loudly instead of hanging.
    faulthandler.dump_traceback_later(60, exit=True)
    start = time.monotonic()
    try:
        results = scorer.score([*PATHOLOGICAL, "3"], ["5", "5", "5", "3"])
    finally:
        faulthandler.cancel_dump_traceback_later()
    elapsed = time.monotonic() - start
    assert [r.reason for r in results[:3]] == ["timeout"] * 3
    assert results[3].reward == 1.0  # the healthy item in the same batch is unaffected
    # 3 workers: one bound for the stuck items, plus restarts; far below sympy's 5 s to forever
    assert elapsed < 3 * BOUND_S + 4
    assert all(process.poll() is not None for process in before)  # the stuck workers were killed
    # the replaced workers serve the next batch
    assert scorer.score(["\\frac{3}{4}"], ["0.75"])[0].reward == 1.0


def test_works_from_a_non_main_thread(scorer):
    # math-verify's own timeout needs SIGALRM, which only the main thread may set: the pool must not care
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(results=scorer.score([PATHOLOGICAL[0], "2"], ["1", "2"])))
    start = time.monotonic()
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert [r.reason for r in out["results"]] == ["timeout", None]
    assert time.monotonic() - start < BOUND_S + 6


def test_very_long_answers_are_refused_without_parsing(scorer):
    start = time.monotonic()
    (result,) = scorer.score(["1+" * MAX_ANSWER_CHARS + "1"], ["2"])
    assert result.reason.startswith("parse_error") and "longer than" in result.reason
    assert time.monotonic() - start < 0.5
    long_text = "x" * 2_000_000 + " \\boxed{7}"  # extraction itself is linear in the completion
    start = time.monotonic()
    assert extract_answer(long_text) == "7"
    assert time.monotonic() - start < 2


def test_close_kills_the_workers():
    scorer = MathVerifyScorer(timeout_s=5, workers=1)
    assert scorer.score(["2"], ["2"])[0].reward == 1.0
    processes = [worker.process for worker in scorer._pool.workers]
    scorer.close()
    assert all(process.poll() is not None for process in processes)


def test_bad_settings():
    with pytest.raises(LadkitError, match="reward_workers"):
        MathVerifyScorer(workers=0)
    with pytest.raises(LadkitError, match="reward_timeout_s"):
        MathVerifyScorer(timeout_s=0)
