"""Accuracy over the n samples of one prompt: unbiased pass@k, avg@k and maj@k.

pass@k uses all n samples (the unbiased estimator of Chen et al. 2021). avg@k and maj@k use the first k
samples, the way they are usually reported: samples are i.i.d., so the first k are a random k-subset.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k)/C(n, k) from n samples of which c are correct (Chen et al. 2021).

    Stable product form: C(n-c, k)/C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i), no huge binomials.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def avg_at_k(correct: Sequence[bool], k: int) -> float:
    """Mean correctness of the first k samples (avg@k: an estimate of pass@1 from k samples)."""
    _check_k(correct, k)
    return sum(bool(c) for c in correct[:k]) / k


def majority_answer(answers: Sequence[Hashable | None]) -> int | None:
    """Index of the sample whose answer wins the vote, or None when no sample has an answer.

    Samples without an answer (None) do not vote. Ties go to the answer that appears first, so the
    result does not depend on dict or set ordering.
    """
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, answer in enumerate(answers):
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
            first.setdefault(answer, i)
    if not counts:
        return None
    # max over (count, -first index): the most votes, then the earliest answer
    winner = max(counts, key=lambda a: (counts[a], -first[a]))
    return first[winner]


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """1.0 when the majority answer of the first k samples is correct, else 0.0 (0 when none answered).

    answers: the canonical extracted answers (RewardResult.extracted); the winner's correctness is that
    of its first occurrence (equal canonical answers score alike).
    """
    _check_k(correct, k)
    if len(answers) != len(correct):
        raise ValueError(f"maj@k needs one answer per sample: {len(answers)} answers, {len(correct)} samples")
    winner = majority_answer(answers[:k])
    return 0.0 if winner is None else float(bool(correct[winner]))


def _check_k(correct: Sequence, k: int) -> None:
    if not 1 <= k <= len(correct):
        raise ValueError(f"k must be between 1 and the number of samples ({len(correct)}), got {k}")
