"""The bandit experiment (docs/design.md 7): train a softmax policy over K arms with each objective.

The policy is softmax(theta), theta in R^K, starting uniform. Each step the objective sees the arms
as length-1 "sequences" (T = 1): log pi_theta(arm), log pi_old(arm) and the arm's advantage, and
calls the very same objective functions as the LLM trainer. 'exact' mode takes the expectation over
all K arms under pi_old (aggregation weights pi_old); 'sampled' mode draws G arms from pi_old.

With pi_old fixed at the uniform start, LAD converges to the target softmax(A/eta) and keeps every
mode; GRPO (maximising E_pi[A]) piles its mass on the best arm. Refreshing pi_old every step while A
stays fixed multiplies the policy by exp(A/eta) again and again, so LAD collapses too.

One token per response, for the entropy-preserving baselines: ClipCov's and KLCov's
C_k = (A_k - mean A)(log pi_k - mean log pi) is the covariance over the arms of the batch (all K arms in
'exact' mode, plain means, which are pi_old's expectation while pi_old is the uniform start; the G drawn
arms in 'sampled' mode), and at the default ratios max(1, int(2e-4 * K)) = 1 arm a step is acted on.
EntAdv's token entropy is the entropy of the arm distribution, the same for every arm (`arm_entropy`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from ladkit.advantages import compute_advantages
from ladkit.bandit.config import BanditConfig, label, parse_objective
from ladkit.bandit.metrics import Modes, entropy, find_modes, tv_distance
from ladkit.bandit.shapes import make_advantages
from ladkit.objectives import OBJECTIVES, FlowRLConfig, make_config, objective_loss


@dataclass
class BanditProgress:
    """What a callback sees every `callback_every` steps (and at step 0 and the last step)."""

    label: str  # objective entry, e.g. "lad:js"
    step: int
    steps: int
    probs: torch.Tensor  # [K] current policy
    metrics: dict[str, float]


@dataclass
class BanditRun:
    """One objective's outcome."""

    label: str
    probs: torch.Tensor  # [K] final policy
    history: list[dict[str, float]] = field(default_factory=list)  # metrics rows, every log_every steps
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class BanditResult:
    config: BanditConfig
    advantages: torch.Tensor  # [K]
    target: torch.Tensor  # [K] softmax(A/eta)
    modes: Modes
    runs: list[BanditRun]


class Adam:
    """Adam (Kingma & Ba 2015, torch.optim.Adam's defaults) for the bandit's few small tensors.

    Same update as torch.optim.Adam (a unit test checks the trajectories agree), without its per-step
    dispatch overhead and its first-step import of torch._dynamo (~1 s), which would dominate a
    4000-step run over 50 logits.
    """

    def __init__(self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]  # first moments
        self.v = [torch.zeros_like(p) for p in params]  # second moments
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        bias2_sqrt = (1 - b2**self.t) ** 0.5
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / bias2_sqrt).add_(self.eps), value=-step_size)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def objective_config(config: BanditConfig, spec: str):
    """The objective's own config for a bandit entry: its section of `config` ('lad:kl' swaps LAD's divergence;
    FlowRL unset aims at LAD's target: beta = 1/eta, no importance clip)."""
    name, divergence = parse_objective(spec, config.lad.divergence)
    if name == "lad":
        return name, replace(config.lad, divergence=divergence)
    if name == "flowrl" and config.flowrl is None:
        return name, FlowRLConfig(beta=config.inverse_temperature, importance_clip=None)
    section = getattr(config, name, None)
    return name, section if section is not None else make_config(name)


def state_metrics(probs: torch.Tensor, target: torch.Tensor, modes: Modes) -> dict[str, float]:
    """Bandit-level view of a policy: distance to the target, entropy, concentration, modes kept."""
    return {
        "bandit/tv_to_target": float(tv_distance(probs, target)),
        "bandit/entropy": float(entropy(probs)),
        "bandit/max_prob": float(probs.max()),
        "bandit/modes_kept": float(modes.kept(probs)),
    }


def train_one(
    config: BanditConfig,
    spec: str,
    advantages: torch.Tensor,  # [K]
    target: torch.Tensor,  # [K]
    modes: Modes,
    callback: Callable[[BanditProgress], None] | None = None,
    callback_every: int = 50,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BanditRun:
    """Train one objective on the bandit; every `log_every` steps a metrics row goes to `on_row`."""
    name, objective = objective_config(config, spec)
    entropy_mode = OBJECTIVES.get(name).needs_for(objective).entropy
    tag = label(spec, config.lad.divergence)
    k = config.num_arms
    generator = torch.Generator().manual_seed(config.seed)
    logits = torch.zeros(k, requires_grad=True)  # [K] uniform start
    log_z = torch.zeros(1, requires_grad=True)  # FlowRL's log partition (a scalar: one prompt)
    optimizer = Adam([logits, log_z] if name == "flowrl" else [logits], lr=config.lr)
    adv = advantages.float()  # [K]
    old_logprobs = torch.log_softmax(logits.detach(), 0)  # [K] pi_old = the uniform start
    run = BanditRun(label=tag, probs=old_logprobs.exp())

    def report(step: int, extra: dict[str, float]) -> None:
        probs = torch.softmax(logits.detach(), 0)  # [K]
        row = {"step": step, **state_metrics(probs, target, modes), **extra}
        if step % config.log_every == 0 or step == config.steps:
            run.history.append(row)
            if on_row is not None:
                on_row({"objective": tag, **row})
        if callback is not None and (step % callback_every == 0 or step == config.steps):
            callback(BanditProgress(tag, step, config.steps, probs, row))

    report(0, {})
    mask = torch.ones(k if config.mode == "exact" else config.group_size, 1, dtype=torch.bool)  # [N, 1]: T = 1
    for step in range(1, config.steps + 1):
        if config.refresh_every is not None and (step - 1) % config.refresh_every == 0:
            old_logprobs = torch.log_softmax(logits.detach(), 0)  # pi_old <- pi_theta
        logprobs = torch.log_softmax(logits, 0)  # [K]
        arm_logprobs, arm_old, arm_adv, arm_weights = step_inputs(config, logprobs, old_logprobs, adv, generator)
        log_now = step % config.log_every == 0 or step == config.steps or (callback and step % callback_every == 0)
        loss, metrics = objective_loss(
            name,
            objective,
            arm_logprobs,
            arm_old,
            arm_adv,
            mask,
            log_z=log_z.expand(arm_adv.numel()),  # [N] (FlowRL only)
            entropy=arm_entropy(logprobs, arm_adv.numel(), entropy_mode),  # [N, 1] (EntAdv only)
            weights=arm_weights,
            with_metrics=log_now,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log_now:
            report(step, {key: float(value) for key, value in metrics.items()})
    run.probs = torch.softmax(logits.detach(), 0)
    run.summary = summarise(run.probs, target, modes)
    return run


def train_seeded(config: BanditConfig, spec: str, *args: Any) -> BanditRun:
    """`train_one` with torch's default generator seeded from config.seed (ClipCov's random pick draws from it,
    as in the trainer), and the caller's generator state restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return train_one(config, spec, *args)


def step_inputs(config: BanditConfig, logprobs, old_logprobs, advantages, generator):
    """The arms as one-token sequences: (logprobs [N, 1], old_logprobs [N, 1], advantages [N], weights [N] or None).

    'exact': all K arms, weighted by pi_old (the expectation); 'sampled': G arms drawn from pi_old, with the
    configured estimator applied to the group's advantages.
    """
    if config.mode == "exact":
        return logprobs[:, None], old_logprobs[:, None], advantages, old_logprobs.exp()
    arms = torch.multinomial(old_logprobs.exp(), config.group_size, replacement=True, generator=generator)  # [G]
    group_advantages = compute_advantages(config.estimator, advantages[arms][None, :])[0]  # [G]
    return logprobs[arms, None], old_logprobs[arms, None], group_advantages, None


def arm_entropy(logprobs: torch.Tensor, rows: int, mode: str) -> torch.Tensor:
    """The one-token case of a policy's token entropy: H(pi) = -sum_k pi_k log pi_k over the K arms. [rows, 1]

    Every response is one token drawn in the same state, so every row gets the same H (EntAdv's bonus
    min(alpha H, |A_k| / kappa) then differs between arms only through the cap). "detached" carries no gradient.
    """
    value = -(logprobs.exp() * logprobs).sum()  # [] from log pi [K]; pi_k > 0 under a softmax
    return (value.detach() if mode != "grad" else value).expand(rows, 1)  # [rows, 1]


def summarise(probs: torch.Tensor, target: torch.Tensor, modes: Modes) -> dict[str, Any]:
    return {
        **state_metrics(probs, target, modes),
        "argmax_arm": int(probs.argmax()),
        "mode_peaks": modes.peaks,
        "mode_mass": modes.mass(probs).tolist(),
        "target_mode_mass": modes.target_mass.tolist(),
        "probs": probs.tolist(),
    }


def bandit_target(config: BanditConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages [K], target softmax(A/eta) [K]) of a config: LAD's advantage-induced distribution P_A."""
    advantages = make_advantages(config.shape, config.num_arms, config.table)  # [K]
    return advantages, torch.softmax(config.inverse_temperature * advantages, 0).float()


def run_bandit(
    config: BanditConfig,
    callback: Callable[[BanditProgress], None] | None = None,
    callback_every: int = 50,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> BanditResult:
    """Train every objective in `config.objectives` on the same bandit, one after the other."""
    advantages, target = bandit_target(config)  # [K], [K]
    modes = find_modes(target)
    runs = [
        train_seeded(config, spec, advantages, target, modes, callback, callback_every, on_row)
        for spec in config.objectives
    ]
    return BanditResult(config, advantages.float(), target, modes, runs)


def config_dict(config: BanditConfig) -> dict[str, Any]:
    return asdict(config)


def format_summary(result: BanditResult, heading: str = "") -> str:
    """One line per objective: TV to target, entropy, max arm probability, modes kept."""
    total = len(result.modes.peaks)
    lines = []
    for run in result.runs:
        s = run.summary
        lines.append(
            f"{heading}{run.label:>8}: TV to target {s['bandit/tv_to_target']:.4f}, entropy {s['bandit/entropy']:.3f},"
            f" max arm prob {s['bandit/max_prob']:.4f}, modes kept {s['bandit/modes_kept']:.0f}/{total}"
        )
    return "\n".join(lines)
