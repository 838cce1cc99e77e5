"""The training loop, written out: sample prompts -> G rollouts each -> rewards -> advantages ->
PPO-style passes over mini-batches with pi_old fixed -> metrics -> periodic eval -> checkpoint.

Row `step` s of metrics.jsonl describes the rollouts of step s (sampled by the policy after s updates)
and the update made on them. tracked.jsonl holds, per step, one record per tracked held-out prompt (its G
completions and per-group distributions, see metrics.track_before); callbacks see them as row["tracked"].
eval_prompts.jsonl holds, per evaluation, one record per held-out prompt (n samples, how many correct).
Works unchanged under torchrun / accelerate launch (see distributed.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ladkit.evaluation import correct_counts, group_metrics, policy_tokens
from ladkit.runs import to_jsonable
from ladkit.training import checkpoint, collect, distributed
from ladkit.training.config import TrainConfig
from ladkit.training.data import sample_seed, shard, step_indices
from ladkit.training.metrics import diversity_metrics, policy_metrics, rollout_metrics, track_after, track_before
from ladkit.training.optimise import SkipGuard, deterministic_forward, mini_batch_rows, recompute, update
from ladkit.training.setup import TrainContext, build

Callback = Callable[[int, dict[str, Any], TrainContext], None]
# Non-scalar row entries -> the per-step file each is appended to (metrics.jsonl takes the scalars).
PER_STEP_KEYS = {"tracked": "tracked.jsonl", "eval_prompts": "eval_prompts.jsonl"}
PER_STEP_FILES = tuple(PER_STEP_KEYS.values())


class StopTraining(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a callback (a notebook's stop button) to end training cleanly after the current step:
    the step is logged and checkpointed, the final evaluation runs and the run is marked "stopped"."""


def train(config: TrainConfig, run_dir: str | Path, resume: bool = False, callbacks: list[Callback] = ()) -> dict:
    """Train; returns the summary written to run_dir/summary.json."""
    ctx = build(config, Path(run_dir), resume)
    if resume and ctx.info.is_main:
        for name in PER_STEP_FILES:
            _trim_jsonl(ctx.run_dir / name, ctx.start_step)
    tensorboard = _tensorboard(ctx) if config.tensorboard and ctx.info.is_main else None
    status, last = "completed", config.steps - 1
    guard = SkipGuard(config.max_skipped_steps)  # consecutive non-finite optimiser steps stop the run
    try:
        for step in range(ctx.start_step, config.steps):
            due = config.eval_every and step % config.eval_every == 0
            before = evaluate(ctx, step) if due else {}  # the policy that samples this step's rollouts
            row = {**train_step(ctx, step, guard), **before}
            try:
                _log(ctx, tensorboard, row, callbacks)
            except StopTraining:
                status, last = "stopped", step
            if config.checkpoint_every and (step + 1) % config.checkpoint_every == 0 or step == last:
                distributed.barrier(ctx.info)
                if ctx.info.is_main:
                    checkpoint.save(ctx.run_dir, step, ctx.model, ctx.optimizer, ctx.scheduler, ctx.extra_modules,
                                    config.keep_checkpoints)  # fmt: skip
            if status == "stopped":
                break
        final = {"step": last + 1, **evaluate(ctx, last + 1)}  # after the last update
        with contextlib.suppress(StopTraining):
            _log(ctx, tensorboard, final, callbacks)
    except BaseException:
        if ctx.info.is_main and ctx.writer is not None:
            ctx.writer.finish(status="failed")
        _close(ctx, tensorboard)
        raise
    summary = {**_summary(ctx, final), "status": status}
    if ctx.info.is_main:
        ctx.writer.write_json("summary.json", summary)
        ctx.writer.finish(status=status)
    _close(ctx, tensorboard)
    return summary


def _log(ctx: TrainContext, tensorboard, row: dict, callbacks) -> None:
    """metrics.jsonl (scalars only), tracked.jsonl, eval_prompts.jsonl, TensorBoard, then the callbacks (which
    see "tracked" and "eval_prompts")."""
    scalars = {key: value for key, value in row.items() if key not in PER_STEP_KEYS}
    if ctx.info.is_main:
        ctx.writer.log(scalars)
        for key, name in PER_STEP_KEYS.items():
            _append_jsonl(ctx.run_dir / name, row.get(key, []))
        if tensorboard is not None:
            for key, value in scalars.items():
                if isinstance(value, (int, float)) and key != "step":
                    tensorboard.add_scalar(key, value, row["step"])
    for callback in callbacks:
        callback(row["step"], row, ctx)


def train_step(ctx: TrainContext, step: int, guard: SkipGuard | None = None) -> dict[str, Any]:
    """One RL step; returns its metrics row (averaged over processes)."""
    config, start = ctx.config, time.perf_counter()
    torch.manual_seed(sample_seed(config.seed, step, 1_000_000 + ctx.info.rank))  # dropout etc. per step
    train_set = ctx.task.train_examples()
    indices = shard(step_indices(len(train_set), config.prompts_per_step, config.seed, step), ctx.info.rank,
                    ctx.info.world_size)  # fmt: skip
    examples = [train_set[i] for i in indices]
    sampling = config.rollout.sampling()
    groups = collect.generate(ctx.backend, [ctx.prompt_ids(e) for e in examples], config.group_size, sampling,
                              [sample_seed(config.seed, step, i) for i in indices])  # fmt: skip
    rollout_s = time.perf_counter() - start
    results = collect.score(ctx.task, groups, examples)
    batch = collect.build_batch(groups, results, examples, ctx.tokenizer.pad_token_id, config.advantage,
                                config.advantage_scale, ctx.tokenizer.decode).to(ctx.device)  # fmt: skip
    micro = max(1, batch.num_sequences // (config.mini_batches * config.optim.grad_accumulation))
    reference = _reference(ctx)
    update_start = time.perf_counter()
    # The first optimiser step's rows get pi_old from that step's own forward (optimise.py), unless dropout.
    first = mini_batch_rows(batch, config.mini_batches)[0] if deterministic_forward(ctx.model) else None
    old = recompute(ctx.model, batch, config.rollout.temperature, micro, reference, skip=first,
                    share_prompts=ctx.share_prompts)  # fmt: skip
    _synchronize(ctx.device)
    recompute_s = time.perf_counter() - update_start
    tracked = track_before(ctx, step)  # after the step's own draws, own seeds, RNG restored: training unchanged
    update_start = time.perf_counter()
    stats = update(ctx, batch, old, guard)
    _synchronize(ctx.device)
    update_s = recompute_s + time.perf_counter() - update_start  # pi_old recomputation + optimisation, no tracking
    tracked = track_after(ctx, tracked)
    ctx.backend.sync_weights(ctx.model)
    elapsed = time.perf_counter() - start
    tokens = float(batch.attention_mask.sum())
    row = {
        **rollout_metrics(batch),
        **policy_metrics(batch, old.logprobs, old.entropy),
        **diversity_metrics(batch.records, config.group_size, policy_tokens(ctx.tokenizer)),
        **stats.metrics,
        "optim/skipped_steps": float(stats.skipped),
        "perf/step_time_s": elapsed,
        "perf/rollout_time_s": rollout_s,
        "perf/update_time_s": update_s,
        "perf/tokens_per_s": tokens / elapsed,
        "perf/peak_memory_mb": _peak_memory_mb(),
    }
    row = {"step": step, **distributed.all_mean(row, ctx.info)}
    if ctx.info.is_main and config.samples_every and step % config.samples_every == 0:
        _write_samples(ctx.run_dir, step, batch.records)
    return {**row, "tracked": tracked} if tracked else row


@torch.no_grad()
def evaluate(ctx: TrainContext, step: int) -> dict[str, Any]:
    """Held-out reward, pass@k / avg@k / maj@k (k = 1 and eval_samples) and diversity (ladkit.evaluation),
    plus "eval_prompts": per held-out prompt, its samples and how many were correct (every rank's), which
    `ladkit compare` pairs across two single runs."""
    config = ctx.config
    examples = list(ctx.task.eval_examples())
    examples = shard(
        examples[: len(examples) - len(examples) % ctx.info.world_size], ctx.info.rank, ctx.info.world_size
    )
    if not examples:
        return {}
    k = config.eval_samples
    groups = collect.generate(ctx.backend, [ctx.prompt_ids(e) for e in examples], k, config.rollout.sampling(),
                              [sample_seed(config.seed + 1, step, i) for i in range(len(examples))])  # fmt: skip
    results = collect.score(ctx.task, groups, examples)
    texts = [[c.text for c in g.completions] for g in groups]
    metrics = group_metrics(results, texts, sorted({1, k}), policy_tokens(ctx.tokenizer))
    counts = correct_counts(results)
    prompts = [{"step": step, "example_id": e.id, "n": k, "correct": c} for e, c in zip(examples, counts)]
    return {**distributed.all_mean(metrics, ctx.info), "eval_prompts": distributed.all_gather_list(prompts, ctx.info)}


def _reference(ctx: TrainContext):
    """The context manager giving the reference policy (adapter disabled), when the objective needs one."""
    if ctx.config.objective == "grpo" and ctx.config.grpo.beta > 0:
        from ladkit.models.loading import reference_policy

        return reference_policy
    return None


def _append_jsonl(path: Path, records: list[dict]) -> None:
    if records:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(to_jsonable(record)) + "\n" for record in records)


def _trim_jsonl(path: Path, start_step: int) -> None:
    """On resume, drop the records of the steps that will be redone (as metrics.jsonl does)."""
    from ladkit.runs import read_rows, write_atomic

    if path.is_file():
        kept = [r for r in read_rows(path) if r.get("step", -1) < start_step]
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))


def _write_samples(run_dir: Path, step: int, records: list[dict]) -> None:
    folder = run_dir / "samples"
    folder.mkdir(exist_ok=True)
    with open(folder / f"step_{step:06d}.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(to_jsonable(record)) + "\n")  # strict JSON: a failed reward is null


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a phase's time is its own and not the next phase's (no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _summary(ctx: TrainContext, final: dict) -> dict:
    """First and last rewards (mean of the first/last 10 steps' rollouts) and the evals before and after."""
    from ladkit.runs import read_rows

    rows = [r for r in read_rows(ctx.run_dir / "metrics.jsonl") if "reward/mean" in r] if ctx.info.is_main else []
    rewards = [r["reward/mean"] for r in sorted(rows, key=lambda r: r["step"])]
    first_eval = next((r for r in sorted(rows, key=lambda r: r["step"]) if "eval/pass@1" in r), {})
    return {
        "steps": ctx.config.steps,
        "reward_first": rewards[0] if rewards else None,
        "reward_first10_mean": sum(rewards[:10]) / len(rewards[:10]) if rewards else None,
        "reward_last10_mean": sum(rewards[-10:]) / len(rewards[-10:]) if rewards else None,
        "eval_first": {k: v for k, v in first_eval.items() if k.startswith("eval/")},
        "eval_final": {k: v for k, v in final.items() if k.startswith("eval/")},
        "run_dir": str(ctx.run_dir),
    }


def _tensorboard(ctx: TrainContext):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(ctx.run_dir / "tensorboard"))


def _close(ctx: TrainContext, tensorboard) -> None:
    if tensorboard is not None:
        tensorboard.close()
    ctx.backend.close()
    distributed.cleanup(ctx.info)
