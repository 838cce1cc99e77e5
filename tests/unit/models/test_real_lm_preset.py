"""Which preset a model gets (ladkit.training.resolve): `default` for the built-in model, `real-lm` for any
other, its prompt style from the tokenizer's chat template, its `on_cpu` section on a CPU only, and whatever
the user gives (a preset, `--set`, a flag) winning over it."""

from __future__ import annotations

import pytest

from ladkit.config import build, preset_names, to_dict
from ladkit.training import resolve as resolution
from ladkit.training.config import TrainConfig


@pytest.fixture(autouse=True)
def on_a_cpu(monkeypatch):
    """Resolve as on a CPU machine (what on_cpu and the note depend on), whatever this machine has."""
    monkeypatch.setattr(resolution, "_device_type", lambda: "cpu")


def resolved(model: str | None, overrides=(), preset=None, **flags):
    notes: list[str] = []
    config = resolution.resolve(preset, list(overrides), {"model.name_or_path": model, **flags}, notes)
    return config, notes


def test_the_builtin_model_keeps_the_default_preset():
    config, notes = resolved(None)
    assert (config.preset, config.optim.lr, config.rollout.max_new_tokens, notes) == ("default", 5e-4, 16, [])


def test_another_model_gets_real_lm_with_chat_prompts(llama_bpe_dir):
    config, notes = resolved(str(llama_bpe_dir))
    assert (config.preset, config.task.prompt_style, config.task.name) == ("real-lm", "chat", "arithmetic")
    assert 1e-5 <= config.optim.lr <= 5e-5 and config.model.dtype == "auto"  # the range real LoRA runs use
    # on a CPU the on_cpu section applies: a first run of 10 steps x 4 prompts x 4 samples
    assert (config.steps, config.prompts_per_step, config.group_size, config.rollout.max_new_tokens) == (10, 4, 4, 128)
    assert notes == [
        "using preset real-lm for a model that is not builtin: chat prompts, task arithmetic, LoRA lr 2e-05, up to "
        "128 new tokens, dtype auto; on a CPU, a small first run of 10 steps x 4 prompts x 4 samples (any --config, "
        "--set or flag overrides these)"
    ]
    assert to_dict(config)["preset"] == "real-lm"  # recorded in the run's config.yaml


def test_a_tokenizer_without_a_chat_template_gets_plain_text(llama_char_dir):
    config, notes = resolved(str(llama_char_dir))
    assert config.task.prompt_style == "compact" and "plain-text prompts (no chat template)" in notes[0]


def test_what_the_user_gives_wins(llama_bpe_dir, llama_char_dir):
    config, notes = resolved(
        str(llama_bpe_dir), ["steps=3", "optim.lr=1e-4", "task.prompt_style=compact"], group_size=8
    )
    assert (config.preset, config.steps, config.optim.lr, config.group_size) == ("real-lm", 3, 1e-4, 8)
    assert config.task.prompt_style == "compact" and "3 steps x 4 prompts x 8 samples" in notes[0]
    # asked for chat without a template: kept (the run then stops with one line, tests/unit/models/test_inputs.py)
    assert resolved(str(llama_char_dir), ["task.prompt_style=chat"])[0].task.prompt_style == "chat"
    config, notes = resolved(str(llama_bpe_dir), preset="default")  # a preset given: no real-lm, no note
    assert (config.preset, config.optim.lr, config.steps, config.model.name_or_path, notes) == (
        "default", 5e-4, 100, str(llama_bpe_dir), []
    )  # fmt: skip


def test_on_cpu_applies_on_a_cpu_only():
    on_gpu, on_cpu = resolution.load_preset("real-lm", "cuda"), resolution.load_preset("real-lm", "cpu")
    assert "on_cpu" not in on_gpu and "on_cpu" not in on_cpu
    assert (on_gpu["steps"], on_gpu["rollout"]["max_new_tokens"], on_gpu["task"]["eval_size"]) == (100, 256, 64)
    assert (on_cpu["steps"], on_cpu["rollout"]["max_new_tokens"], on_cpu["task"]["eval_size"]) == (10, 128, 8)
    assert on_cpu["task"]["name"] == "arithmetic"  # merged into the section, not replacing it


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_every_preset_builds_on_both_devices(name, device_type):
    assert isinstance(build(TrainConfig, resolution.load_preset(name, device_type)), TrainConfig)
