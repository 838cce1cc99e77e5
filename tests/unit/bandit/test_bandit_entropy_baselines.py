"""ClipCov, KLCov and EntAdv on the bandit (one token per response): the entropy EntAdv sees is the arm
distribution's, the covariance is over the arms, and all three train to a finite policy."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.bandit.config import BanditConfig
from ladkit.bandit.experiment import arm_entropy, run_bandit


def _table_config(objective: str, steps: int, **overrides) -> BanditConfig:
    # K = 4 arms, the table [2, -0.2, 1, -1] standardised (mean 0; signs +, -, +, -), exact expectation, a row a step
    return BanditConfig(
        num_arms=4, shape="table", table="2,-0.2,1,-1", objectives=[objective], steps=steps, log_every=1, **overrides
    )


def test_arm_entropy_is_the_entropy_of_the_arm_distribution():
    # pi = [1/2, 1/4, 1/4]: H = 1/2 log 2 + 2 * 1/4 log 4 = 1.5 log 2, the same for every row
    logprobs = torch.tensor([0.5, 0.25, 0.25]).log().requires_grad_(True)
    detached = arm_entropy(logprobs, 5, "detached")
    assert detached.shape == (5, 1) and not detached.requires_grad
    torch.testing.assert_close(detached, torch.full((5, 1), 1.5 * math.log(2)))
    assert arm_entropy(logprobs, 2, "grad").requires_grad  # an objective asking for "grad" gets the gradient


def test_ent_adv_bonus_uses_the_arm_entropy_and_the_cap():
    # Step 1 sees the uniform start: H = log 4 and alpha H = 0.4 log 4 = 0.5545 for every arm. The standardised
    # advantages are about [1.356, -0.569, 0.481, -1.268], caps |A| / kappa (kappa 2) [0.678, 0.284, 0.240, 0.634]:
    # psi = [0.5545, 0.284, 0.240, 0.5545] (the cap binds on arms 1 and 2: capped_frac 1/2).
    result = run_bandit(_table_config("ent_adv", 1))
    row = result.runs[0].history[-1]
    caps = result.advantages.abs() / 2
    assert row["ent_adv/entropy"] == pytest.approx(math.log(4), rel=1e-6)
    assert row["ent_adv/bonus"] == pytest.approx(caps.clamp(max=0.4 * math.log(4)).mean().item(), rel=1e-6)
    assert row["ent_adv/capped_frac"] == pytest.approx(1 / 2)


def test_kl_cov_covariance_is_over_the_arms():
    # Step 1 (uniform policy): log pi is the same for every arm, so C = 0. Its exact-expectation gradient on
    # logit j is -(A_j - mean A) / K, and Adam's first step moves logit j by lr * sign(A_j - mean A).
    # Step 2: log pi_j - mean log pi = lr * s_j with s = sign(A) = [1, -1, 1, -1] (mean 0) and mean A = 0, so
    # C_j = A_j * lr * s_j = lr |A_j|: the covariance over arms is lr * mean |A|, and one arm of K = 4
    # (max(1, int(2e-4 * 4)) = 1) is penalised.
    lr = 0.1
    result = run_bandit(_table_config("kl_cov", 2, lr=lr))
    first, second = result.runs[0].history[1], result.runs[0].history[2]
    assert first["kl_cov/covariance"] == pytest.approx(0.0, abs=1e-7)
    assert second["kl_cov/covariance"] == pytest.approx(lr * result.advantages.abs().mean().item(), rel=1e-4)
    assert second["kl_cov/penalised_frac"] == pytest.approx(1 / 4)


@pytest.mark.parametrize("objective", ["clip_cov", "kl_cov", "ent_adv"])
def test_each_baseline_trains_the_trimodal_bandit(objective):
    # 300 steps on the paper's bandit: a finite policy that has moved toward the advantaged arms. With a PPO clip
    # against the frozen uniform pi_old arms would stop at ratio 1 + eps (EntAdv at GRPO's 0.2: E_pi[A] 0.22 at 300
    # steps, measured); the bandit turns the clip off as for GRPO.
    result = run_bandit(BanditConfig(objectives=[objective], steps=300, log_every=50))
    run = result.runs[0]
    assert torch.isfinite(run.probs).all() and run.probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert math.isinf(getattr(result.config, objective).__dict__.get("epsilon_high", math.inf))
    assert (run.probs * result.advantages).sum().item() > 0.5  # E_pi[A] rose from 0 (uniform, standardised A)
    assert all(math.isfinite(value) for row in run.history for value in row.values())


def test_clip_cov_pick_is_seeded_by_the_bandit_seed_and_leaves_torch_rng_alone():
    # ClipCov's random pick is the only randomness of an exact-mode run: the same seed gives the same policy,
    # another seed another one, and the caller's default generator is restored afterwards.
    def final_probs(seed: int) -> torch.Tensor:
        return run_bandit(BanditConfig(objectives=["clip_cov"], steps=400, log_every=50, seed=seed)).runs[0]

    state = torch.get_rng_state()
    first, again, other = final_probs(0), final_probs(0), final_probs(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert max(row.get("clip_cov/detached_frac", 0.0) for row in first.history) > 0  # arms were dropped
    assert torch.equal(first.probs, again.probs)
    assert not torch.equal(first.probs, other.probs)
