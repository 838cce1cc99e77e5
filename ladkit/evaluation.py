"""`ladkit eval`: held-out evaluation of a trained run or adapter: n samples per prompt -> pass@k, avg@k,
maj@k, diversity.

`evaluate_run` takes a run folder (its config.yaml and a checkpoint's weights) or a bare peft adapter
folder (base model and task given), samples n = max(k) completions per held-out prompt
with a rollout backend, and appends one row to `eval.jsonl` (the run's, or that of a new --out folder): the
metrics, and per held-out prompt its samples and how many were correct ("per_prompt", which `ladkit compare`
pairs across two single runs, as it does the trainer's eval_prompts.jsonl). Sampling, scoring and the
metrics are ladkit.scoring's, shared with the trainer's periodic evaluation; this module sits above the
trainer (it reads run folders and checkpoints) and nothing in ladkit.training imports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ladkit.config import build
from ladkit.errors import LadkitError
from ladkit.models.inputs import fit_prompts
from ladkit.models.loading import load_policy, render_prompt, resolve_model_path
from ladkit.rollout import make_backend
from ladkit.runs import run_name, to_jsonable, unique_path
from ladkit.scoring import policy_tokens, sample_and_score
from ladkit.tasks import make_task
from ladkit.training import checkpoint
from ladkit.training.config import TrainConfig
from ladkit.training.data import sample_seed
from ladkit.training.setup import read_config

EVAL_SEED_OFFSET = 3  # eval samples never share seeds with training (seed), in-loop eval (+1) or tracked (+2)
PROMPTS_PER_CALL = 8  # prompts per backend call: the progress bar's unit; seeds are per prompt, so no effect


@dataclass
class Target:
    """What is evaluated: where its weights come from and where its eval row goes."""

    config: TrainConfig
    weights: Path  # a checkpoint folder, or an adapter folder
    step: int | None
    out: Path  # the folder whose eval.jsonl gets the row


def evaluate_run(
    path: str | Path,
    ks: Sequence[int] = (1, 4, 16),
    backend: str = "hf",
    samples: int | None = None,
    prompts: int | None = None,
    temperature: float | None = None,
    task: str | None = None,
    model: str | None = None,
    checkpoint: int | None = None,
    out: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
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
    checkpoint.weight_files(folder)  # truncated or foreign weights: said now, before the model loads
    return Target(config, folder, step, Path(out) if out is not None else path)


def _check_adapter(path: Path) -> None:
    """adapter_config.json parses as a peft config and the weights file is readable (before the model loads)."""
    from peft import PeftConfig
    from safetensors import safe_open

    try:
        PeftConfig.from_pretrained(str(path))
        for file in path.glob("*.safetensors"):
            with safe_open(str(file), framework="pt") as handle:
                list(handle.keys())
    except Exception as err:  # JSON, Unicode, missing or wrong-typed fields, SafetensorError: peft raises many
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise LadkitError(f"{path} is not a usable peft adapter ({detail}); give a folder peft wrote") from None


def _adapter_target(path: Path, task: str | None, model: str | None, out) -> Target:
    _check_adapter(path)
    # the base model alone: peft rebuilds the adapter's own modules and rank from adapter_config.json
    config = build(
        TrainConfig,
        {"model": {"name_or_path": model or "builtin", "lora": False}, "task": {"name": task or "countdown"}},
    )
    if out is None:
        out = unique_path(Path("evals") / run_name("eval", path.name))
    elif (Path(out) / "eval.jsonl").exists():
        raise LadkitError(f"{out} already holds an eval.jsonl; give a new --out folder")
    return Target(config, path, None, Path(out))


def load_target(target: Target):
    """(model, tokenizer) with the target's weights loaded, in eval mode."""
    model, tokenizer = load_policy(target.config.model)
    if target.step is not None:
        checkpoint.load_policy_weights(model, target.weights)
    else:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, target.weights)
        except (RuntimeError, ValueError, KeyError, OSError) as err:  # another base model, rank or module names
            detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            problem = f"adapter {target.weights} does not fit the base model ({detail})"
            raise LadkitError(f"{problem}; pass the model it was trained on as --model") from None
    return model.eval(), tokenizer


def _lora_rank(model) -> int | None:
    """The adapter's rank (vLLM needs it for either LoRA sync), or None for a full model."""
    config = getattr(model, "peft_config", {}).get("default")
    return None if config is None else int(config.r)


def _sample_and_score(target: Target, ks, n: int, backend_name: str, prompts, temperature, seed, progress):
    """Sample n completions per held-out prompt, score them, and compute the metrics."""
    config = target.config
    task = make_task(config.task)
    if not task.eval_examples():
        raise LadkitError(f"task {config.task.name!r} has no held-out prompts to evaluate on")
    model, tokenizer = load_target(target)
    fit_prompts(task, tokenizer)  # the held-out prompts training evaluated on (max_prompt_tokens in its tokens)
    examples = list(task.eval_examples())[:prompts]
    sampling = replace(config.rollout.sampling(), temperature=temperature or config.rollout.temperature)
    backend = make_backend(
        backend_name,
        model,
        tokenizer,
        model_path=resolve_model_path(config.model.name_or_path),
        lora_rank=_lora_rank(model),
        lora_sync=config.rollout.vllm_lora_sync,
        seed=seed,
    )
    seeds = [sample_seed(seed + EVAL_SEED_OFFSET, 0, i) for i in range(len(examples))]
    try:
        with _progress(len(examples), progress) as advance:
            scored = sample_and_score(
                backend,
                task,
                examples,
                [render_prompt(tokenizer, e.prompt) for e in examples],
                n,
                sampling,
                seeds,
                ks,
                policy_tokens(tokenizer),
                PROMPTS_PER_CALL,
                advance,
            )
    finally:
        backend.close()
    per_prompt = [{"example_id": e.id, "n": n, "correct": c} for e, c in zip(examples, scored.correct)]
    return {
        **scored.metrics,
        "samples": n,
        "prompts": len(examples),
        "temperature": sampling.temperature,
        "backend": backend_name,
        "per_prompt": per_prompt,
    }


@contextmanager
def _progress(total: int, show: bool):
    """A callback(prompts done) that advances a rich progress bar (or does nothing)."""
    if not show:
        yield lambda done: None
        return
    from rich.progress import Progress

    with Progress() as bar:
        task = bar.add_task("sampling", total=total)
        yield lambda done: bar.update(task, completed=done)


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
