"""verl's registered policy loss "lad" equals ladkit's LAD on identical float64 tensors, under each of verl's loss
aggregation modes (values and gradients), and refuses what it cannot honour.

Skipped unless verl imports. verl 0.9.1 cannot go into the project venv (it pins transformers < 5.11: pip would
replace 5.19 with 5.10.4); tests/unit/objectives/test_verl_parity.py's docstring shows a throwaway venv that reuses
the project's packages, in which this file runs:  /tmp/verl-env/bin/python -m pytest -q tests/unit/integrations
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos", reason="verl is not importable (see the docstring)")

from ladkit.errors import LadkitError  # noqa: E402
from ladkit.integrations import verl as integration  # noqa: E402  (registers "lad")
from ladkit.objectives import LADConfig, aggregate, lad_loss  # noqa: E402

F64 = torch.float64
N, T = 7, 9


def _batch(seed: int):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.arange(T)[None, :] < torch.randint(1, T + 1, (N,), generator=gen)[:, None]  # [N, T] ragged
    old = -3.0 * torch.rand(N, T, generator=gen, dtype=F64)  # [N, T]
    logprobs = old + 0.2 * torch.randn(N, T, generator=gen, dtype=F64)  # [N, T]
    advantages = torch.randn(N, generator=gen, dtype=F64)  # [N]
    return logprobs, old, advantages, mask


def _verl(logprobs, old, advantages, mask, mode, lad, batch_info=None):
    """The registered function, called with verl's keywords (workers/utils/losses.py), LAD's settings from env."""
    leaf = logprobs.clone().requires_grad_()
    token_advantages = advantages[:, None].expand(N, T).clone()  # [N, T] verl broadcasts outcome advantages
    config = SimpleNamespace(global_batch_info=batch_info or {})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(integration.ENVIRONMENT, lad)
        loss, metrics = core_algos.get_policy_loss_fn("lad")(
            old_log_prob=old,
            log_prob=leaf,
            advantages=token_advantages,
            response_mask=mask,
            loss_agg_mode=mode,
            config=config,
            rollout_is_weights=None,
        )
    return loss.detach(), torch.autograd.grad(loss, leaf)[0], metrics


def _ladkit(logprobs, old, advantages, mask, config, mode="grpo", **kwargs):
    leaf = logprobs.clone().requires_grad_()
    loss = aggregate(lad_loss(leaf, old, advantages, mask, config), mask, mode, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, leaf)[0]


def _close(got, want, rtol=0.0):
    # verl's seq-mean-token-mean divides by (tokens + 1e-8): a relative 1e-8 / length from ladkit's exact mean
    assert abs(float(got[0] - want[0])) <= 1e-12 + rtol * abs(float(want[0]))
    assert float((got[1] - want[1]).abs().max()) <= 1e-12 + rtol * float(want[1].abs().max())
    assert float(want[1].abs().max()) > 1e-3


# verl mode -> (ladkit aggregation, its extra arguments, relative tolerance)
TOKEN_MODES = {
    "token-mean": ("bnpo", {}, 0.0),
    "seq-mean-token-mean": ("grpo", {}, 1e-7),
    "seq-mean-token-sum-norm": ("dr_grpo", {"max_completion_length": T}, 0.0),  # verl's horizon: the padded T
    "seq-mean-token-sum": ("dr_grpo", {"max_completion_length": 1}, 0.0),  # sum over tokens / N
}


@pytest.mark.parametrize("mode", list(TOKEN_MODES))
@pytest.mark.parametrize("divergence", ["js", "kl", "hd"])
def test_token_level_lad_equals_ladkit_under_each_aggregation(mode, divergence):
    batch = _batch(seed=len(mode) + len(divergence))
    config = LADConfig(divergence=divergence, level="token", inv_eta=3.0)
    aggregation, extra, rtol = TOKEN_MODES[mode]
    got = _verl(*batch, mode, f"divergence={divergence},level=token,inv_eta=3")
    _close(got[:2], _ladkit(*batch, config, aggregation, **extra), rtol)
    assert got[2]["lad/weight_mean"] == pytest.approx(float(lad_loss(*batch, config).metrics["lad/weight_mean"]))


def test_sequence_level_lad_is_ladkits_mean_over_responses():
    batch = _batch(seed=3)
    config = LADConfig()  # js, 1/eta = 4, sequence level, centred: the defaults of an empty LADKIT_LAD
    _close(_verl(*batch, "seq-mean-token-mean", "")[:2], _ladkit(*batch, config), rtol=1e-7)
    # token-mean weights each response by its length: ladkit's weighted mean with weights = lengths
    lengths = batch[3].sum(-1).to(F64)  # [N]
    _close(_verl(*batch, "token-mean", "")[:2], _ladkit(*batch, config, weights=lengths))


def test_data_parallel_batch_info_is_verls_own_normalisation():
    # dp_size 2 and 50 tokens in the global batch: verl takes sum / 50 * 2 on each rank, i.e. ladkit's dapo over
    # this rank's share of the global token count (25)
    batch = _batch(seed=4)
    config = LADConfig(divergence="tv", level="token", eta=0.5)
    got = _verl(*batch, "token-mean", "divergence=tv,level=token,eta=0.5", {"dp_size": 2, "batch_num_tokens": 50})
    _close(got[:2], _ladkit(*batch, config, "dapo", num_tokens=25.0))


def test_sum_modes_with_sequence_level_lad_are_errors():
    with pytest.raises(LadkitError, match="loss_agg_mode to seq-mean-token-mean or token-mean"):
        _verl(*_batch(seed=5), "seq-mean-token-sum", "")


def test_token_varying_advantages_are_an_error():
    logprobs, old, advantages, mask = _batch(seed=6)
    gae = torch.randn(N, T, dtype=F64)  # [N, T]: a critic's per-token advantages
    with pytest.raises(LadkitError, match="adv_estimator=grpo"):
        integration.compute_policy_loss_lad(old, logprobs, gae, mask, lad=LADConfig())


def test_lad_settings_from_the_environment():
    config = integration.lad_config_from("divergence=kl, inv_eta=2, centered=false, level=token, aggregation=bnpo")
    assert (config.divergence, config.inverse_temperature, config.centered, config.level) == ("kl", 2.0, False, "token")
    with pytest.raises(LadkitError, match="LAD has no option 'temperature'"):
        integration.lad_config_from("temperature=2")
    with pytest.raises(LadkitError, match="centered must be true or false"):
        integration.lad_config_from("centered=yes")


def test_other_verl_versions_are_refused_by_name():
    integration.check_verl_version("0.9.4")
    with pytest.raises(LadkitError, match=r"supports verl 0\.9\.x .*verl 0\.10\.0 is installed"):
        integration.check_verl_version("0.10.0")


def test_the_maths_recipe_composes_in_verls_hydra_config():
    # examples/verl_lad_math.sh with DRY_RUN=1: verl's own Hydra composition (every override must name an existing
    # key, or be a +new one), printed, nothing trained
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "DRY_RUN": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "examples/verl_lad_math.sh"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load(done.stdout)
    actor = config["actor_rollout_ref"]["actor"]
    assert actor["policy_loss"]["loss_mode"] == "lad" and actor["loss_agg_mode"] == "seq-mean-token-mean"
    assert config["actor_rollout_ref"]["rollout"]["n"] == 8 and config["data"]["max_response_length"] == 8192
    lad = integration.lad_config_from(config["ray_kwargs"]["ray_init"]["runtime_env"]["env_vars"]["LADKIT_LAD"])
    assert (lad.divergence, lad.inverse_temperature, lad.level) == ("js", 4.0, "sequence")
