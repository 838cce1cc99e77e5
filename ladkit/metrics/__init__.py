"""Metric functions shared by the trainer, `ladkit eval`, compare and the notebooks (docs/design.md 9).

Pure functions on plain Python data or tensors: no model, backend or run folder inside.
accuracy: pass@k, avg@k, maj@k. diversity: dist-n, self-BLEU, distinct correct answers, zero-variance groups.
distributions: token entropy from logits and the per-group distributions LAD is named for.
"""

from ladkit.metrics.accuracy import avg_at_k, maj_at_k, majority_answer, pass_at_k
from ladkit.metrics.distributions import group_distributions, token_entropy
from ladkit.metrics.diversity import (
    dist_n,
    distinct_correct_answers,
    self_bleu,
    whitespace_tokens,
    zero_variance_frac,
)

__all__ = [
    "avg_at_k",
    "dist_n",
    "distinct_correct_answers",
    "group_distributions",
    "maj_at_k",
    "majority_answer",
    "pass_at_k",
    "self_bleu",
    "token_entropy",
    "whitespace_tokens",
    "zero_variance_frac",
]
