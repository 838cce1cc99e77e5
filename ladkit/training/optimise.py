"""The update of one step: recompute pi_old's log-probs, then PPO-style passes over mini-batches.

pi_old is the policy as it sampled this batch, held fixed for every mini-batch and epoch of the step
(docs/design.md 2.2). Mini-batch m holds the prompts whose position in this process's shard is m mod M, so
under DDP the union over ranks of mini-batch m is exactly the single-process mini-batch m, and the run
does not depend on the number of processes.

The first optimiser step's rows need no separate pi_old pass: no update has happened when their forward
runs, so its detached log-probs are pi_old's (ratio exactly 1, as TRL does for on-policy steps). This holds
when the train-mode forward equals the eval-mode one, i.e. without dropout (`deterministic_forward`); with
dropout every row is recomputed in eval mode. With M mini-batches a step runs 2M - 1 forward passes, not 2M.
Filling those rows is an explicit step of `mini_batch_step` (forward, fill pi_old, loss), not a side effect.

Nothing here names an objective: what is objective-specific comes from its registered Needs (`ctx.needs`):
the micro-batch weighting (`micro_share`), the reference policy, the token entropies and heads its loss takes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from ladkit.errors import LadkitError
from ladkit.models.loading import train_mode_matters
from ladkit.objectives import Needs, objective_loss
from ladkit.training import distributed
from ladkit.training.batch import RolloutBatch
from ladkit.training.policy import PolicyForward, policy_forward

if TYPE_CHECKING:
    from ladkit.training.setup import TrainContext


@dataclass
class StepStats:
    """What the update reports (averaged over optimiser steps)."""

    metrics: dict[str, float] = field(default_factory=dict)
    skipped: int = 0  # optimiser steps skipped for a non-finite loss or gradient


@dataclass
class SkipGuard:
    """Counts consecutive skipped optimiser steps (across RL steps) and stops the run past `limit` (0: never)."""

    limit: int
    run: int = 0  # consecutive skips so far

    def record(self, skipped: bool) -> None:
        self.run = self.run + 1 if skipped else 0
        if self.limit and self.run >= self.limit:
            raise LadkitError(
                f"training stopped: {self.run} consecutive optimiser steps had a non-finite loss or gradient "
                "(lower optim.lr, or check rewards/advantages)"
            )


@dataclass
class OldPolicy:
    """pi_old's per-token log-probs and entropies [N, T], and the reference's [N, T] (or None), for one step.

    `pending` [N] marks rows not recomputed: the first optimiser step's forward fills them (`fill_pending`,
    an explicit step of `mini_batch_step`) before its loss reads them.
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor
    ref_logprobs: torch.Tensor | None
    pending: torch.Tensor

    def fill(self, rows: torch.Tensor, logprobs: torch.Tensor, entropy: torch.Tensor) -> None:
        self.logprobs[rows] = logprobs.detach()
        self.entropy[rows] = entropy.detach()
        self.pending[rows] = False

    def fill_pending(self, rows: torch.Tensor, forward: PolicyForward) -> None:
        """pi_old for `rows` from the current policy's forward over them, if they are still pending (no update
        has happened yet when the first optimiser step runs, so its detached log-probs are pi_old's)."""
        if bool(self.pending[rows].any()):
            self.fill(rows, forward.logprobs, forward.entropy)


@torch.no_grad()
def recompute(
    model: torch.nn.Module,
    batch: RolloutBatch,
    temperature: float,
    micro_batch_size: int,
    reference: Callable | None = None,
    skip: torch.Tensor | None = None,
    shared_prompt_pass: bool = True,
) -> OldPolicy:
    """pi_old (eval mode, no gradient) in micro-batches of `micro_batch_size` rows, except the rows `skip` (left
    pending, NaN until filled); the reference's log-probs for every row when `reference` (a context manager
    that turns the model into the reference policy) is given. `shared_prompt_pass`: one prompt pass per group
    (TrainConfig.shared_prompt_pass)."""
    n, width = batch.response_mask.shape
    pending = torch.zeros(n, dtype=torch.bool, device=batch.input_ids.device)  # [N]
    if skip is not None:
        pending[skip] = True
    nan = torch.full((n, width), float("nan"), device=pending.device)  # [N, T]
    old = OldPolicy(logprobs=nan, entropy=nan.clone(), ref_logprobs=None, pending=pending)
    todo = torch.nonzero(~pending).flatten()  # [n] (empty with one mini-batch: its update fills every row)
    if not len(todo) and reference is None:
        return old  # nothing to compute: no eval/train switch (a walk over every module, twice)
    switch = train_mode_matters(model)  # else eval mode computes what train mode does: no walks to switch
    was_training = model.training
    if switch:
        model.eval()  # pi_old is the sampling policy: no dropout
    for rows in todo.split(micro_batch_size) if len(todo) else ():
        forward = policy_forward(
            model, batch.rows(rows), temperature, entropy="detached", shared_prompt_pass=shared_prompt_pass
        )
        old.fill(rows, forward.logprobs, forward.entropy)
    if reference is not None:
        with reference(model):
            parts = [
                policy_forward(model, batch.rows(rows), temperature, shared_prompt_pass=shared_prompt_pass).logprobs
                for rows in torch.arange(n).split(micro_batch_size)
            ]
        old.ref_logprobs = torch.cat(parts)  # [N, T]
    if switch:
        model.train(was_training)
    return old


def mini_batch_rows(batch: RolloutBatch, mini_batches: int) -> list[torch.Tensor]:
    """Row indices of each mini-batch: prompts whose local position is m mod M (balanced across ranks)."""
    prompt = batch.group_index  # [N]
    return [torch.nonzero(prompt % mini_batches == m).flatten() for m in range(mini_batches)]


def update(ctx: TrainContext, batch: RolloutBatch, old: OldPolicy, guard: SkipGuard | None = None) -> StepStats:
    """Epochs x mini-batches of optimiser steps on `batch` with pi_old fixed (`guard` counts skipped steps)."""
    config, stats, sums = ctx.config, StepStats(), {}
    steps = 0
    for _ in range(config.epochs):
        for rows in mini_batch_rows(batch, config.mini_batches):
            metrics = mini_batch_step(ctx, batch, rows, old)
            if guard is not None:
                guard.record(metrics is None)
            if metrics is None:
                stats.skipped += 1
                continue
            steps += 1
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
    stats.metrics = {key: value / max(steps, 1) for key, value in sums.items()}
    return stats


def mini_batch_step(ctx: TrainContext, batch: RolloutBatch, rows: torch.Tensor, old: OldPolicy) -> dict | None:
    """Accumulate gradients over micro-batches (`micro_batch_size`), clip, step. None when the step was skipped
    (non-finite).

    Per micro-batch: (1) the policy's forward over its rows, (2) pi_old filled from that forward for rows
    whose recomputation was skipped, (3) the objective, backpropagated with the micro-batch's share.
    """
    config, needs = ctx.config, ctx.needs
    width = distributed.agreed_max(batch.input_ids.shape[1], ctx.train_model)  # fsdp: the same split on every rank
    micro_batches = rows.split(micro_batch_size(config.optim, ctx.device, len(rows), width))
    mini_tokens = float(batch.response_mask[rows].sum())  # dapo's normaliser: tokens in the mini-batch
    sums: dict[str, float] = {}
    for i, micro_rows in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        no_sync = getattr(ctx.train_model, "no_sync", None)  # DDP: all-reduce once, after the last micro-batch
        gradient_sync = getattr(ctx.train_model, "set_requires_gradient_sync", None)  # FSDP2's counterpart
        if gradient_sync is not None:
            gradient_sync(last)
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            forward = train_forward(ctx, batch.rows(micro_rows), fill=bool(old.pending[micro_rows].any()))
            old.fill_pending(micro_rows, forward)
            loss, metrics = micro_batch_loss(ctx, batch, micro_rows, forward, old, mini_tokens)
            micro_tokens = float(batch.response_mask[micro_rows].sum())
            (loss * micro_share(needs, len(micro_rows), len(rows), micro_tokens, mini_tokens)).backward()
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(micro_rows) / len(rows)
    grad_norm = torch.nn.utils.clip_grad_norm_(ctx.parameters, config.optim.max_grad_norm or float("inf"))
    if hasattr(grad_norm, "full_tensor"):  # fsdp: a replicated DTensor (the global norm): its plain value
        grad_norm = grad_norm.full_tensor()
    if not torch.isfinite(grad_norm) or not all(math.isfinite(v) for v in sums.values()):
        ctx.optimizer.zero_grad(set_to_none=True)  # weights and optimiser state stay as they were
        return None
    ctx.optimizer.step()
    ctx.scheduler.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    return {**sums, "optim/grad_norm": float(grad_norm), "optim/lr": ctx.scheduler.get_last_lr()[0]}


GPU_MICRO_BATCH_TOKENS = 16384  # optim.micro_batch_tokens unset on a GPU: rows x padded length per micro-batch


def micro_batch_size(optim, device: torch.device, rows: int, width: int) -> int:
    """Rows per micro-batch of a mini-batch of `rows` rows, `width` padded columns each: at most 1/grad_accumulation
    of the rows and at most optim.micro_batch_tokens tokens (rows x width; unset: none on a CPU,
    GPU_MICRO_BATCH_TOKENS on a GPU), at least one row. micro_share keeps the gradient exact for any split."""
    size = math.ceil(rows / optim.grad_accumulation)
    budget = optim.micro_batch_tokens
    if budget is None:
        budget = 0 if device.type == "cpu" else GPU_MICRO_BATCH_TOKENS
    if budget:
        size = min(size, budget // max(1, width))
    return max(1, size)


def micro_share(needs: Needs, micro_rows: int, mini_rows: int, micro_tokens: float, mini_tokens: float) -> float:
    """Weight of a micro-batch's loss in its mini-batch, so that the accumulated gradient is the mini-batch's
    whatever grad_accumulation is: the micro-batch's share of the mini-batch's rows (losses that are means over
    sequences: sequence level, token-level grpo and dr_grpo), of its tokens (bnpo: a mean over tokens), or 1
    (dapo: already divided by the mini-batch's token count, so the micro losses add up)."""
    if needs.aggregation == "dapo":
        return 1.0
    if needs.aggregation == "bnpo":
        return micro_tokens / max(mini_tokens, 1.0)
    return micro_rows / mini_rows


def train_forward(ctx: TrainContext, part: RolloutBatch, fill: bool) -> PolicyForward:
    """The current policy's forward over a micro-batch, through the DDP wrapper, with the entropies pi_old's fill
    (`fill`) or the objective needs, and the prompt feature when the objective has heads."""
    needs = ctx.needs
    entropy = needs.entropy if needs.entropy != "none" else ("detached" if fill else "none")
    return policy_forward(
        ctx.train_model,
        part,
        ctx.config.rollout.temperature,
        entropy=entropy,
        hidden=bool(needs.heads),
        prefix_model=ctx.model,
        shared_prompt_pass=ctx.shared_prompt_pass,
    )


def micro_batch_loss(
    ctx: TrainContext,
    batch: RolloutBatch,
    rows: torch.Tensor,
    forward: PolicyForward,
    old: OldPolicy,
    mini_tokens: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective on one micro-batch, given the policy's forward over its rows and pi_old (filled)."""
    config, needs = ctx.config, ctx.needs
    part = batch.rows(rows)
    inputs = {name: ctx.heads[name](forward.feature) for name in needs.heads}  # [n] each
    if needs.entropy != "none":
        inputs["entropy"] = forward.entropy  # [n, T]
    return objective_loss(
        config.objective,
        config.objective_config,
        forward.logprobs,  # [n, T]
        old.logprobs[rows],  # [n, T]
        part.advantages,  # [n]
        part.response_mask & part.valid[:, None],  # [n, T]; samples without a reward take no part
        ref_logprobs=None if old.ref_logprobs is None else old.ref_logprobs[rows],
        max_completion_length=config.rollout.max_new_tokens,
        num_tokens=mini_tokens,
        **inputs,
    )
