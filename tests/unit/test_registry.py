"""Registries by name and the errors bad input gets: one line, naming the field or listing the valid names."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.errors import LadkitError, UnknownNameError
from ladkit.objectives import (
    DIVERGENCES,
    OBJECTIVES,
    FlowRLConfig,
    GRPOConfig,
    LADConfig,
    make_config,
    objective_loss,
)
from ladkit.registry import Registry


def _message(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert "\n" not in message, message  # the contract: one line
    return message


# ---------------------------------------------------------------- unknown names


@pytest.mark.parametrize(
    ("registry", "valid"),
    [
        (DIVERGENCES, ["hd", "jf", "js", "kl", "rkl", "tv"]),
        (OBJECTIVES, ["clip_cov", "ent_adv", "flowrl", "grpo", "kl_cov", "lad"]),
    ],
)
def test_unknown_name_lists_every_valid_name(registry, valid):
    assert registry.names() == valid
    with pytest.raises(UnknownNameError) as info:
        registry.get("ppo")
    message = _message(info)
    assert "'ppo'" in message and ", ".join(valid) in message
    assert not message.startswith(('"', "'"))  # str() is the message, not KeyError's quoted repr
    assert isinstance(info.value, LadkitError) and isinstance(info.value, KeyError)


def test_unknown_divergence_in_lad_config():
    with pytest.raises(UnknownNameError) as info:
        LADConfig(divergence="chi2")
    assert "'chi2'" in _message(info) and "hd, jf, js, kl, rkl, tv" in _message(info)


def test_unknown_objective_in_make_config_and_objective_loss():
    with pytest.raises(UnknownNameError, match="clip_cov, ent_adv, flowrl, grpo, kl_cov, lad"):
        make_config("ppo")
    x = torch.zeros(1, 1)
    with pytest.raises(UnknownNameError, match="clip_cov, ent_adv, flowrl, grpo, kl_cov, lad"):
        objective_loss("ppo", None, x, x, torch.zeros(1), x.bool())


def test_registry_class_contract():
    registry: Registry[int] = Registry("widget")

    @registry.register("b_two")
    def two() -> int:
        return 2

    registry.add("a_one", 1)
    assert registry.get("a_one") == 1 and registry.get("b_two") is two
    assert list(registry) == ["a_one", "b_two"] and "a_one" in registry and "c" not in registry
    with pytest.raises(LadkitError, match="registered twice"):
        registry.add("a_one", 3)
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid widgets: a_one, b_two"):
        registry.get("c")


def test_error_messages_collapse_newlines():
    assert str(LadkitError("line one\n  line two")) == "line one line two"


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"eta": 0.0}, "eta"),
        ({"eta": -1.0}, "eta"),
        ({"eta": math.nan}, "eta"),
        ({"inv_eta": 0.0}, "inv_eta"),
        ({"inv_eta": -4.0}, "inv_eta"),
        ({"inv_eta": None}, "inv_eta"),
        ({"level": "tokens"}, "level"),
        ({"aggregation": "sum"}, "aggregation"),
        ({"log_ratio_clamp": 0.0}, "log_ratio_clamp"),
    ],
)
def test_lad_config_rejects_bad_values_naming_the_field(kwargs, field):
    with pytest.raises(LadkitError) as info:
        LADConfig(**kwargs)
    assert field in _message(info)


def test_lad_config_temperature():
    assert LADConfig().inverse_temperature == 4.0  # the paper's 1/eta for maths
    assert LADConfig(eta=0.5).inverse_temperature == 2.0  # eta wins over the default inv_eta
    assert LADConfig(eta=0.5, inv_eta=-1.0).inverse_temperature == 2.0  # inv_eta ignored when eta is given
    assert LADConfig().divergence == "js" and LADConfig().level == "sequence"


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (GRPOConfig, {"epsilon_low": -0.1}, "eps"),
        (GRPOConfig, {"epsilon_high": -0.1}, "eps"),
        (GRPOConfig, {"beta": -0.01}, "beta"),
        (GRPOConfig, {"aggregation": "token_mean"}, "aggregation"),
        (FlowRLConfig, {"beta": 0.0}, "beta"),
        (FlowRLConfig, {"importance_clip": 0.0}, "importance_clip"),
    ],
)
def test_baseline_configs_reject_bad_values(cls, kwargs, field):
    with pytest.raises(LadkitError) as info:
        cls(**kwargs)
    assert field in _message(info)


@pytest.mark.parametrize("name", ["lad", "grpo", "flowrl"])
def test_make_config_names_the_unknown_key(name):
    with pytest.raises(LadkitError) as info:
        make_config(name, temperature=1.0)
    message = _message(info)
    assert "'temperature'" in message and name in message
    assert "beta" in message or "divergence" in message  # and lists the valid options


def test_make_config_builds_the_dataclass():
    config = make_config("lad", divergence="hd", inv_eta=2.0)
    assert isinstance(config, LADConfig) and config.divergence == "hd" and config.inverse_temperature == 2.0
    assert isinstance(make_config("grpo", beta=0.04), GRPOConfig)


# ---------------------------------------------------------------- shapes and objective_loss


def test_shape_mismatches_are_errors():
    lp = torch.zeros(2, 3)
    with pytest.raises(LadkitError, match="old_logprobs"):
        OBJECTIVES.get("lad").loss(lp, torch.zeros(2, 4), torch.zeros(2), lp.bool())
    with pytest.raises(LadkitError, match="advantages"):
        OBJECTIVES.get("grpo").loss(lp, lp, torch.zeros(3), lp.bool())
    with pytest.raises(LadkitError, match=r"\[N, T\]"):
        OBJECTIVES.get("lad").loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2).bool())


def test_objective_loss_is_objective_plus_aggregate():
    # GRPO at ratio 1, A = [1, -1], dapo with a global count of 8 tokens: sum of -A over 2 + 1 real tokens
    # = -1 - 1 + 1 = -1, divided by 8 -> -0.125.
    lp = torch.zeros(2, 2, dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    loss, metrics = objective_loss(
        "grpo", GRPOConfig(aggregation="dapo"), lp, lp, torch.tensor([1.0, -1.0]), mask, num_tokens=8
    )
    assert loss.item() == pytest.approx(-0.125) and metrics["loss/value"].item() == pytest.approx(-0.125)
    assert OBJECTIVES.get("flowrl").needs_for(None).heads == ("log_z",)
    assert OBJECTIVES.get("lad").needs_for(None).heads == ()
