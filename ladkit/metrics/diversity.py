"""Diversity of a set of completions (usually the G samples of one prompt): dist-n, self-BLEU, distinct
correct answers, and the fraction of groups without learning signal.

Token unit: dist_n and self_bleu take a `tokenize` function. Whitespace words are the default (the unit of
Li et al. 2016's dist-n); the trainer and `ladkit eval` pass the policy's own tokenizer, which for the
built-in character model means characters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

Tokenize = Callable[[str], Sequence[Hashable]]


def whitespace_tokens(text: str) -> list[str]:
    """Split on whitespace (the default token unit)."""
    return text.split()


def dist_n(completions: Sequence[str], n: int, tokenize: Tokenize | None = whitespace_tokens) -> float:
    """Distinct n-grams / total n-grams over all `completions` (0.0 when none has n tokens).

    tokenize=None: the completions are already token sequences.
    """
    if n < 1:
        raise ValueError(f"dist-n needs n >= 1, got {n}")
    seen, total = set(), 0
    for completion in completions:
        tokens = tuple(completion if tokenize is None else tokenize(completion))
        grams = [tokens[i : i + n] for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def self_bleu(completions: Sequence[str], tokenize: Tokenize | None = None) -> float:
    """Mean sentence BLEU of each completion against all the others, in [0, 1] (1: all identical).

    sacrebleu with exponential smoothing and effective order (short completions). tokenize=None uses
    sacrebleu's '13a' word tokenizer; a function's tokens are joined with spaces and not re-tokenized.
    Fewer than two completions: 0.0 (nothing to compare against).
    """
    from sacrebleu.metrics import BLEU

    if len(completions) < 2:
        return 0.0
    texts = list(completions) if tokenize is None else [" ".join(map(str, tokenize(c))) for c in completions]
    bleu = BLEU(tokenize="13a" if tokenize is None else "none", effective_order=True)
    scores = [bleu.sentence_score(text, texts[:i] + texts[i + 1 :]).score / 100.0 for i, text in enumerate(texts)]
    return sum(scores) / len(scores)


def distinct_correct_answers(answers: Sequence[Hashable | None], correct: Sequence[bool]) -> int:
    """Number of distinct canonical answers among the correct samples of one group (None not counted)."""
    return len({a for a, ok in zip(answers, correct) if ok and a is not None})


def zero_variance_frac(rewards: torch.Tensor) -> float:
    """Fraction of groups whose rewards are all equal (their group-normalised advantages are all 0).

    rewards: [B, G].
    """
    spread = rewards.max(1).values - rewards.min(1).values  # [B]
    return float((spread == 0).float().mean())
