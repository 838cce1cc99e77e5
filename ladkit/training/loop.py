"""The training loop, written out: sample prompts -> G rollouts each -> rewards -> advantages ->
PPO-style passes over mini-batches with pi_old fixed -> metrics -> periodic eval -> checkpoint.

Row `step` s of metrics.jsonl describes the rollouts of step s (sampled by the policy after s updates)
and the update made on them. tracked.jsonl holds, per step, one record per tracked held-out prompt (its G
completions and per-group distributions, see tracking.py); callbacks see them as row["tracked"].
eval_prompts.jsonl holds, per evaluation, one record per held-out prompt (n samples, how many correct).
SIGTERM / Ctrl-C end the run "interrupted" after the file being written is finished (interrupt.py).
Works unchanged under torchrun / accelerate launch (see distributed.py); only the main process writes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ladkit.errors import LadkitError
from ladkit.models.loading import deterministic_forward
from ladkit.runs import read_rows, to_jsonable, write_atomic
from ladkit.scoring import generate, policy_tokens, sample_and_score
from ladkit.training import checkpoint, collect, distributed
from ladkit.training.batch import RolloutBatch
from ladkit.training.config import TrainConfig
from ladkit.training.data import sample_seed, shard, step_indices
from ladkit.training.interrupt import InterruptGuard, TrainingInterrupted
from ladkit.training.metrics import diversity_metrics, policy_metrics, rollout_metrics
from ladkit.training.optimise import (
    OldPolicy,
    SkipGuard,
    micro_batch_size,
    mini_batch_rows,
    recompute,
    update,
)
from ladkit.training.setup import TrainContext, build
from ladkit.training.tracking import track_after, track_before

HELD_OUT_SEED_OFFSET = 1  # held-out samples never share seeds with training rollouts (seed) or tracked ones (+2)

Callback = Callable[[int, dict[str, Any], TrainContext], None]
# Non-scalar row entries -> the per-step file each is appended to (metrics.jsonl takes the scalars).
PER_STEP_KEYS = {"tracked": "tracked.jsonl", "eval_prompts": "eval_prompts.jsonl"}
PER_STEP_FILES = tuple(PER_STEP_KEYS.values())


class StopTraining(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a callback (a notebook's stop button) to end training cleanly after the current step:
    the step is logged and checkpointed, the final evaluation runs and the run is marked "stopped"."""


def train(
    config: TrainConfig, run_dir: str | Path, resume: bool = False, callbacks: list[Callback] = ()
) -> dict[str, Any] | None:
    """Train; returns the summary written to run_dir/summary.json (None on processes other than the main one).

    Raises TrainingInterrupted on SIGTERM / Ctrl-C, after marking the run "interrupted" (resumable).
    """
    guard = InterruptGuard().install()
    ctx = None
    try:
        ctx = build(config, Path(run_dir), resume)
        return _train(ctx, guard, callbacks)
    finally:
        guard.restore()
        if ctx is not None and ctx.info.world_size > 1:
            # The process group was left (_close); the model, optimiser and wrappers that still reference it are
            # freed now, so its worker threads are joined while the interpreter is whole. Left to interpreter
            # shutdown, that teardown aborted a rank about once in 35 launches ("terminate called without an
            # active exception", after the run had finished).
            ctx = None
            gc.collect()


def _train(ctx: TrainContext, guard: InterruptGuard, callbacks) -> dict[str, Any] | None:
    config = ctx.config
    if ctx.start_step and ctx.info.is_main:
        for name in PER_STEP_FILES:
            _trim_jsonl(ctx.run_dir / name, ctx.start_step)
    tensorboard = _tensorboard(ctx) if config.tensorboard and ctx.info.is_main else None
    status, last = "completed", config.steps - 1
    skip_guard = SkipGuard(config.max_skipped_steps)  # consecutive non-finite optimiser steps stop the run
    saving = checkpoint.Schedule(config.checkpoint_every, config.checkpoint_every_s, ctx.info.world_size)
    failed_rewards = 0  # consecutive steps in which every sample's reward failed
    try:
        for step in range(ctx.start_step, config.steps):
            due = config.eval_every and step % config.eval_every == 0
            before = evaluate_held_out(ctx, step) if due else {}  # the policy that samples this step's rollouts
            row = {**train_step(ctx, step, skip_guard), **before}
            try:
                with guard.writing():
                    _log(ctx, tensorboard, row, callbacks)
            except StopTraining:
                status, last = "stopped", step
            failed_rewards = _check_rewards(ctx, row, failed_rewards)
            if saving.due(step, last):
                _save_checkpoint(ctx, step, guard)
            if status == "stopped":
                break
        final = {"step": last + 1, **evaluate_held_out(ctx, last + 1)}  # after the last update
        with contextlib.suppress(StopTraining), guard.writing():
            _log(ctx, tensorboard, final, callbacks)
    except BaseException as error:
        if ctx.writer is not None:
            with guard.writing():
                ctx.writer.finish(status="interrupted" if isinstance(error, TrainingInterrupted) else "failed")
        _close(ctx, tensorboard)
        raise
    summary = _finish(ctx, guard, final, status) if ctx.info.is_main else None
    distributed.barrier(ctx.info)  # no process leaves the group while the main one still writes the summary
    _close(ctx, tensorboard)
    return summary


def _check_rewards(ctx: TrainContext, row: dict[str, Any], failed_steps: int) -> int:
    """Consecutive steps whose every reward failed (raised or timed out: no learning signal at all), and a
    one-line stop past config.max_failed_reward_steps. The row is averaged over processes, so all agree."""
    config = ctx.config
    samples = config.prompts_per_step // ctx.info.world_size * config.group_size
    failed_steps = failed_steps + 1 if row.get("reward/failed", 0) >= samples else 0
    if config.max_failed_reward_steps and failed_steps >= config.max_failed_reward_steps:
        raise LadkitError(
            f"training stopped: every reward failed in {failed_steps} consecutive steps (see samples/ for the "
            "errors); fix the reward function or the data, or raise max_failed_reward_steps"
        )
    return failed_steps


def _save_checkpoint(ctx: TrainContext, step: int, guard: InterruptGuard) -> None:
    """Every process reaches this step's end, then the main one writes the checkpoint (a signal waits for it)."""
    distributed.barrier(ctx.info)
    model, optimizer = ctx.model, ctx.optimizer
    if distributed.is_sharded(ctx.model):  # fsdp: every rank takes part in gathering the full state
        model = optimizer = distributed.FullState(ctx.model, ctx.optimizer).gather()
    if ctx.info.is_main:
        with guard.writing():
            checkpoint.save(ctx.run_dir, step, model, optimizer, ctx.scheduler, ctx.heads, ctx.config.keep_checkpoints)


def _finish(ctx: TrainContext, guard: InterruptGuard, final: dict[str, Any], status: str) -> dict[str, Any]:
    """summary.json and the run's final status (main process)."""
    summary = {**_summary(ctx, final), "status": status}
    with guard.writing():
        ctx.writer.write_json("summary.json", summary)
        ctx.writer.finish(status=status)
    return summary


def _log(ctx: TrainContext, tensorboard, row: dict[str, Any], callbacks) -> None:
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
    batch, rollout_s = _rollout_batch(ctx, step)
    update_start = time.perf_counter()
    old = _pi_old(ctx, batch)
    _synchronize(ctx.device)
    recompute_s = time.perf_counter() - update_start
    tracked = track_before(ctx, step)  # after the step's own draws, own seeds, RNG restored: training unchanged
    ctx.backend.sleep()  # an engine's GPU memory goes to the update (vllm sleep mode); the next sampling wakes it
    update_start = time.perf_counter()
    distributed.reshard(ctx.model)  # fsdp: the update gathers block by block; everything else runs gathered
    stats = update(ctx, batch, old, guard)
    distributed.unshard(ctx.model)
    _synchronize(ctx.device)
    update_s = recompute_s + time.perf_counter() - update_start  # pi_old recomputation + optimisation, no tracking
    tracked = track_after(ctx, tracked)
    ctx.backend.sync_weights(ctx.model)
    elapsed = time.perf_counter() - start
    row = {
        **rollout_metrics(batch),
        **policy_metrics(batch, old.logprobs, old.entropy),
        **diversity_metrics(batch.records, config.group_size, policy_tokens(ctx.tokenizer)),
        **stats.metrics,
        "optim/skipped_steps": float(stats.skipped),
        "perf/step_time_s": elapsed,
        "perf/rollout_time_s": rollout_s,
        "perf/update_time_s": update_s,
        "perf/tokens_per_s": float(batch.attention_mask.sum()) / elapsed,
        "perf/peak_memory_mb": _peak_memory_mb(),
    }
    row = {"step": step, **distributed.all_mean(row, ctx.info)}
    if ctx.info.is_main and config.samples_every and step % config.samples_every == 0:
        _write_samples(ctx.run_dir, step, batch.records)
    return {**row, "tracked": tracked} if tracked else row


def _rollout_batch(ctx: TrainContext, step: int) -> tuple[RolloutBatch, float]:
    """This process's share of the step's prompts -> G completions each -> rewards -> advantages, as a
    RolloutBatch on the training device; and the seconds the sampling took."""
    config, start = ctx.config, time.perf_counter()
    train_set = ctx.task.train_examples()
    order = step_indices(len(train_set), config.prompts_per_step, config.seed, step)
    indices = shard(order, ctx.info.rank, ctx.info.world_size)
    examples = [train_set[i] for i in indices]
    seeds = [sample_seed(config.seed, step, i) for i in indices]
    prompts = [ctx.prompt_ids(e) for e in examples]
    groups = generate(ctx.backend, prompts, config.group_size, config.rollout.sampling(), seeds)
    rollout_s = time.perf_counter() - start
    return collect.scored_batch(ctx.task, groups, examples, ctx.tokenizer, config).to(ctx.device), rollout_s


def _pi_old(ctx: TrainContext, batch: RolloutBatch) -> OldPolicy:
    """pi_old (and the reference's log-probs when the objective needs them), recomputed in micro-batches; the
    first optimiser step's rows are left to that step's own forward (optimise.py), unless there is dropout."""
    config = ctx.config
    rows = max(1, batch.num_sequences // config.mini_batches)  # a mini-batch's rows: split as the update splits it
    size = micro_batch_size(config.optim, ctx.device, rows, batch.input_ids.shape[1])
    first = mini_batch_rows(batch, config.mini_batches)[0] if deterministic_forward(ctx.model) else None
    return recompute(
        ctx.model,
        batch,
        config.rollout.temperature,
        size,
        ctx.reference,
        skip=first,
        shared_prompt_pass=ctx.shared_prompt_pass,
    )


@torch.no_grad()
def evaluate_held_out(ctx: TrainContext, step: int) -> dict[str, Any]:
    """Held-out reward, pass@k / avg@k / maj@k (k = 1 and eval_samples) and diversity (ladkit.scoring), plus
    "eval_prompts": per held-out prompt, its samples and how many were correct (every rank's), which
    `ladkit compare` pairs across two single runs."""
    config, info = ctx.config, ctx.info
    examples = list(ctx.task.eval_examples())
    examples = shard(examples[: len(examples) - len(examples) % info.world_size], info.rank, info.world_size)
    if not examples:
        return {}
    k = config.eval_samples
    seeds = [sample_seed(config.seed + HELD_OUT_SEED_OFFSET, step, i) for i in range(len(examples))]
    scored = sample_and_score(
        ctx.backend,
        ctx.task,
        examples,
        [ctx.prompt_ids(e) for e in examples],
        k,
        config.rollout.sampling(),
        seeds,
        sorted({1, k}),
        policy_tokens(ctx.tokenizer),
    )
    prompts = [{"step": step, "example_id": e.id, "n": k, "correct": c} for e, c in zip(examples, scored.correct)]
    return {**distributed.all_mean(scored.metrics, info), "eval_prompts": distributed.all_gather_list(prompts, info)}


def _append_jsonl(path: Path, records: list[dict]) -> None:
    if records:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(to_jsonable(record)) + "\n" for record in records)


def _trim_jsonl(path: Path, start_step: int) -> None:
    """On resume, drop the records of the steps that will be redone (as metrics.jsonl does)."""
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
    """First and last rewards (mean of the first/last 10 steps' rollouts) and the evals before and after (read
    from metrics.jsonl: main process only)."""
    rows = [r for r in read_rows(ctx.run_dir / "metrics.jsonl") if "reward/mean" in r]
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
