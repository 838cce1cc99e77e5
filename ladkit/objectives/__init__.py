"""Objectives: pure tensor functions behind one registry.

    fn(logprobs [N, T], old_logprobs [N, T], advantages [N], mask [N, T], config, *, ref_logprobs=None,
       <declared inputs>, with_metrics=True) -> ObjectiveOutput(losses [N] or [N, T], level, metrics)

No model, tokenizer or optimiser inside: the bandit (T = 1) and the LLM trainer call the very same
functions, then `aggregate` reduces the losses. `OBJECTIVES.get(name)` gives the function, its config
dataclass and `needs`: for a config, what the objective asks of its caller (`Needs`: the level and
aggregation of its losses, a reference policy, extra trainable heads, the current policy's token
entropies). Callers ask `needs_for(config)` and never check names; an unknown name is an error listing
the valid ones. How to add an objective: CONTRIBUTING.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch

from ladkit.errors import LadkitError
from ladkit.objectives.aggregation import AGGREGATIONS, aggregate
from ladkit.objectives.covariance import ClipCovConfig, KLCovConfig, clip_cov_loss, kl_cov_loss
from ladkit.objectives.divergences import DIVERGENCES, Divergence
from ladkit.objectives.ent_adv import EntAdvConfig, ent_adv_loss
from ladkit.objectives.flowrl import FlowRLConfig, flowrl_loss
from ladkit.objectives.grpo import GRPOConfig, grpo_loss
from ladkit.objectives.lad import LADConfig, lad_loss
from ladkit.registry import Registry
from ladkit.types import LossLevel, ObjectiveOutput

__all__ = [
    "AGGREGATIONS",
    "DIVERGENCES",
    "OBJECTIVES",
    "ClipCovConfig",
    "Divergence",
    "EntAdvConfig",
    "FlowRLConfig",
    "GRPOConfig",
    "KLCovConfig",
    "LADConfig",
    "Needs",
    "Objective",
    "ObjectiveOutput",
    "aggregate",
    "clip_cov_loss",
    "ent_adv_loss",
    "flowrl_loss",
    "grpo_loss",
    "kl_cov_loss",
    "lad_loss",
    "make_config",
    "objective_loss",
]


ENTROPY_MODES = ("none", "detached", "grad")


@dataclass(frozen=True)
class Needs:
    """What an objective asks of its caller, for one config.

    level: "sequence" (losses [N]) or "token" (losses [N, T]); aggregation: the token-level reduction
    (one of AGGREGATIONS), None at sequence level; reference: ref_logprobs [N, T] of the reference policy;
    heads: extra trainable heads, each head's output [N] passed as the keyword of its name (FlowRL's
    "log_z"); entropy: the current policy's token entropies [N, T] passed as `entropy`, "detached" (no
    gradient) or "grad" (with gradient), or "none".
    """

    level: LossLevel = "sequence"
    aggregation: str | None = None
    reference: bool = False
    heads: tuple[str, ...] = ()
    entropy: str = "none"

    def __post_init__(self) -> None:
        if self.level not in ("sequence", "token"):
            raise LadkitError(f"Needs.level must be 'sequence' or 'token', got {self.level!r}")
        if (self.aggregation is None) != (self.level == "sequence"):
            raise LadkitError("Needs.aggregation: one of AGGREGATIONS at token level, None at sequence level")
        if self.aggregation is not None and self.aggregation not in AGGREGATIONS:
            raise LadkitError(f"Needs.aggregation must be one of {', '.join(AGGREGATIONS)}, got {self.aggregation!r}")
        if self.entropy not in ENTROPY_MODES:
            raise LadkitError(f"Needs.entropy must be one of {', '.join(ENTROPY_MODES)}, got {self.entropy!r}")

    def inputs(self) -> tuple[str, ...]:
        """The keyword inputs the loss takes beyond ref_logprobs: each head's, then `entropy`."""
        return self.heads + (("entropy",) if self.entropy != "none" else ())


@dataclass(frozen=True)
class Objective:
    """A registered objective: its loss function, the dataclass of its hyperparameters, and what it needs."""

    name: str
    loss: Callable[..., ObjectiveOutput]
    config_cls: type
    needs: Callable[[Any], Needs]  # config -> Needs

    def needs_for(self, config: Any) -> Needs:
        """What this objective needs under `config` (the default config when None)."""
        return self.needs(config if config is not None else self.config_cls())


def _lad_needs(config: LADConfig) -> Needs:
    return Needs(config.level, config.aggregation if config.level == "token" else None)


def _grpo_needs(config: GRPOConfig) -> Needs:
    return Needs("token", config.aggregation, reference=config.beta > 0)


def _flowrl_needs(config: FlowRLConfig) -> Needs:
    return Needs("sequence", heads=("log_z",))  # pi_ref := pi_old: no reference model


def _clip_cov_needs(config: ClipCovConfig) -> Needs:
    return Needs("token", config.aggregation)


def _kl_cov_needs(config: KLCovConfig) -> Needs:
    return Needs("token", config.aggregation)


def _ent_adv_needs(config: EntAdvConfig) -> Needs:
    return Needs("token", config.aggregation, entropy="detached")  # the bonus carries no gradient


OBJECTIVES: Registry[Objective] = Registry("objective")
OBJECTIVES.add("lad", Objective("lad", lad_loss, LADConfig, _lad_needs))
OBJECTIVES.add("grpo", Objective("grpo", grpo_loss, GRPOConfig, _grpo_needs))
OBJECTIVES.add("flowrl", Objective("flowrl", flowrl_loss, FlowRLConfig, _flowrl_needs))
OBJECTIVES.add("clip_cov", Objective("clip_cov", clip_cov_loss, ClipCovConfig, _clip_cov_needs))
OBJECTIVES.add("kl_cov", Objective("kl_cov", kl_cov_loss, KLCovConfig, _kl_cov_needs))
OBJECTIVES.add("ent_adv", Objective("ent_adv", ent_adv_loss, EntAdvConfig, _ent_adv_needs))


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
    ref_logprobs: torch.Tensor | None = None,  # [N, T]
    weights: torch.Tensor | None = None,  # [N] exact-expectation weights (bandit)
    with_metrics: bool = True,
    max_completion_length: int | None = None,
    num_tokens: float | None = None,
    **inputs: torch.Tensor | None,  # the declared heads' outputs [N] (log_z=...) and entropy [N, T]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Objective + aggregation in one call: (scalar loss, metrics with `loss/value` added).

    The loss gets ref_logprobs when given and exactly the inputs its Needs declare (a declared one that is
    missing is an error; others are dropped). `with_metrics=False` skips the diagnostics (the loss and its
    gradient are unchanged).
    """
    objective = OBJECTIVES.get(name)
    needs = objective.needs_for(config)
    declared = {}
    for key in needs.inputs():
        if inputs.get(key) is None:
            raise LadkitError(f"objective {name!r} needs {key!r}; the caller must pass it (see Needs)")
        declared[key] = inputs[key]
    output = objective.loss(
        logprobs,
        old_logprobs,
        advantages,
        mask,
        config,
        ref_logprobs=ref_logprobs,
        with_metrics=with_metrics,
        **declared,
    )
    if output.level != needs.level:
        raise LadkitError(f"objective {name!r} returned {output.level}-level losses but declares {needs.level}")
    loss = aggregate(output, mask, needs.aggregation or "grpo", weights, max_completion_length, num_tokens)
    return loss, ({**output.metrics, "loss/value": loss.detach()} if with_metrics else {})
