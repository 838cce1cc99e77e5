"""The bandit experiment's config: one dataclass, each field documented, validated on creation.

The objectives' settings are the objectives' own config sections (`lad`, `grpo`, `flowrl`, `clip_cov`, `kl_cov`,
`ent_adv`: LADConfig, GRPOConfig, ...), with the bandit's defaults: 1/eta = 2, the PPO clip off for GRPO, ClipCov
and EntAdv, FlowRL's beta = 1/eta.
`resolve_bandit(preset, overrides, settings)` builds one from a preset or YAML file, `a.b=c` overrides and
settings by name (the CLI's flags, the dashboard's controls), checking every key like `ladkit train`'s config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ladkit.advantages import ESTIMATORS
from ladkit.bandit.shapes import SHAPES
from ladkit.config import apply_overrides, build, load_preset, merge
from ladkit.errors import LadkitError
from ladkit.objectives import (
    DIVERGENCES,
    OBJECTIVES,
    ClipCovConfig,
    EntAdvConfig,
    FlowRLConfig,
    GRPOConfig,
    KLCovConfig,
    LADConfig,
)


def _bandit_grpo() -> GRPOConfig:
    """GRPO with the clip off. Against a frozen uniform pi_old a 0.2 clip stops every arm at ratio 1.2, while
    the paper's bandit GRPO maximises E_pi[A] (ratio 1 at every step when pi_old is refreshed)."""
    return GRPOConfig(epsilon_low=1.0, epsilon_high=math.inf)  # ratios are > 0: a lower bound of 0 never binds


@dataclass
class BanditConfig:
    """A K-armed bandit with a fixed advantage per arm (docs/design.md 7)."""

    num_arms: int = 50
    """K, the number of arms (>= 2). With shape 'table' it must match the table's length."""
    shape: str = "trimodal"
    """Advantage shape: trimodal (the paper's), bimodal, unimodal, linear, or table."""
    table: str | None = None
    """With shape 'table': comma-separated advantages, or a .json/.txt/.csv file of numbers."""
    objectives: list[str] = field(default_factory=lambda: ["lad", "grpo"])
    """Objectives to train side by side; 'lad:kl' picks a divergence for one entry (others use lad.divergence)."""
    mode: str = "exact"
    """'exact': expectation over all arms under pi_old; 'sampled': groups of group_size arms from pi_old."""
    group_size: int = 8
    """G, arms sampled per step in 'sampled' mode."""
    estimator: str = "none"
    """Advantage estimator applied to each sampled group ('none' keeps the table's advantages)."""
    refresh_every: int | None = None
    """Copy pi_theta into pi_old every this many steps; None keeps pi_old at the initial uniform policy."""
    steps: int = 4000
    """Adam steps per objective."""
    lr: float = 5e-3
    """Adam learning rate (the paper's bandit: 5e-3)."""
    seed: int = 0
    """Seeds arm sampling (the initial policy is uniform)."""
    log_every: int = 20
    """Write a metrics row every this many steps (diagnostics cost more than a step; 200 rows draw the curves)."""
    lad: LADConfig = field(default_factory=lambda: LADConfig(inv_eta=2.0))
    """LAD's settings; its 1/eta also sets the target softmax(inv_eta * A) every objective is measured against."""
    grpo: GRPOConfig = field(default_factory=_bandit_grpo)
    """GRPO's settings; the clip is off by default (epsilon_low 1, epsilon_high inf)."""
    flowrl: FlowRLConfig | None = None
    """FlowRL's settings; unset: beta = LAD's 1/eta (FlowRL aims at the same target) and no importance clip."""
    clip_cov: ClipCovConfig = field(default_factory=lambda: ClipCovConfig(epsilon_low=1.0, epsilon_high=math.inf))
    """ClipCov's settings; the PPO clip is off as for GRPO, so dropping high-covariance arms is the only change."""
    kl_cov: KLCovConfig = field(default_factory=KLCovConfig)
    """KLCov's settings (its surrogate has no clip)."""
    ent_adv: EntAdvConfig = field(default_factory=lambda: EntAdvConfig(epsilon_low=1.0, epsilon_high=math.inf))
    """EntAdv's settings; the PPO clip is off as for GRPO, so the entropy bonus is the only change."""

    # keys of the flat layout (before the objective sections): an error naming the new key
    MOVED: ClassVar[dict[str, str]] = {
        "divergence": "lad.divergence",
        "eta": "lad.eta",
        "inv_eta": "lad.inv_eta",
        "grpo_clip": "grpo.epsilon_high (and grpo.epsilon_low; --grpo-clip sets both)",
        "flowrl_beta": "flowrl.beta",
    }

    def __post_init__(self) -> None:
        if self.num_arms < 2:
            raise LadkitError(f"num_arms (K) must be >= 2, got {self.num_arms}")
        if self.shape != "table":
            SHAPES.get(self.shape)
        if not self.objectives:
            raise LadkitError("objectives is empty; name at least one of: " + ", ".join(OBJECTIVES.names()))
        labels = [label(spec, self.lad.divergence) for spec in self.objectives]
        twice = sorted({name for name in labels if labels.count(name) > 1})
        if twice:
            raise LadkitError(f"objectives {', '.join(self.objectives)} name {twice[0]} twice; keep one of them")
        if self.mode not in ("exact", "sampled"):
            raise LadkitError(f"mode must be 'exact' or 'sampled', got {self.mode!r}")
        if self.mode == "sampled" and self.group_size < 2:
            raise LadkitError(f"group_size (G) must be >= 2 in sampled mode, got {self.group_size}")
        ESTIMATORS.get(self.estimator)
        if self.refresh_every is not None and self.refresh_every < 1:
            raise LadkitError(f"refresh_every must be >= 1 (or unset for a fixed pi_old), got {self.refresh_every}")
        for name in ("steps", "log_every"):
            if getattr(self, name) < 1:
                raise LadkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise LadkitError(f"lr must be > 0, got {self.lr}")

    @property
    def inverse_temperature(self) -> float:
        """LAD's 1/eta: the target is softmax(inverse_temperature * A)."""
        return self.lad.inverse_temperature


SHORT_NAMES = {"divergence": "lad.divergence", "eta": "lad.eta", "inv_eta": "lad.inv_eta"}
"""Flag and dashboard names of section keys (with `grpo_clip`, which sets GRPO's two epsilons)."""


def resolve_bandit(preset: str | None, overrides: list[str], settings: dict[str, Any]) -> BanditConfig:
    """The config from a preset (ladkit/presets/bandit/) or YAML file, then `a.b=c` overrides, then `settings`
    (see `nested_settings`), like `ladkit train`'s. K defaults to the table's length for shape 'table'."""
    data = load_preset(preset, "bandit") if preset else {}
    data = merge(apply_overrides(data, list(overrides)), nested_settings(settings))
    if "num_arms" not in data and data.get("shape") == "table" and isinstance(data.get("table"), str):
        from ladkit.bandit.shapes import parse_table

        data["num_arms"] = len(parse_table(data["table"]))
    return build(BanditConfig, data)


def nested_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings named by BanditConfig field or by a short name (SHORT_NAMES, `grpo_clip`) as a nested mapping;
    `grpo_clip` c sets epsilon_low = min(c, 1) (ratios are > 0) and epsilon_high = c, None turns the clip off."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if name == "grpo_clip":
            out = merge(out, {"grpo": _clip_section(value)})
        elif name in SHORT_NAMES:
            section, key = SHORT_NAMES[name].split(".")
            out = merge(out, {section: {key: value}})
        else:
            out[name] = value
    return out


def _clip_section(clip: float | None) -> dict[str, float]:
    if clip is None:
        off = _bandit_grpo()
        return {"epsilon_low": off.epsilon_low, "epsilon_high": off.epsilon_high}
    if not isinstance(clip, (int, float)) or not clip > 0:
        raise LadkitError(f"grpo_clip must be > 0 or unset, got {clip!r}")
    return {"epsilon_low": min(clip, 1.0), "epsilon_high": clip}


def parse_objective(spec: str, default_divergence: str) -> tuple[str, str | None]:
    """'lad' -> ('lad', default), 'lad:kl' -> ('lad', 'kl'), 'grpo' -> ('grpo', None)."""
    name, _, divergence = spec.partition(":")
    OBJECTIVES.get(name)
    if name != "lad":
        if divergence:
            raise LadkitError(f"objective spec {spec!r}: only lad takes a divergence (lad:js, lad:kl, ...)")
        return name, None
    divergence = divergence or default_divergence
    DIVERGENCES.get(divergence)
    return name, divergence


def label(spec: str, default_divergence: str) -> str:
    """Display name of an objective entry: 'lad:js', 'grpo'."""
    name, divergence = parse_objective(spec, default_divergence)
    return f"{name}:{divergence}" if divergence else name
