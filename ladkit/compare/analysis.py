"""Grouping runs, aligning them on common steps, and the comparison itself: final and best values per
group with t intervals over seeds, and deltas against a baseline group with Welch's t intervals.

A group is every run sharing a label (by default objective plus LAD divergence: "lad:js", "grpo"); runs of
one group are treated as seeds of one experiment. Each metric is aligned on its own: the steps at which
every run logged it (eval keys are logged every eval_every steps, training keys every step), so a group
is never credited for steps its rivals did not reach. Where every run was evaluated with `ladkit eval`, the
default metrics add `ladkit_eval/pass@k` (eval.jsonl, at the checkpoint's step) for each k all runs share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ladkit.compare.loading import Run, config_keys, finite
from ladkit.compare.stats import (
    Estimate,
    difference_estimate,
    mean_estimate,
    paired_difference,
    seed_paired_difference,
)
from ladkit.errors import LadkitError
from ladkit.metrics import pass_at_k

DEFAULT_METRICS = (
    "reward/mean",
    "eval/pass@1",
    "policy/entropy",
    "diversity/distinct_correct",
    "diversity/dist4",
)
LOWER_IS_BETTER = (
    "loss/",
    "kl/",
    "perf/step_time",
    "perf/update_time",
    "perf/rollout_time",
    "completion/truncated_frac",
    "reward/failed",
)
FINAL_WINDOW = 3
"""Final value of a run: the mean over its last this-many aligned steps (one noisy step is not a verdict).
Evaluation keys use their last value only: each is already a mean over the held-out split, and evals are
sparse (every eval_every steps), so three of them would reach far back into training."""
# Below this many runs (seeds) in a group, t intervals are wide (t quantile 4.30 for 3 seeds, 2.78 for 5), so
# a real difference of a few run-to-run standard deviations can still read "unclear".
FEW_RUNS = 5
PASS_AT = re.compile(r"^(?:eval|ladkit_eval)/pass@(\d+)$")
CHECKPOINT_EVAL = "ladkit_eval/"
"""Prefix of the metrics read from a run's eval.jsonl (`ladkit eval` of its checkpoints) instead of its
metrics.jsonl: `ladkit_eval/pass@16` is eval.jsonl's `eval/pass@16`, at the step of the checkpoint evaluated."""
EVAL_SETTINGS = ("samples", "prompts", "temperature")  # what must match for two ladkit eval rows to compare


def higher_is_better(metric: str) -> bool:
    return not metric.startswith(LOWER_IS_BETTER)


def lookup(config: dict[str, Any], key: str) -> Any:
    """A dotted config key ("lad.divergence") or None when any part is missing."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def label_of(config: dict[str, Any], group_by: str = "label") -> str:
    """The group a run belongs to: "lad:js"/"grpo" (label), the objective, the divergence, or key=value."""
    objective = str(config.get("objective", "unknown"))
    divergence = lookup(config, "lad.divergence")
    if group_by in ("label", "divergence"):
        if objective == "lad" and divergence is not None:
            return f"lad:{divergence}" if group_by == "label" else str(divergence)
        return objective
    if group_by == "objective":
        return objective
    return f"{group_by}={lookup(config, group_by)}"


def check_group_key(runs: list[Run], group_by: str) -> None:
    """A --group-by config key no run has is a typo, not one group called "None": say which keys there are."""
    if group_by in ("label", "objective", "divergence") or any(
        lookup(run.config, group_by) is not None for run in runs
    ):
        return
    keys = list(dict.fromkeys(key for run in runs for key in config_keys(run.config)))
    shown = ", ".join(keys[:40]) + (f", ... ({len(keys)} in all)" if len(keys) > 40 else "")
    raise LadkitError(
        f"--group-by {group_by!r} is not a key of any run's config.yaml; use label, objective, divergence or one "
        f"of: {shown or 'none (no run has a readable config.yaml)'}"
    )


def group_runs(runs: list[Run], group_by: str = "label") -> dict[str, list[Run]]:
    """Runs by group label, groups in order of first appearance (so the first path given is the baseline)."""
    check_group_key(runs, group_by)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(label_of(run.config, group_by), []).append(run)
    return groups


def series(run: Run, metric: str) -> dict[int, float]:
    """step -> value of `metric` in one run (non-numbers, None and NaN dropped). A `ladkit_eval/` metric is
    read from eval.jsonl, by checkpoint step; of two evaluations of one checkpoint the later counts."""
    rows, key = run.rows, metric
    if metric.startswith(CHECKPOINT_EVAL):
        rows, key = run.eval_rows, "eval/" + metric[len(CHECKPOINT_EVAL) :]
    out = {}
    for row in rows:
        value = finite(row.get(key))
        if value is not None:
            out[int(row["step"])] = value
    return out


def common_steps(runs: list[Run], metric: str) -> list[int]:
    """Steps at which every run logged `metric`, sorted."""
    sets = [set(series(run, metric)) for run in runs]
    return sorted(set.intersection(*sets)) if sets and all(sets) else []


@dataclass
class MetricResult:
    """One (group, metric) line of the comparison."""

    group: str
    metric: str
    final: Estimate | None
    best: Estimate | None
    delta: Estimate | None = None
    steps: list[int] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """'better'/'worse' than the baseline when the CI of the difference excludes zero, 'unclear' when it
        does not, '1 seed' when either side has a single run (no interval, so no call)."""
        if self.delta is None:
            return ""
        if not self.delta.has_interval:
            return "1 seed"
        suffix = " (prompts)" if self.delta.basis == "prompts" else ""
        if not self.delta.excludes_zero:
            return "unclear" + suffix
        return ("better" if (self.delta.mean > 0) == higher_is_better(self.metric) else "worse") + suffix


@dataclass
class Comparison:
    """Everything the table and the report show."""

    groups: dict[str, list[Run]]
    baseline: str
    metrics: list[str]
    results: list[MetricResult]
    notes: list[str]
    paired: bool = False  # deltas over runs matched by seed (compare_runs(paired=True)), Welch's t otherwise

    def result(self, group: str, metric: str) -> MetricResult | None:
        return next((r for r in self.results if r.group == group and r.metric == metric), None)


def _matrix(runs: list[Run], metric: str, steps: list[int]) -> np.ndarray:
    """[S, len(steps)] values, NaN where a run has no value."""
    table = [series(run, metric) for run in runs]
    return np.array([[values.get(step, np.nan) for step in steps] for values in table], dtype=float)


def final_values(runs: list[Run], metric: str, steps: list[int]) -> np.ndarray:
    """[S, W] values over the last aligned steps (see FINAL_WINDOW)."""
    window = 1 if metric.startswith(("eval/", CHECKPOINT_EVAL)) else FINAL_WINDOW
    return _matrix(runs, metric, steps[-window:])


def best_values(runs: list[Run], metric: str, steps: list[int]) -> np.ndarray:
    """[S, 1] best value of each run over the aligned steps (max, or min when lower is better)."""
    values = _matrix(runs, metric, steps)
    pick = np.nanmax if higher_is_better(metric) else np.nanmin
    return pick(values, axis=1, keepdims=True)


def _length_note(runs: list[Run]) -> list[str]:
    lasts = {run.name: run.last_step for run in runs}
    if len(set(lasts.values())) <= 1:
        return []
    shortest = min(lasts.values())
    spread = ", ".join(f"{name} {last}" for name, last in lasts.items())
    return [f"runs differ in length (last step: {spread}); metrics are compared on common steps (<= {shortest})"]


def compare_runs(
    runs: list[Run],
    metrics: list[str] | None = None,
    group_by: str = "label",
    baseline: str | None = None,
    notes: list[str] | None = None,
    paired: bool = False,
) -> Comparison:
    """Group `runs`, align each metric on common steps and estimate final/best values and deltas (Welch's t;
    with `paired`, a paired t over the runs of each group matched by seed to the baseline's, see seed_pairs)."""
    notes = list(notes or [])
    if not runs:
        raise LadkitError("no usable run to compare" + (f" ({notes[0]})" if notes else ""))
    groups = group_runs(runs, group_by)
    baseline = _pick_baseline(groups, baseline)
    notes += _length_note(runs)
    if not metrics:
        metrics = list(DEFAULT_METRICS) + checkpoint_eval_metrics(runs, notes)
    pairs = (
        {group: seed_pairs(runs, groups[baseline], group, notes) for group, runs in groups.items() if group != baseline}
        if paired
        else {}
    )
    results = []
    for metric in metrics:
        steps = common_steps(runs, metric)
        results += _compare_metric(groups, baseline, metric, steps, notes, pairs)
    if not any(r.final for r in results):
        raise LadkitError(f"the runs share none of the metrics {', '.join(metrics)}")
    if len(groups) == 1:
        notes.append(f"only one group ({baseline}): nothing to compare against; use --group-by to split")
    notes += _few_runs_note(groups) + _prompts_note(results)
    return Comparison(groups, baseline, list(metrics), results, notes, paired)


def seed_pairs(runs: list[Run], baseline_runs: list[Run], group: str, notes: list[str]):
    """(group's runs, baseline's runs) matched by config `seed`, in seed order; None (and a note) where the
    seeds cannot pair: fewer than 2 shared, or a seed twice in one group. Seeds on one side only are left out."""

    def by_seed(members: list[Run]) -> dict | None:
        seeds = [lookup(run.config, "seed") for run in members]
        return None if len(set(seeds)) < len(seeds) else dict(zip(seeds, members))

    ours, theirs = by_seed(runs), by_seed(baseline_runs)
    if ours is None or theirs is None:
        notes.append(
            f"--paired: a seed appears twice in {group} or the baseline, so runs cannot be matched by "
            f"seed; {group} uses Welch's t"
        )
        return None
    shared = sorted(set(ours) & set(theirs), key=str)
    if len(shared) < 2:
        notes.append(
            f"--paired: {group} and the baseline share {len(shared)} seed(s); pairing needs 2 or more, so "
            f"{group} uses Welch's t"
        )
        return None
    alone = sorted(str(s) for s in set(ours) ^ set(theirs))
    if alone:
        notes.append(
            f"--paired: seeds {', '.join(alone)} are in only one of {group} and the baseline and take no "
            "part in its deltas"
        )
    return [ours[s] for s in shared], [theirs[s] for s in shared]


def checkpoint_eval_metrics(runs: list[Run], notes: list[str]) -> list[str]:
    """`ladkit_eval/pass@k` for each k that every run's `ladkit eval` results hold (default metrics), with a
    note when only some runs were evaluated."""
    evaluated = [run for run in runs if run.eval_rows]
    if not evaluated:
        return []
    if len(evaluated) < len(runs):
        missing = ", ".join(run.name for run in runs if not run.eval_rows)
        notes.append(
            f"ladkit eval results (eval.jsonl) in some runs but not in {missing}: run `ladkit eval` on "
            "every run to compare checkpoints at more samples"
        )
        return []
    ks = set.intersection(
        *({int(m[1]) for row in run.eval_rows for key in row if (m := PASS_AT.match(key))} for run in runs)
    )
    settings = {run.name: tuple(run.eval_rows[-1].get(key) for key in EVAL_SETTINGS) for run in runs}
    if ks and len(set(settings.values())) > 1:
        shown = "; ".join(
            f"{name} {', '.join(f'{k} {v}' for k, v in zip(EVAL_SETTINGS, values))}"
            for name, values in settings.items()
        )
        notes.append(
            f"ladkit eval settings differ between runs ({shown}): their ladkit_eval/ values are not "
            "measured alike; evaluate every run with the same --samples, --prompts and "
            "--temperature"
        )
    return [f"{CHECKPOINT_EVAL}pass@{k}" for k in sorted(ks)]


def _few_runs_note(groups: dict[str, list[Run]]) -> list[str]:
    if len(groups) < 2:
        return []
    notes = []
    single = [group for group, runs in groups.items() if len(runs) == 1]
    if single:
        notes.append(
            f"one run in {', '.join(single)}: no interval over seeds and no verdict on the method for it, since one "
            "seed cannot separate the method from the seed; run 2 or more seeds per group"
        )
    few = {group: len(runs) for group, runs in groups.items() if 1 < len(runs) < FEW_RUNS}
    if few:
        counts = ", ".join(f"{group} {n}" for group, n in few.items())
        notes.append(
            f"few runs per group ({counts}): t intervals over so few seeds are wide, so 'unclear' often means too "
            f"few seeds rather than no difference; {FEW_RUNS} or more seeds per group narrow them"
        )
    return notes


def _prompts_note(results: list[MetricResult]) -> list[str]:
    paired = [r for r in results if r.delta is not None and r.delta.basis == "prompts"]
    if not paired:
        return []
    metrics = ", ".join(sorted({r.metric for r in paired}))
    return [
        f"'(prompts)': one run a side, so {metrics} are compared over the held-out prompts both runs scored at "
        "that evaluation (eval_prompts.jsonl, or eval.jsonl's per_prompt for ladkit_eval/; paired t over "
        "prompts): this says the two checkpoints differ on these prompts, not that the method would with "
        "another seed"
    ]


def prompt_paired(run: Run, baseline: Run, metric: str, step: int) -> Estimate | None:
    """pass@k of two single runs' checkpoints at eval `step`, paired over the held-out prompts both scored
    (unbiased pass@k per prompt from its n samples and c correct); None when the runs lack the records."""
    match = PASS_AT.match(metric)
    if match is None:
        return None
    k = int(match[1])

    def per_prompt(target: Run) -> dict:
        return {
            str(p["example_id"]): pass_at_k(p["n"], p["correct"], k)
            for p in prompt_records(target, metric, step)
            if isinstance(p, dict)
            and p.get("example_id") is not None
            and isinstance(p.get("n"), int)
            and isinstance(p.get("correct"), int)
            and 0 <= p["correct"] <= p["n"]
            and p["n"] >= k
        }

    ours, theirs = per_prompt(run), per_prompt(baseline)
    common = sorted(set(ours) & set(theirs))
    return paired_difference([ours[i] for i in common], [theirs[i] for i in common])


def prompt_records(run: Run, metric: str, step: int) -> list:
    """Per-prompt records (example_id, n, correct) of the evaluation at `step` that `metric` comes from: the
    trainer's eval_prompts.jsonl, or for `ladkit_eval/` the per_prompt list of eval.jsonl's (last) row."""
    if not metric.startswith(CHECKPOINT_EVAL):
        return [p for p in run.eval_prompts if p.get("step") == step]
    rows = [row for row in run.eval_rows if row.get("step") == step]
    records = rows[-1].get("per_prompt") if rows else None
    return records if isinstance(records, list) else []


def _pick_baseline(groups: dict[str, list[Run]], baseline: str | None) -> str:
    if baseline is None:
        return next(iter(groups))
    if baseline not in groups:
        raise LadkitError(f"baseline group {baseline!r} not among the groups: {', '.join(groups)}")
    return baseline


def _compare_metric(groups, baseline, metric, steps, notes, pairs=None) -> list[MetricResult]:
    """One MetricResult per group; an empty one (and a note) when the runs have no common step for it."""
    everywhere = [run for runs in groups.values() for run in runs]
    if not steps:
        missing = [run.name for run in everywhere if not series(run, metric)]
        why = f"missing in {', '.join(missing)}" if missing else "logged at no step common to all runs"
        notes.append(f"{metric}: {why}")
        return [MetricResult(group, metric, None, None) for group in groups]
    base = final_values(groups[baseline], metric, steps)
    results = []
    for group, runs in groups.items():
        final = final_values(runs, metric, steps)
        best = mean_estimate(best_values(runs, metric, steps))
        result = MetricResult(group, metric, mean_estimate(final), best, steps=steps)
        if group != baseline:
            matched = (pairs or {}).get(group)
            if matched is not None:  # --paired: the group's runs and the baseline's, in matching seed order
                ours, theirs = (final_values(members, metric, steps) for members in matched)
                result.delta = seed_paired_difference(ours, theirs)
            else:
                result.delta = difference_estimate(final, base)
            if result.delta is not None and not result.delta.has_interval and len(runs) == len(groups[baseline]) == 1:
                result.delta = prompt_paired(runs[0], groups[baseline][0], metric, steps[-1]) or result.delta
        results.append(result)
    return results
