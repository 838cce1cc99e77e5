"""The bandit experiment's config: one dataclass, each field documented, validated on creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from ladkit.advantages import ESTIMATORS
from ladkit.bandit.shapes import SHAPES
from ladkit.errors import LadkitError
from ladkit.objectives import DIVERGENCES, OBJECTIVES
from ladkit.objectives.lad import check_temperature


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
    """Objectives to train side by side; 'lad:kl' picks a divergence for one entry."""
    divergence: str = "js"
    """Default divergence for LAD entries without ':name'."""
    eta: float | None = None
    """LAD temperature; give eta or inv_eta."""
    inv_eta: float | None = 2.0
    """1/eta. The target distribution is softmax(inv_eta * A)."""
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
    grpo_clip: float | None = None
    """GRPO clip epsilon. Off by default: against a frozen uniform pi_old a 0.2 clip stops every arm at ratio
    1.2, while the paper's bandit GRPO maximises E_pi[A] (ratio 1 at every step when pi_old is refreshed)."""
    flowrl_beta: float | None = None
    """FlowRL's beta; None uses inv_eta so FlowRL aims at the same softmax(A/eta)."""
    log_every: int = 20
    """Write a metrics row every this many steps (diagnostics cost more than a step; 200 rows draw the curves)."""

    def __post_init__(self) -> None:
        if self.num_arms < 2:
            raise LadkitError(f"num_arms (K) must be >= 2, got {self.num_arms}")
        if self.shape != "table":
            SHAPES.get(self.shape)
        if not self.objectives:
            raise LadkitError("objectives is empty; name at least one of: " + ", ".join(OBJECTIVES.names()))
        labels = [label(spec, self.divergence) for spec in self.objectives]
        twice = sorted({name for name in labels if labels.count(name) > 1})
        if twice:
            raise LadkitError(f"objectives {', '.join(self.objectives)} name {twice[0]} twice; keep one of them")
        DIVERGENCES.get(self.divergence)
        check_temperature(self.eta, self.inv_eta)
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
        if self.grpo_clip is not None and not self.grpo_clip > 0:
            raise LadkitError(f"grpo_clip must be > 0 or unset, got {self.grpo_clip}")

    @property
    def inverse_temperature(self) -> float:
        return 1.0 / self.eta if self.eta is not None else float(self.inv_eta)


def resolve_num_arms(shape: str, table: str | None, num_arms: int | None) -> int:
    """K when the user may leave it out: the table's length for shape 'table', else 50."""
    if num_arms is not None:
        return num_arms
    if shape == "table" and table is not None:
        from ladkit.bandit.shapes import parse_table

        return len(parse_table(table))
    return 50


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
