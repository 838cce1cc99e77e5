"""Held-out evaluation of a trained policy: n samples per prompt -> pass@k, avg@k, maj@k, diversity.

`evaluate_run` serves `ladkit eval`: it takes a run folder (its config.yaml and a checkpoint's weights) or a
bare peft adapter folder (base model and task given), samples n = max(k) completions per held-out prompt
with a rollout backend, and appends one row to `eval.jsonl` (the run's, or that of a new --out folder): the
metrics, and per held-out prompt its samples and how many were correct ("per_prompt", which `ladkit compare`
pairs across two single runs, as it does the trainer's eval_prompts.jsonl).
`group_metrics` is the scoring half, shared with the trainer's periodic evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladkit.errors import LadkitError
from ladkit.metrics import avg_at_k, dist_n, distinct_correct_answers, maj_at_k, pass_at_k, self_bleu
from ladkit.runs import to_jsonable
from ladkit.tasks.base import RewardResult

EVAL_SEED_OFFSET = 3  # eval samples never share seeds with training (seed), in-loop eval (+1) or tracked (+2)
PROMPTS_PER_CALL = 8  # prompts per backend call: the progress bar's unit; seeds are per prompt, so no effect


def group_metrics(
    results: Sequence[Sequence[RewardResult]], texts: Sequence[Sequence[str]], ks: Sequence[int],
    tokenize: Callable[[str], list] | None = None, with_self_bleu: bool = True,
) -> dict[str, float]:  # fmt: skip
    """Accuracy and diversity of n samples for each prompt, averaged over prompts.

    results[b][j], texts[b][j]: sample j of prompt b (n samples each). A sample is correct when its reward
    is above 0.5. tokenize: the token unit of dist-n and self-BLEU (None: whitespace words / sacrebleu 13a).
    """
    rewards = [[_reward(r) for r in row] for row in results]
    correct = [[r > 0.5 for r in row] for row in rewards]
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


def policy_tokens(tokenizer) -> Callable[[str], list]:
    """The policy's own token unit for dist-n and self-BLEU (characters for the built-in model)."""
    return lambda text: tokenizer.encode(text, add_special_tokens=False)


@dataclass
class Target:
    """What is evaluated: where its weights come from and where its eval row goes."""

    config: Any  # TrainConfig
    weights: Path  # a checkpoint folder, or an adapter folder
    step: int | None
    out: Path  # the folder whose eval.jsonl gets the row


def evaluate_run(
    path: str | Path, ks: Sequence[int] = (1, 4, 16), backend: str = "hf", samples: int | None = None,
    prompts: int | None = None, temperature: float | None = None, task: str | None = None,
    model: str | None = None, checkpoint: int | None = None, out: str | Path | None = None, seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Evaluate a run folder or a peft adapter folder; append the row to eval.jsonl and return it."""
    ks = sorted(set(ks))
    if not ks or ks[0] < 1:
        raise LadkitError(f"--k needs positive integers, got {ks}")
    n = samples if samples is not None else ks[-1]
    if ks[-1] > n:
        raise LadkitError(f"k = {ks[-1]} is larger than --samples {n}; raise --samples or lower --k")
    target = resolve_target(Path(path), task, model, checkpoint, out)
    row = _sample_and_score(target, ks, n, backend, prompts, temperature, seed, progress)
    row = {"step": target.step, "checkpoint": str(target.weights), **row}
    target.out.mkdir(parents=True, exist_ok=True)
    with open(target.out / "eval.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(to_jsonable(row)) + "\n")
    return row


def resolve_target(path: Path, task: str | None, model: str | None, step: int | None, out) -> Target:
    """A run folder (config.yaml) or an adapter folder (adapter_config.json); anything else is an error."""
    if (path / "config.yaml").is_file():
        return _run_target(path, task, step, out)
    if (path / "adapter_config.json").is_file():
        return _adapter_target(path, task, model, out)
    raise LadkitError(f"{path} is neither a ladkit run (config.yaml) nor a peft adapter (adapter_config.json)")


def _run_target(path: Path, task: str | None, step: int | None, out) -> Target:
    from ladkit.config import build
    from ladkit.training import checkpoint
    from ladkit.training.config import TrainConfig
    from ladkit.training.setup import read_config

    config = build(TrainConfig, read_config(path))
    if task is not None:
        config.task.name = task
    if step is None:
        found = checkpoint.latest(path)
        if found is None:
            raise LadkitError(f"run {path} has no complete checkpoint to evaluate; train it longer or save one")
        step, folder = found
    else:
        folder = checkpoint.checkpoint_dir(path, step)
        if not (folder / "state.json").is_file():
            raise LadkitError(f"run {path} has no checkpoint for step {step}; see {path / 'checkpoints'}")
    return Target(config, folder, step, Path(out) if out is not None else path)


def _adapter_target(path: Path, task: str | None, model: str | None, out) -> Target:
    from ladkit.config import build
    from ladkit.runs import run_name, unique_path
    from ladkit.training.config import TrainConfig

    # the base model alone: peft rebuilds the adapter's own modules and rank from adapter_config.json
    config = build(TrainConfig, {"model": {"name_or_path": model or "builtin", "lora": False},
                                 "task": {"name": task or "countdown"}})  # fmt: skip
    if out is None:
        out = unique_path(Path("evals") / run_name("eval", path.name))
    elif (Path(out) / "eval.jsonl").exists():
        raise LadkitError(f"{out} already holds an eval.jsonl; give a new --out folder")
    return Target(config, path, None, Path(out))


def load_target(target: Target):
    """(model, tokenizer) with the target's weights loaded, in eval mode."""
    from ladkit.models.loading import load_policy
    from ladkit.training import checkpoint

    model, tokenizer = load_policy(target.config.model)
    if target.step is not None:
        checkpoint.load_policy_weights(model, target.weights)
    else:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, target.weights)
    return model.eval(), tokenizer


def _lora_rank(model) -> int | None:
    """The adapter's rank (vLLM needs it for either LoRA sync), or None for a full model."""
    config = getattr(model, "peft_config", {}).get("default")
    return None if config is None else int(config.r)


def _sample_and_score(target: Target, ks, n: int, backend_name: str, prompts, temperature, seed, progress):
    """Sample n completions per held-out prompt, score them, and compute the metrics."""
    from dataclasses import replace

    from ladkit.models.loading import render_prompt, resolve_model_path
    from ladkit.rollout import make_backend
    from ladkit.tasks import make_task
    from ladkit.training import collect
    from ladkit.training.data import sample_seed

    config = target.config
    task = make_task(config.task)
    examples = list(task.eval_examples())[:prompts]
    if not examples:
        raise LadkitError(f"task {config.task.name!r} has no held-out prompts to evaluate on")
    model, tokenizer = load_target(target)
    sampling = replace(config.rollout.sampling(), temperature=temperature or config.rollout.temperature)
    backend = make_backend(backend_name, model, tokenizer, model_path=resolve_model_path(config.model.name_or_path),
                           lora_rank=_lora_rank(model), lora_sync=config.rollout.vllm_lora_sync,
                           seed=seed)  # fmt: skip
    groups = []
    try:
        for start in _progress(range(0, len(examples), PROMPTS_PER_CALL), len(examples), progress):
            chunk = examples[start : start + PROMPTS_PER_CALL]
            seeds = [sample_seed(seed + EVAL_SEED_OFFSET, 0, start + i) for i in range(len(chunk))]
            groups += collect.generate(backend, [render_prompt(tokenizer, e.prompt) for e in chunk], n, sampling, seeds)
    finally:
        backend.close()
    results = collect.score(task, groups, examples)
    texts = [[c.text for c in g.completions] for g in groups]
    metrics = group_metrics(results, texts, ks, policy_tokens(tokenizer))
    per_prompt = [{"example_id": e.id, "n": n, "correct": c} for e, c in zip(examples, correct_counts(results))]
    return {**metrics, "samples": n, "prompts": len(examples), "temperature": sampling.temperature,
            "backend": backend_name, "per_prompt": per_prompt}  # fmt: skip


def _progress(chunks: range, total: int, show: bool):
    """Yield chunk starts, advancing a rich progress bar by each chunk's prompts."""
    if not show:
        yield from chunks
        return
    from rich.progress import Progress

    with Progress() as bar:
        task = bar.add_task("sampling", total=total)
        for start in chunks:
            yield start
            bar.update(task, completed=min(start + chunks.step, total))


def table(row: dict[str, Any]):
    """A rich table of an eval row: one line per metric."""
    from rich.table import Table

    out = Table(title=f"eval of {row.get('checkpoint')} (step {row.get('step')})")
    out.add_column("metric")
    out.add_column("value", justify="right")
    for key, value in row.items():
        if key.startswith("eval/"):
            out.add_row(key, f"{value:.4f}")
    return out


def correct_counts(results: Sequence[Sequence[RewardResult]]) -> list[int]:
    """Per prompt, how many of its samples are correct, by group_metrics' rule (reward above 0.5)."""
    return [sum(_reward(r) > 0.5 for r in row) for row in results]


def _reward(result: RewardResult) -> float:
    value = result.reward
    return float(value) if value is not None and value == value else 0.0  # NaN or None counts as 0


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
