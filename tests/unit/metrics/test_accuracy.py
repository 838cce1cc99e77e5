"""pass@k against brute-force enumeration, avg@k and maj@k on hand-worked groups."""

from itertools import combinations

import pytest

from ladkit.metrics import avg_at_k, maj_at_k, majority_answer, pass_at_k


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    """Fraction of the k-subsets of n samples (the first c correct) that hold a correct sample."""
    subsets = list(combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_equals_enumeration_of_all_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_hand_values():
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)  # c/n
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(100, 0, 10) == 0.0 and pass_at_k(100, 91, 10) == 1.0
    assert 0 < pass_at_k(1000, 1, 500) < 1  # no overflow where C(1000, 500) would be astronomically large


def test_pass_at_k_rejects_k_above_n():
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(2, 1, 3)


def test_avg_at_k_uses_the_first_k():
    correct = [True, False, True, True]
    assert avg_at_k(correct, 1) == 1.0
    assert avg_at_k(correct, 2) == 0.5
    assert avg_at_k(correct, 4) == 0.75
    with pytest.raises(ValueError):
        avg_at_k(correct, 5)


def test_majority_answer_votes_and_breaks_ties_by_first_occurrence():
    assert majority_answer(["7", "3", "3", None, None]) == 1  # "3" wins 2-1; None does not vote
    assert majority_answer(["7", "3", "3", "7"]) == 0  # tie 2-2: "7" appeared first
    assert majority_answer(["3", "7", "7", "3"]) == 0
    assert majority_answer([None, None]) is None


def test_maj_at_k():
    answers = ["a", "b", "b", "a", "a"]
    correct = [True, False, False, True, True]
    assert maj_at_k(answers, correct, 1) == 1.0  # only "a"
    assert maj_at_k(answers, correct, 3) == 0.0  # "b" 2-1
    assert maj_at_k(answers, correct, 4) == 1.0  # tie 2-2, "a" first
    assert maj_at_k(answers, correct, 5) == 1.0  # "a" 3-2
    assert maj_at_k([None, None], [False, False], 2) == 0.0
