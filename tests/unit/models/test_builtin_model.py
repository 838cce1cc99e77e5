"""The shipped built-in policy (loads, has the promised shape, scores above zero) and its build recipe."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from ladkit.models import builtin, warmstart
from ladkit.models.loading import ModelConfig, is_lora, load_policy

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "build_builtin_model.py"


@pytest.fixture(scope="module")
def builtin_policy():
    # Fail fast rather than let load_policy spend minutes building the model into the user cache.
    if not builtin.is_complete(builtin.shipped_path()):
        pytest.fail(f"{builtin.shipped_path()} is missing: run python scripts/build_builtin_model.py")
    return load_policy(ModelConfig(name_or_path="builtin"))


def test_builtin_is_shipped_and_loads_with_lora(builtin_policy):
    assert builtin.is_complete(builtin.shipped_path())
    assert builtin.builtin_model_path() == builtin.shipped_path()
    model, tokenizer = builtin_policy
    assert is_lora(model) and tokenizer.padding_side == "left" and tokenizer.pad_token == "<pad>"
    recipe = json.loads((builtin.shipped_path() / "recipe.json").read_text())
    assert {"command", "config", "wall_seconds", "eval", "parameters"} <= set(recipe)


def test_builtin_size_and_head_dim(builtin_policy):
    model, tokenizer = builtin_policy
    base = model.get_base_model()
    config = base.config
    assert config.model_type == "llama" and config.head_dim == config.hidden_size // config.num_attention_heads == 64
    assert config.num_key_value_heads == 2 and config.num_hidden_layers == 4 and config.vocab_size == len(tokenizer)
    parameters = sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
    assert 0.9e6 < parameters < 1.2e6


def test_builtin_solves_some_held_out_problems(builtin_policy):
    # 8 samples (temperature 1) on each of 8 problems of the default task's eval split, which the
    # warm start never saw: the first RL rollouts must score above zero.
    model, tokenizer = builtin_policy
    problems = warmstart.held_out_problems(8)
    prompts = [warmstart.cd.compact_prompt(p.numbers, p.target) for p in problems]
    torch.manual_seed(0)
    samples = warmstart.sample_completions(model, tokenizer, prompts, n=8)
    rewards = [r for problem, texts in zip(problems, samples) for r in warmstart.score(problem, texts)]
    assert len(rewards) == 64 and sum(rewards) > 0
    assert all(len(text) < 32 for texts in samples for text in texts)  # it learned to stop (EOS)


def _run_script(argv: list[str]) -> dict:
    spec = importlib.util.spec_from_file_location("build_builtin_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def test_build_recipe_smoke(tmp_path):
    out = tmp_path / "built"
    argv = ["--out", str(out), "--steps", "3", "--batch-size", "4", "--train-problems", "12", "--eval-problems", "2"]
    recipe = _run_script([*argv, "--eval-samples", "2", "--warmup", "1"])
    assert builtin.is_complete(out) and (out / "recipe.json").is_file()
    assert recipe["config"]["steps"] == 3 and 0 <= recipe["eval"]["sampled_accuracy"] <= 1
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(out), lora=False))
    assert tokenizer.decode(tokenizer("7,5,9,3->36:")["input_ids"]) == "7,5,9,3->36:"
    assert model.config.head_dim == 64
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"


def test_missing_shipped_model_is_built_into_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(builtin, "shipped_path", lambda: tmp_path / "not-shipped")
    monkeypatch.setenv("LADKIT_CACHE", str(tmp_path / "cache"))
    small = warmstart.WarmStartConfig(
        steps=2, batch_size=2, warmup=1, train_problems=8, eval_problems=1, eval_samples=1
    )
    real_build = warmstart.build_builtin
    monkeypatch.setattr(warmstart, "build_builtin", lambda out, log: real_build(out, small, log))
    path = builtin.builtin_model_path()
    assert path == tmp_path / "cache" / "builtin" / builtin.BUILTIN_NAME and builtin.is_complete(path)
    assert "building it once" in capsys.readouterr().err
    assert builtin.builtin_model_path() == path  # the second call finds the cached build
