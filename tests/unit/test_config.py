"""Config plumbing: nested build with key/type checks, --set overrides, YAML loading, round trips."""

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from ladkit.config import (
    apply_overrides,
    build,
    load_preset,
    load_yaml,
    merge,
    move_keys,
    nest_flags,
    preset_names,
    to_dict,
)
from ladkit.errors import LadkitError, UnknownNameError
from ladkit.objectives import LADConfig


@dataclass
class Inner:
    rate: float = 0.1
    name: str = "a"


@dataclass
class Outer:
    count: int = 1
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    lad: LADConfig = field(default_factory=LADConfig)
    tags: list[str] = field(default_factory=list)
    maybe: float | None = None


def test_build_nested_and_round_trip():
    config = build(Outer, {"count": 3, "inner": {"rate": 2}, "lad": {"divergence": "kl"}, "tags": ["x"]})
    assert config.count == 3 and config.inner.rate == 2.0 and isinstance(config.inner.rate, float)
    assert config.lad.divergence == "kl" and config.tags == ["x"]
    assert build(Outer, to_dict(config)) == config


def test_overrides_parse_yaml_values():
    data = apply_overrides(
        {"inner": {"name": "b"}}, ["count=4", "inner.rate=1e-3", "tags=[p, q]", "maybe=null", "flag=true"]
    )
    config = build(Outer, data)
    assert (config.count, config.inner.rate, config.inner.name, config.tags) == (4, 0.001, "b", ["p", "q"])
    assert config.maybe is None and config.flag is True


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cuont": 1}, "unknown config key cuont; valid keys: count, flag, inner, lad, tags, maybe"),
        ({"inner": {"rat": 1}}, "unknown config key inner.rat in inner; valid keys: rate, name"),
        ({"count": 1.5}, "count must be an integer, got 1.5"),
        ({"count": True}, "count must be an integer, got True"),
        ({"flag": "yes"}, "flag must be true or false, got 'yes'"),
        ({"inner": {"rate": "fast"}}, "inner.rate must be a number, got 'fast'"),
        ({"inner": 3}, "config section inner must be a mapping, got int"),
        ({"lad": {"divergence": "zz"}}, "lad: unknown divergence 'zz'; valid divergences"),
        ({"lad": {"eta": -1.0}}, "lad: eta must be > 0"),
        ({"tags": 3}, "tags must be a list, got 3"),
    ],
)
def test_bad_config_names_the_key(data, message):
    with pytest.raises(LadkitError) as err:
        build(Outer, data)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_bad_override_syntax():
    with pytest.raises(LadkitError, match="not key=value"):
        apply_overrides({}, ["count"])
    with pytest.raises(LadkitError, match="inner is a value, not a section"):
        apply_overrides({"inner": 1}, ["inner.rate=2"])


def test_merge_is_recursive_and_does_not_mutate():
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    merged = merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}, "d": 3} and base["a"]["b"] == 1


def test_load_yaml_errors(tmp_path):
    with pytest.raises(LadkitError, match="does not exist"):
        load_yaml(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(LadkitError, match="not valid YAML at line"):
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(LadkitError, match="must hold a mapping"):
        load_yaml(tmp_path / "list.yaml")
    (tmp_path / "exec.yaml").write_text("a: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(LadkitError, match="not valid YAML"):  # safe_load refuses to construct objects
        load_yaml(tmp_path / "exec.yaml")


def test_vllm_lora_sync_is_checked():
    from ladkit.training.config import RolloutConfig

    assert RolloutConfig().vllm_lora_sync == "adapter" and RolloutConfig(vllm_lora_sync="merged")
    with pytest.raises(LadkitError, match=r"^rollout.vllm_lora_sync must be 'adapter' or 'merged', got 'both'$"):
        RolloutConfig(vllm_lora_sync="both")


@dataclass
class Section:
    rate: float = 0.1
    name: str = "a"


@dataclass
class WithMoved:
    """A config whose flat keys `rate` and `inner` (once a value) moved into sections."""

    inner: Section = field(default_factory=lambda: Section(rate=0.5))  # a field default unlike the class's
    other: Section = field(default_factory=Section)
    MOVED: ClassVar[dict[str, str]] = {"rate": "inner.rate", "inner": "inner.name"}


def test_a_partial_section_starts_from_the_fields_default():
    assert build(WithMoved, {"inner": {"name": "b"}}).inner == Section(0.5, "b")  # rate from the field, not 0.1
    assert build(WithMoved, {"other": {"name": "b"}}).other == Section(0.1, "b")
    assert build(WithMoved, {}).inner == Section(0.5, "a")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate": 2.0}, "config key rate is now inner.rate; rename it in the YAML file or --set"),
        ({"inner": "b"}, "config key inner is now inner.name; rename it"),  # a value where a section stands
    ],
)
def test_a_moved_key_names_its_new_place(data, message):
    with pytest.raises(LadkitError) as err:
        build(WithMoved, data)
    assert str(err.value).startswith(message)


def test_move_keys_puts_old_keys_in_their_sections_and_leaves_new_ones():
    moves = {"rate": "inner.rate", "inner": "inner.name"}
    assert move_keys({"rate": 2.0, "inner": "b"}, moves) == {"inner": {"rate": 2.0, "name": "b"}}
    new = {"inner": {"rate": 3.0, "name": "c"}}
    assert move_keys(new, moves) == new
    # the new place already set wins over an old key left beside it; the input is not changed
    data = {"rate": 2.0, "inner": {"rate": 3.0}}
    assert move_keys(data, moves) == {"inner": {"rate": 3.0}} and data["rate"] == 2.0


def test_nest_flags_drops_unset_flags():
    assert nest_flags({"a.b": 1, "a.c": None, "d": "x", "e.f.g": False}) == {
        "a": {"b": 1},
        "d": "x",
        "e": {"f": {"g": False}},
    }


def test_an_unknown_name_in_a_section_stays_an_unknown_name_error():
    with pytest.raises(UnknownNameError, match="^lad: unknown divergence 'zz'"):
        build(Outer, {"lad": {"divergence": "zz"}})


def test_presets_by_name_by_folder_and_by_path(tmp_path):
    assert {"default", "gsm8k-qwen0.5b", "paper-math"} <= set(preset_names())
    assert preset_names("bandit") == ["paper", "refresh"]
    assert load_preset("refresh", "bandit")["refresh_every"] == 1
    (tmp_path / "mine.yaml").write_text("steps: 3\n")
    assert load_preset(str(tmp_path / "mine.yaml"), "bandit") == {"steps": 3}
    with pytest.raises(LadkitError, match="^unknown preset 'paper'; presets: .*default"):
        load_preset("paper")  # the bandit's presets are not train's


@pytest.mark.parametrize("name", preset_names())
def test_every_training_preset_resolves(name):
    from ladkit.training.resolve import resolve

    config = resolve(name, [], {})  # a key of an older layout (task.preset, ...) would fail here, naming the new one
    assert config.steps >= 1


@pytest.mark.parametrize("name", preset_names("bandit"))
def test_every_bandit_preset_resolves(name):
    from ladkit.bandit.config import BanditConfig, resolve_bandit

    assert isinstance(resolve_bandit(name, [], {}), BanditConfig)
