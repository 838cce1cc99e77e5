"""ClipCov and KLCov equal verl's "clip_cov" / "kl_cov" policy losses on identical tensors: the scalar loss
under each matching aggregation and its gradient (which shows exactly which tokens were dropped or
penalised), including ClipCov's random pick (our seeded Generator vs verl under torch.manual_seed).

Skipped unless `verl.trainer.ppo.core_algos` imports. verl 0.9.1 cannot go into the project venv (it pins
transformers < 5.11 and pulls ray); a throwaway venv that reuses the project's torch runs it:

    python3.11 -m venv /tmp/verl-env
    echo 'import site; site.addsitedir("'$PWD'/.venv/lib/python3.11/site-packages")' \
        > /tmp/verl-env/lib/python3.11/site-packages/ladkit-venv.pth
    /tmp/verl-env/bin/pip install --no-deps verl==0.9.1 omegaconf antlr4-python3-runtime==4.9.3 \
        hydra-core codetiming ray tensordict msgpack pyvers orjson
    /tmp/verl-env/bin/python -m pytest -q tests/unit/objectives/test_verl_parity.py
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ladkit.objectives import ClipCovConfig, KLCovConfig, aggregate, clip_cov_loss, kl_cov_loss

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos", reason="verl is not importable (see the docstring)")

F64 = torch.float64
# verl's loss_agg_mode -> ours (one micro-batch, one rank: token-mean is both bnpo and dapo)
MODES = [
    ("token-mean", "bnpo"),
    ("token-mean", "dapo"),
    ("seq-mean-token-mean", "grpo"),
    ("seq-mean-token-sum-norm", "dr_grpo"),
]


def _batch(seed: int, n: int = 6, t: int = 7):
    """Ragged batch (every row keeps >= 1 token) with log pi spread enough that many C_t land in (lb, ub)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (n,), generator=g)  # [N]
    mask = torch.arange(t)[None, :] < lengths[:, None]  # [N, T]
    old = -3 * torch.rand(n, t, generator=g, dtype=F64)  # [N, T]
    logprobs = old + 0.4 * torch.randn(n, t, generator=g, dtype=F64)  # ratios around 1, some clipped
    advantages = 1.5 * torch.randn(n, generator=g, dtype=F64)  # [N]
    return logprobs, old, advantages, mask


def _verl_config(**policy_loss) -> SimpleNamespace:
    # what verl's functions read: actor.clip_ratio(_low/_high), actor.policy_loss.*, actor.global_batch_info
    return SimpleNamespace(
        clip_ratio=policy_loss.pop("clip_ratio", 0.2),
        clip_ratio_low=policy_loss.pop("clip_ratio_low", None),
        clip_ratio_high=policy_loss.pop("clip_ratio_high", None),
        policy_loss=SimpleNamespace(**policy_loss),
        global_batch_info={},
    )


def _verl(fn, logprobs, old, advantages, mask, mode, config, seed=None):
    lp = logprobs.clone().requires_grad_(True)
    if seed is not None:
        torch.manual_seed(seed)  # verl draws ClipCov's permutation from the default generator
    token_adv = advantages[:, None].expand_as(lp).clone()  # [N, T] verl takes token-level advantages
    loss, _ = fn(old, lp, token_adv, mask.to(F64), loss_agg_mode=mode, config=config)
    return loss.detach(), torch.autograd.grad(loss, lp)[0]


def _ours(fn, logprobs, old, advantages, mask, mode, config, **kwargs):
    lp = logprobs.clone().requires_grad_(True)
    loss = aggregate(fn(lp, old, advantages, mask, config, **kwargs), mask, mode)
    return loss.detach(), torch.autograd.grad(loss, lp)[0]


@pytest.mark.parametrize(("verl_mode", "mode"), MODES)
@pytest.mark.parametrize(
    "settings",
    [
        {"clip_ratio": 2e-4, "lb": 1.0, "ub": 5.0, "eps": 1.0},  # the authors' defaults: one token dropped
        {"clip_ratio": 0.3, "lb": 0.05, "ub": 5.0, "eps": 0.2},  # many candidates, several dropped at random
        {"clip_ratio": 1.0, "lb": -5.0, "ub": 5.0, "eps": 0.2},  # every unclipped token is a candidate
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_cov_equals_verl(verl_mode, mode, settings, seed):
    batch = _batch(seed)
    verl_config = _verl_config(
        clip_ratio=settings["eps"],
        clip_cov_ratio=settings["clip_ratio"],
        clip_cov_lb=settings["lb"],
        clip_cov_ub=settings["ub"],
    )
    ours = ClipCovConfig(
        clip_ratio=settings["clip_ratio"],
        covariance_low=settings["lb"],
        covariance_high=settings["ub"],
        epsilon_low=settings["eps"],
        epsilon_high=settings["eps"],
        aggregation=mode,
    )
    expected = _verl(core_algos.compute_policy_loss_clip_cov, *batch, verl_mode, verl_config, seed=100 + seed)
    got = _ours(clip_cov_loss, *batch, mode, ours, generator=torch.Generator().manual_seed(100 + seed))
    torch.testing.assert_close(got[0], expected[0], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=1e-9)


def test_clip_cov_parity_batches_drop_tokens():
    # The comparison above is only worth something if tokens really get dropped in those batches.
    for seed in range(3):
        config = ClipCovConfig(clip_ratio=0.3, covariance_low=0.05, epsilon_low=0.2, epsilon_high=0.2)
        output = clip_cov_loss(*_batch(seed), config, generator=torch.Generator().manual_seed(seed))
        assert output.metrics["clip_cov/detached_frac"].item() > 0.05


@pytest.mark.parametrize(("verl_mode", "mode"), MODES)
@pytest.mark.parametrize(("kl_ratio", "kl_coef"), [(2e-4, 1.0), (0.2, 1.0), (0.5, 0.3)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kl_cov_equals_verl(verl_mode, mode, kl_ratio, kl_coef, seed):
    batch = _batch(seed)
    verl_config = _verl_config(kl_cov_ratio=kl_ratio, ppo_kl_coef=kl_coef)
    expected = _verl(core_algos.compute_policy_loss_kl_cov, *batch, verl_mode, verl_config)
    got = _ours(kl_cov_loss, *batch, mode, KLCovConfig(kl_ratio=kl_ratio, kl_coef=kl_coef, aggregation=mode))
    torch.testing.assert_close(got[0], expected[0], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=1e-9)
