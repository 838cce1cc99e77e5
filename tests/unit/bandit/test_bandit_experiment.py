"""The bandit reproduces the paper's controlled check (docs/design.md 7) with the library's objectives."""

import pytest
import torch

from ladkit.bandit.config import BanditConfig, resolve_bandit
from ladkit.bandit.experiment import Adam, run_bandit
from ladkit.errors import LadkitError, UnknownNameError


@pytest.fixture(scope="module")
def default_result():
    return run_bandit(BanditConfig())  # 50 arms, trimodal, 4000 steps, exact, pi_old fixed, LAD-js + GRPO


def test_default_run_lad_recovers_target_and_keeps_modes(default_result):
    lad = default_result.runs[0]
    assert lad.label == "lad:js"
    assert lad.summary["bandit/tv_to_target"] <= 0.02
    assert len(default_result.modes.peaks) == 3
    mass = default_result.modes.mass(lad.probs)
    assert (mass >= 0.5 * default_result.modes.target_mass).all()


def test_default_run_grpo_collapses_on_one_arm(default_result):
    grpo = default_result.runs[1]
    assert grpo.summary["bandit/max_prob"] >= 0.95
    assert grpo.summary["argmax_arm"] == 24  # the tallest bump of the trimodal advantage
    assert grpo.summary["bandit/modes_kept"] == 1


def test_target_is_softmax_of_advantage_over_eta(default_result):
    expected = torch.softmax(2.0 * default_result.advantages, 0)  # default inv_eta = 2
    assert torch.allclose(default_result.target, expected, atol=1e-7)


def test_history_rows_are_logged_every_log_every_steps(default_result):
    steps = [row["step"] for row in default_result.runs[0].history]
    assert steps[:3] == [0, 20, 40] and steps[-1] == 4000
    assert len(steps) == 4000 // 20 + 1


def test_refreshing_pi_old_every_step_makes_lad_collapse():
    # pi_new ∝ pi_old exp(A/eta) applied again and again tends to a point mass on the best arm
    result = run_bandit(BanditConfig(objectives=["lad"], refresh_every=1))
    lad = result.runs[0]
    assert lad.summary["bandit/max_prob"] >= 0.95
    assert lad.summary["bandit/modes_kept"] == 1


@pytest.mark.parametrize("divergence", ["kl", "rkl", "jf", "hd"])
def test_smooth_divergences_also_reach_the_target(divergence):
    result = run_bandit(BanditConfig(objectives=[f"lad:{divergence}"], steps=3000))
    assert result.runs[0].summary["bandit/tv_to_target"] < 0.02


def test_flowrl_with_beta_one_over_eta_reaches_the_same_target():
    result = run_bandit(BanditConfig(objectives=["flowrl"], steps=3000))
    assert result.runs[0].summary["bandit/tv_to_target"] < 0.02


def test_grpo_clip_against_frozen_uniform_pi_old_stalls():
    # Against a frozen uniform pi_old a 0.2 clip zeroes every arm's gradient once its ratio leaves
    # [0.8, 1.2] (coupling through the softmax lets a few go a little past 1.2): training stops early,
    # every token counts as clipped, and the policy stays far from GRPO's unclipped one-arm collapse.
    clipped = {"objectives": ["grpo"], "num_arms": 10, "grpo_clip": 0.2}
    short = run_bandit(resolve_bandit(None, [], {**clipped, "steps": 500})).runs[0]
    long = run_bandit(resolve_bandit(None, [], {**clipped, "steps": 1000})).runs[0]
    assert torch.equal(short.probs, long.probs)
    assert long.history[-1]["grpo/clip_frac"] == 1.0
    assert long.summary["bandit/max_prob"] < 0.2  # uniform is 0.1


def test_sampled_mode_is_seeded_and_learns():
    config = BanditConfig(objectives=["lad"], mode="sampled", group_size=8, steps=1500, seed=3)
    first, second = run_bandit(config), run_bandit(config)
    assert torch.equal(first.runs[0].probs, second.runs[0].probs)
    other = run_bandit(BanditConfig(objectives=["lad"], mode="sampled", group_size=8, steps=1500, seed=4))
    assert not torch.equal(first.runs[0].probs, other.runs[0].probs)
    assert first.runs[0].summary["bandit/tv_to_target"] < 0.15  # uniform starts at 0.62


def test_callback_sees_progress():
    events = []
    run_bandit(BanditConfig(objectives=["grpo"], steps=100), callback=events.append, callback_every=25)
    assert [e.step for e in events] == [0, 25, 50, 75, 100]
    assert all(torch.isclose(e.probs.sum(), torch.tensor(1.0)) for e in events)


def test_adam_matches_torch_adam():
    torch.manual_seed(0)
    ours = torch.randn(6, requires_grad=True)
    theirs = ours.detach().clone().requires_grad_(True)
    opt_ours, opt_theirs = Adam([ours], lr=0.01), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(200):
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            (p.pow(3).sum() + (p * torch.arange(6.0)).sum()).backward()
            opt.step()
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"divergence": "foo"}, UnknownNameError, "valid divergences: hd, jf, js, kl, rkl, tv"),
        ({"objectives": ["lad:bar"]}, UnknownNameError, "unknown divergence 'bar'"),
        ({"objectives": ["ppo"]}, UnknownNameError, "unknown objective 'ppo'; valid objectives: "),
        ({"objectives": ["grpo:kl"]}, LadkitError, "only lad takes a divergence"),
        ({"objectives": ["lad", "lad:js"]}, LadkitError, "name lad:js twice"),
        ({"eta": 0.0}, LadkitError, "eta must be > 0"),
        ({"eta": None, "inv_eta": -1.0}, LadkitError, "inv_eta"),
        ({"num_arms": 1}, LadkitError, "num_arms"),
        ({"mode": "both"}, LadkitError, "mode must be"),
        ({"mode": "sampled", "group_size": 1}, LadkitError, "group_size"),
        ({"refresh_every": 0}, LadkitError, "refresh_every"),
        ({"steps": 0}, LadkitError, "steps must be >= 1"),
        ({"lr": -1.0}, LadkitError, "lr must be > 0"),
        ({"grpo_clip": 0.0}, LadkitError, "grpo_clip must be > 0"),
    ],
)
def test_bad_config_is_a_one_line_error(kwargs, error, message):
    with pytest.raises(error, match=message) as err:
        resolve_bandit(None, [], kwargs)  # the flags' names: divergence, eta and inv_eta are lad's
    assert "\n" not in str(err.value)
