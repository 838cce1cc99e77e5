"""dist-n, self-BLEU, distinct correct answers and zero-variance groups on hand-worked data."""

import pytest
import torch

from ladkit.metrics import dist_n, distinct_correct_answers, self_bleu, zero_variance_frac


def test_dist_n_whitespace_tokens():
    # "a b a b": bigrams ab, ba, ab -> 3 total; "a b c": ab, bc -> 2 total; distinct {ab, ba, bc} = 3
    assert dist_n(["a b a b", "a b c"], 2) == pytest.approx(3 / 5)
    assert dist_n(["a b a b", "a b c"], 1) == pytest.approx(3 / 7)  # 7 words, {a, b, c}
    assert dist_n(["x y z"], 3) == 1.0
    assert dist_n(["x y", ""], 3) == 0.0  # no trigram at all


def test_dist_n_character_tokens_and_pre_tokenised():
    # characters of "aaaa": trigrams aaa, aaa -> 1 distinct / 2; "abca": abc, bca -> 2 / 2
    assert dist_n(["aaaa", "abca"], 3, tokenize=list) == pytest.approx(3 / 4)
    assert dist_n([[1, 1, 1, 1], [1, 2, 3, 1]], 3, tokenize=None) == pytest.approx(3 / 4)


def test_self_bleu_identical_disjoint_and_mixed():
    assert self_bleu(["the cat sat on the mat"] * 3) == pytest.approx(1.0)
    assert self_bleu(["a b c d", "e f g h", "i j k l"]) == pytest.approx(0.0)
    # each copy of "a b c d" finds itself among its references (BLEU 1), "x y z w" matches nothing (0)
    assert self_bleu(["a b c d", "a b c d", "x y z w"]) == pytest.approx(2 / 3)
    assert self_bleu(["only one"]) == 0.0


def test_self_bleu_with_character_tokens():
    # as characters "abcd" and "abcd" are identical; "wxyz" shares no character with them
    assert self_bleu(["abcd", "abcd", "wxyz"], tokenize=list) == pytest.approx(2 / 3)


def test_distinct_correct_answers():
    answers = ["1+2", "1+2", "3", None, "4"]
    correct = [True, True, True, True, False]
    assert distinct_correct_answers(answers, correct) == 2  # "1+2" and "3"; None and the wrong "4" not counted


def test_zero_variance_frac():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.4]])  # [B=4, G=3]
    assert zero_variance_frac(rewards) == pytest.approx(0.5)
