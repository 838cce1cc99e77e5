"""Sample and score: the correctness rule, and n samples per prompt -> rewards -> accuracy and diversity.

One place for what both evaluations share: the trainer's periodic held-out evaluation
(training/loop.py) and `ladkit eval` (ladkit.evaluation). A sample is correct when its reward is above
0.5 (`is_correct`); every accuracy metric (pass@k, avg@k, maj@k, distinct correct answers, per-prompt
correct counts) uses that rule. Rewards go through ladkit.tasks.faults.score_safely, so a reward that
fails is a NaN reward (counted as wrong here), never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ladkit.errors import LadkitError
from ladkit.metrics import avg_at_k, dist_n, distinct_correct_answers, maj_at_k, pass_at_k, self_bleu
from ladkit.rollout.base import RolloutGroup, SamplingConfig
from ladkit.tasks.base import Example, RewardResult
from ladkit.tasks.faults import score_safely

CORRECT_ABOVE = 0.5  # a sample is correct when its reward is above this


def is_correct(reward: float | None) -> bool:
    """The correctness rule of every accuracy metric: a reward above 0.5 (NaN and None are wrong)."""
    return reward is not None and reward > CORRECT_ABOVE  # NaN > 0.5 is False


def correct_counts(results: Sequence[Sequence[RewardResult]]) -> list[int]:
    """Per prompt, how many of its samples are correct."""
    return [sum(is_correct(r.reward) for r in row) for row in results]


def policy_tokens(tokenizer) -> Callable[[str], list]:
    """The policy's own token unit for dist-n and self-BLEU (characters for the built-in model)."""
    return lambda text: tokenizer.encode(text, add_special_tokens=False)


def generate(backend, prompt_ids: list[list[int]], group_size: int, sampling: SamplingConfig, seeds: list[int]):
    """G completions for each prompt, each prompt sampled with its own seed (batch-independent)."""
    return backend.generate(prompt_ids, group_size, sampling, seeds=seeds)


def score(task, groups: Sequence[RolloutGroup], examples: Sequence[Example]) -> list[list[RewardResult]]:
    """Rewards per group; one task.score call for all groups so slow verifiers run in parallel
    (scored again one completion at a time if that call fails; failures become NaN rewards)."""
    texts = [c.text for g in groups for c in g.completions]
    repeated = [ex for ex, g in zip(examples, groups) for _ in g.completions]
    flat = score_safely(task, texts, repeated)
    out, start = [], 0
    for group in groups:
        out.append(flat[start : start + len(group.completions)])
        start += len(group.completions)
    return out


@dataclass
class Scored:
    """n samples for each prompt, scored: the metrics over prompts and each prompt's correct count."""

    metrics: dict[str, float]
    correct: list[int]  # per prompt


def sample_and_score(
    backend,
    task,
    examples: Sequence[Example],
    prompt_ids: list[list[int]],
    n: int,
    sampling: SamplingConfig,
    seeds: list[int],
    ks: Sequence[int],
    tokenize: Callable[[str], list] | None = None,
    chunk: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Scored:
    """Sample n completions per prompt (prompt i with seeds[i]), score them, and compute `group_metrics`.

    chunk: prompts per backend call (None: all at once; seeds are per prompt, so the samples do not depend
    on it); on_chunk(prompts done) is called after each call (a progress bar).
    """
    groups: list[RolloutGroup] = []
    step = chunk or max(1, len(examples))
    for start in range(0, len(examples), step):
        groups += generate(backend, prompt_ids[start : start + step], n, sampling, seeds[start : start + step])
        if on_chunk is not None:
            on_chunk(min(start + step, len(examples)))
    results = score(task, groups, examples)
    texts = [[c.text for c in g.completions] for g in groups]
    return Scored(group_metrics(results, texts, ks, tokenize), correct_counts(results))


def group_metrics(
    results: Sequence[Sequence[RewardResult]],
    texts: Sequence[Sequence[str]],
    ks: Sequence[int],
    tokenize: Callable[[str], list] | None = None,
    with_self_bleu: bool = True,
) -> dict[str, float]:
    """Accuracy and diversity of n samples for each prompt, averaged over prompts.

    results[b][j], texts[b][j]: sample j of prompt b (n samples each). tokenize: the token unit of dist-n and
    self-BLEU (None: whitespace words / sacrebleu 13a).
    """
    rewards = [[_reward(r) for r in row] for row in results]
    correct = [[is_correct(r.reward) for r in row] for row in results]
    answers = [[r.extracted for r in row] for row in results]
    n = len(rewards[0])
    if max(ks) > n:
        raise LadkitError(f"k = {max(ks)} is larger than the {n} samples per prompt; raise --samples or lower --k")
    metrics = {"eval/reward_mean": _mean(sum(row) / n for row in rewards)}
    for k in ks:
        metrics[f"eval/pass@{k}"] = _mean(pass_at_k(n, sum(c), k) for c in correct)
        metrics[f"eval/avg@{k}"] = _mean(avg_at_k(c, k) for c in correct)
        metrics[f"eval/maj@{k}"] = _mean(maj_at_k(a, c, k) for a, c in zip(answers, correct))
    split = tokenize if tokenize is not None else str.split
    metrics["eval/dist3"] = _mean(dist_n(t, 3, split) for t in texts)
    metrics["eval/dist4"] = _mean(dist_n(t, 4, split) for t in texts)
    if with_self_bleu:
        metrics["eval/self_bleu"] = _mean(self_bleu(t, tokenize) for t in texts)
    metrics["eval/distinct_correct"] = _mean(distinct_correct_answers(a, c) for a, c in zip(answers, correct))
    return metrics


def _reward(result: RewardResult) -> float:
    value = result.reward
    return float(value) if value is not None and value == value else 0.0  # NaN or None counts as 0


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
