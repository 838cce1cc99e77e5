"""Objectives: pure tensor functions behind one registry.

    fn(logprobs [N, T], old_logprobs [N, T], advantages [N], mask [N, T], config,
       ref_logprobs=None, log_z=None) -> ObjectiveOutput(losses [N] or [N, T], level, metrics)

No model, tokenizer or optimiser inside: the bandit (T = 1) and the LLM trainer call the very same
functions, then `aggregate` reduces the losses. `OBJECTIVES.get(name)` gives the function and its
config dataclass; an unknown name is an error listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import AGGREGATIONS, aggregate
from ladkit.objectives.divergences import DIVERGENCES, Divergence
from ladkit.objectives.flowrl import FlowRLConfig, flowrl_loss
from ladkit.objectives.grpo import GRPOConfig, grpo_loss
from ladkit.objectives.lad import LADConfig, lad_loss
from ladkit.registry import Registry
from ladkit.types import ObjectiveOutput

__all__ = [
    "AGGREGATIONS",
    "DIVERGENCES",
    "OBJECTIVES",
    "Divergence",
    "FlowRLConfig",
    "GRPOConfig",
    "LADConfig",
    "Objective",
    "ObjectiveOutput",
    "aggregate",
    "flowrl_loss",
    "grpo_loss",
    "lad_loss",
    "make_config",
    "objective_loss",
]


@dataclass(frozen=True)
class Objective:
    """A registered objective: its loss function and the dataclass of its hyperparameters."""

    name: str
    loss: Callable[..., ObjectiveOutput]
    config_cls: type
    needs_log_z: bool = False  # FlowRL: the caller owns a log-partition head


OBJECTIVES: Registry[Objective] = Registry("objective")
OBJECTIVES.add("lad", Objective("lad", lad_loss, LADConfig))
OBJECTIVES.add("grpo", Objective("grpo", grpo_loss, GRPOConfig))
OBJECTIVES.add("flowrl", Objective("flowrl", flowrl_loss, FlowRLConfig, needs_log_z=True))


def make_config(name: str, **overrides: Any):
    """The objective's config dataclass with `overrides`; unknown keys are errors naming the valid ones."""
    cls = OBJECTIVES.get(name).config_cls
    valid = [f.name for f in fields(cls)]
    for key in overrides:
        if key not in valid:
            raise LadkitError(f"{name} has no option {key!r}; valid options: {', '.join(valid)}")
    return cls(**overrides)


def objective_loss(
    name: str,
    config: Any,
    logprobs: torch.Tensor,  # [N, T]
    old_logprobs: torch.Tensor,  # [N, T]
    advantages: torch.Tensor,  # [N]
    mask: torch.Tensor,  # [N, T]
    ref_logprobs: torch.Tensor | None = None,
    log_z: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,  # [N] exact-expectation weights (bandit)
    with_metrics: bool = True,
    **aggregate_kwargs: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Objective + aggregation in one call: (scalar loss, metrics with `loss/value` added).

    `with_metrics=False` skips the diagnostics (the loss and its gradient are unchanged).
    """
    objective = OBJECTIVES.get(name)
    output = objective.loss(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        config,
        ref_logprobs=ref_logprobs,
        log_z=log_z,
        with_metrics=with_metrics,
    )
    mode = getattr(config, "aggregation", "grpo")
    loss = aggregate(output, mask, mode, weights=weights, **aggregate_kwargs)
    return loss, ({**output.metrics, "loss/value": loss.detach()} if with_metrics else {})
