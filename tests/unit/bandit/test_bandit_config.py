"""BanditConfig: the objectives' own config sections with the bandit's defaults, presets, overrides, old keys."""

import math

import pytest
import torch
import yaml

from ladkit.bandit.config import BanditConfig, resolve_bandit
from ladkit.bandit.experiment import objective_config, run_bandit
from ladkit.config import build, to_dict
from ladkit.errors import LadkitError
from ladkit.objectives import FlowRLConfig, GRPOConfig, LADConfig


def test_defaults_are_the_papers_bandit_in_the_objective_sections():
    config = BanditConfig()
    assert (config.lad.divergence, config.lad.inv_eta, config.inverse_temperature) == ("js", 2.0, 2.0)
    assert (config.grpo.epsilon_low, config.grpo.epsilon_high, config.grpo.beta) == (1.0, math.inf, 0.0)
    assert config.flowrl is None


def test_each_entry_gets_its_objectives_config():
    config = resolve_bandit(None, [], {"inv_eta": 3.0, "grpo_clip": 0.3})
    assert objective_config(config, "lad:kl") == ("lad", LADConfig(divergence="kl", inv_eta=3.0))
    assert objective_config(config, "grpo") == ("grpo", GRPOConfig(epsilon_low=0.3, epsilon_high=0.3))
    # FlowRL unset aims at LAD's target: beta = 1/eta, no importance clip
    assert objective_config(config, "flowrl") == ("flowrl", FlowRLConfig(beta=3.0, importance_clip=None))
    given = resolve_bandit(None, ["flowrl.beta=5"], {})
    assert objective_config(given, "flowrl") == ("flowrl", FlowRLConfig(beta=5.0))  # the section as given
    # a clip above 1 keeps the lower bound at 0 (1 - 1): ratios are positive, so it never binds
    assert resolve_bandit(None, [], {"grpo_clip": 3.0}).grpo == GRPOConfig(epsilon_low=1.0, epsilon_high=3.0)


def test_a_partial_section_keeps_the_bandits_defaults():
    config = resolve_bandit(None, ["lad.divergence=kl", "grpo.beta=0.1"], {})
    assert (config.lad.divergence, config.lad.inv_eta) == ("kl", 2.0)  # not LADConfig's 4
    assert (config.grpo.epsilon_low, config.grpo.epsilon_high, config.grpo.beta) == (1.0, math.inf, 0.1)


def test_presets_and_order_preset_then_set_then_flags(tmp_path):
    assert resolve_bandit("paper", [], {}) == BanditConfig()
    assert resolve_bandit("refresh", [], {}).refresh_every == 1
    path = tmp_path / "mine.yaml"
    path.write_text("steps: 30\nlad: {inv_eta: 4.0}\nobjectives: [lad, flowrl]\n")
    config = resolve_bandit(str(path), ["steps=40", "lad.divergence=tv"], {"steps": 50, "divergence": "hd"})
    assert (config.steps, config.lad.divergence, config.lad.inv_eta, config.objectives) == (
        50, "hd", 4.0, ["lad", "flowrl"],
    )  # fmt: skip


def test_table_shape_takes_k_from_the_table_unless_given():
    assert resolve_bandit(None, [], {"shape": "table", "table": "0.1,0.5,0.2"}).num_arms == 3
    with pytest.raises(LadkitError, match="advantage table has 3 values but num_arms is 4"):
        run_bandit(resolve_bandit(None, [], {"shape": "table", "table": "0.1,0.5,0.2", "num_arms": 4}))


def test_yaml_round_trip_keeps_the_open_clip():
    config = resolve_bandit(None, ["lad.eta=0.5", "flowrl.importance_clip=null"], {"objectives": ["lad", "flowrl"]})
    text = yaml.safe_dump(to_dict(config), sort_keys=False)  # inf is '.inf' in YAML
    assert build(BanditConfig, yaml.safe_load(text)) == config


def test_a_bandit_run_folders_config_is_a_config(tmp_path):
    from ladkit.bandit.session import run_and_record

    config = resolve_bandit(None, ["steps=5", "num_arms=4"], {"objectives": ["grpo", "lad:kl"]})
    _, path = run_and_record(config, tmp_path / "run")
    assert "epsilon_high: .inf" in (path / "config.yaml").read_text()
    assert resolve_bandit(str(path / "config.yaml"), [], {}) == config  # `ladkit bandit --config RUN/config.yaml`


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["divergence=kl"], "config key divergence is now lad.divergence; rename it"),
        (["inv_eta=4"], "config key inv_eta is now lad.inv_eta"),
        (["grpo_clip=0.2"], "config key grpo_clip is now grpo.epsilon_high (and grpo.epsilon_low"),
        (["flowrl_beta=3"], "config key flowrl_beta is now flowrl.beta"),
        (["lad.inv_eta=-1"], "lad: inv_eta (1/eta) must be > 0"),
        (["grpo.epsilon_lo=0.1"], "unknown config key grpo.epsilon_lo in grpo; valid keys: epsilon_low"),
        (["steps=many"], "steps must be an integer, got 'many'"),
        (["lad=3"], "config section lad must be a mapping, got int"),
    ],
)
def test_bad_keys_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(LadkitError) as err:
        resolve_bandit(None, overrides, {})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_unknown_preset_lists_the_bandit_presets():
    with pytest.raises(LadkitError, match="unknown preset 'default'; presets: paper, refresh; or give a YAML path"):
        resolve_bandit("default", [], {})  # train's presets are not the bandit's


def test_numbers_match_the_flat_config_they_replace():
    # Recorded with the flat BanditConfig (divergence/eta/inv_eta/grpo_clip fields) before the sections, same
    # settings: 8 arms, 60 steps, every objective. A change here means the bandit's numbers moved.
    config = resolve_bandit(None, [], {"num_arms": 8, "steps": 60, "objectives": ["lad", "grpo", "flowrl"]})
    probs = {run.label: run.probs for run in run_bandit(config).runs}
    torch.testing.assert_close(probs["lad:js"], RECORDED["lad:js"], rtol=0, atol=1e-6)
    torch.testing.assert_close(probs["grpo"], RECORDED["grpo"], rtol=0, atol=1e-6)
    torch.testing.assert_close(probs["flowrl"], RECORDED["flowrl"], rtol=0, atol=1e-6)


RECORDED = {  # final policies over the 8 arms, from the flat config at commit 6c494ef
    "lad:js": torch.tensor([0.0959393, 0.1736918, 0.0959394, 0.0959406, 0.1744742, 0.0959491, 0.1721273, 0.0959381]),
    "grpo": torch.tensor([0.0953359, 0.1746688, 0.0953353, 0.0952962, 0.1750178, 0.0948624, 0.1741111, 0.0953726]),
    "flowrl": torch.tensor([0.0959362, 0.1736547, 0.0959358, 0.0959136, 0.1742322, 0.0956607, 0.1727099, 0.095957]),
}
