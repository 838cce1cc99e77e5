"""The update of one step: recompute pi_old's log-probs, then PPO-style passes over mini-batches.

pi_old is the policy as it sampled this batch, held fixed for every mini-batch and epoch of the step
(DESIGN.md 1.1). Mini-batch m holds the prompts whose position in this process's shard is m mod M, so
under DDP the union over ranks of mini-batch m is exactly the single-process mini-batch m, and the run
does not depend on the number of processes.

The first optimiser step's rows need no separate pi_old pass: no update has happened when their forward
runs, so its detached log-probs are pi_old's (ratio exactly 1, as TRL does for on-policy steps). This holds
when the train-mode forward equals the eval-mode one, i.e. without dropout (`deterministic_forward`); with
dropout every row is recomputed in eval mode. With M mini-batches a step runs 2M - 1 forward passes, not 2M.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch

from ladkit.errors import LadkitError
from ladkit.objectives import objective_loss
from ladkit.training.batch import RolloutBatch
from ladkit.training.policy import response_logprobs


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

    `pending` [N] marks rows not recomputed: the first optimiser step fills them from its own forward.
    """

    logprobs: torch.Tensor
    entropy: torch.Tensor
    ref_logprobs: torch.Tensor | None
    pending: torch.Tensor

    def fill(self, rows: torch.Tensor, logprobs: torch.Tensor, entropy: torch.Tensor) -> None:
        self.logprobs[rows] = logprobs.detach()
        self.entropy[rows] = entropy.detach()
        self.pending[rows] = False


@torch.no_grad()
def recompute(
    model, batch: RolloutBatch, temperature: float, micro: int, reference=None, skip: torch.Tensor | None = None,
    share_prompts: bool = True,
) -> OldPolicy:  # fmt: skip
    """pi_old (eval mode, no gradient) in micro-batches of `micro` rows, except the rows `skip` (left pending,
    NaN until filled); the reference's log-probs for every row when `reference` is given. `share_prompts`:
    one prompt pass per group (TrainConfig.shared_prompt_pass)."""
    was_training = model.training
    model.eval()  # pi_old is the sampling policy: no dropout
    n, width = batch.response_mask.shape
    pending = torch.zeros(n, dtype=torch.bool, device=batch.input_ids.device)  # [N]
    if skip is not None:
        pending[skip] = True
    old = OldPolicy(
        logprobs=torch.full((n, width), float("nan"), device=pending.device),
        entropy=torch.full((n, width), float("nan"), device=pending.device),
        ref_logprobs=None, pending=pending,
    )  # fmt: skip
    todo = torch.nonzero(~pending).flatten()  # [n] (empty with one mini-batch: its update fills every row)
    for rows in todo.split(micro) if len(todo) else ():
        logprobs, entropy, _ = response_logprobs(model, batch.rows(rows), temperature, want_entropy=True,
                                                 share_prompts=share_prompts)  # fmt: skip
        old.fill(rows, logprobs, entropy)
    if reference is not None:
        ref = []
        with reference(model):
            for rows in torch.arange(n).split(micro):
                ref.append(response_logprobs(model, batch.rows(rows), temperature, share_prompts=share_prompts)[0])
        old.ref_logprobs = torch.cat(ref)
    model.train(was_training)
    return old


DROPOUT_CONFIG_KEYS = (
    "attention_dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop", "hidden_dropout", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "dropout", "activation_dropout",
)  # fmt: skip


def deterministic_forward(model) -> bool:
    """True when the train-mode forward is the eval-mode one: no dropout module with p > 0 and no dropout
    rate in the model config (attention dropout is a functional call in transformers)."""
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return False
    config = getattr(model, "config", None)
    for key in DROPOUT_CONFIG_KEYS:
        value = getattr(config, key, 0)
        if isinstance(value, (int, float)) and value > 0:
            return False
    return True


def mini_batch_rows(batch: RolloutBatch, mini_batches: int) -> list[torch.Tensor]:
    """Row indices of each mini-batch: prompts whose local position is m mod M (balanced across ranks)."""
    prompt = batch.group_index  # [N]
    return [torch.nonzero(prompt % mini_batches == m).flatten() for m in range(mini_batches)]


def update(ctx, batch: RolloutBatch, old: OldPolicy, guard: SkipGuard | None = None) -> StepStats:
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


def mini_batch_step(ctx, batch: RolloutBatch, rows: torch.Tensor, old: OldPolicy) -> dict | None:
    """Accumulate gradients over micro-batches, clip, step. None when the step was skipped (non-finite)."""
    config = ctx.config
    micro_rows = rows.split(max(1, math.ceil(len(rows) / config.optim.grad_accumulation)))
    num_tokens = float(batch.response_mask[rows].sum())  # dapo's normaliser: tokens in the mini-batch
    sums: dict[str, float] = {}
    for i, micro in enumerate(micro_rows):
        last = i == len(micro_rows) - 1
        sync = (
            contextlib.nullcontext() if last or not hasattr(ctx.train_model, "no_sync") else ctx.train_model.no_sync()
        )
        with sync:
            loss, metrics = micro_loss(ctx, batch, micro, old, num_tokens)
            (loss * micro_share(config, len(micro), len(rows))).backward()
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value) * len(micro) / len(rows)
    grad_norm = torch.nn.utils.clip_grad_norm_(ctx.parameters, config.optim.max_grad_norm or float("inf"))
    if not torch.isfinite(grad_norm) or not all(math.isfinite(v) for v in sums.values()):
        ctx.optimizer.zero_grad(set_to_none=True)  # weights and optimiser state stay as they were
        return None
    ctx.optimizer.step()
    ctx.scheduler.step()
    ctx.optimizer.zero_grad(set_to_none=True)
    return {**sums, "optim/grad_norm": float(grad_norm), "optim/lr": ctx.scheduler.get_last_lr()[0]}


def micro_share(config, micro_size: int, rows: int) -> float:
    """Weight of a micro-batch's loss in its mini-batch: its share of rows, except for dapo, whose loss is
    already normalised by the mini-batch's token count (so the micro losses simply add up)."""
    cfg = config.objective_config
    token_level = config.objective == "grpo" or (config.objective == "lad" and cfg.level == "token")
    return 1.0 if token_level and getattr(cfg, "aggregation", None) == "dapo" else micro_size / rows


def micro_loss(ctx, batch: RolloutBatch, rows: torch.Tensor, old: OldPolicy, num_tokens: float):
    """The objective on one micro-batch (the model forward runs through the DDP wrapper); pending pi_old rows
    take this forward's detached log-probs first."""
    config = ctx.config
    part = batch.rows(rows)
    flowrl = config.objective == "flowrl"
    fill = bool(old.pending[rows].any())
    logprobs, entropy, feature = response_logprobs(
        ctx.train_model, part, config.rollout.temperature, want_entropy=fill, want_hidden=flowrl,
        prefix_model=ctx.model, share_prompts=ctx.share_prompts,
    )  # fmt: skip
    if fill:
        old.fill(rows, logprobs, entropy)
    return objective_loss(
        config.objective,
        config.objective_config,
        logprobs,  # [n, T]
        old.logprobs[rows],  # [n, T]
        part.advantages,  # [n]
        part.response_mask & part.valid[:, None],  # [n, T]; samples without a reward take no part
        ref_logprobs=None if old.ref_logprobs is None else old.ref_logprobs[rows],
        log_z=ctx.log_z(feature) if flowrl else None,
        max_completion_length=config.rollout.max_new_tokens,
        num_tokens=num_tokens,
    )
