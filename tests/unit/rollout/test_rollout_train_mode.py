"""Sampling and pi_old switch the model to eval mode only where that changes the forward (`train_mode_matters`):
a dropout module or rate, train-only noise in the config, or gradient checkpointing (under which transformers
turns the key/value cache off in train mode). Elsewhere the switch, a walk over every module, is skipped, and the
tokens are those of an eval-mode model."""

from __future__ import annotations

import torch
from rollout_helpers import load_model, samples

from ladkit.models.loading import train_mode_matters
from ladkit.rollout import SamplingConfig
from ladkit.rollout.hf import HFBackend, _sampling_mode

SAMPLING = SamplingConfig(max_new_tokens=9, temperature=0.8, seed=11)


def lora(path, dropout: float = 0.0):
    """The tiny model with a LoRA adapter on every linear layer (dropout 0: nn.Identity, not nn.Dropout)."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        load_model(path), LoraConfig(r=8, lora_alpha=16, lora_dropout=dropout, target_modules="all-linear")
    )


def test_what_makes_the_train_mode_matter(tiny_eos_path):
    model = lora(tiny_eos_path)  # LoRA without dropout on a config without dropout rates
    assert not train_mode_matters(model)
    model.config.router_jitter_noise = 0.01  # a mixture-of-experts router's training noise
    assert train_mode_matters(model)
    model.config.router_jitter_noise = 0.0
    model.config.attention_dropout = 0.1  # a functional dropout: only the config shows it
    assert train_mode_matters(model)
    model.config.attention_dropout = 0.0
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert train_mode_matters(model)
    model.gradient_checkpointing_disable()
    assert not train_mode_matters(model)
    dropped = lora(tiny_eos_path, dropout=0.1)  # an nn.Dropout module with p > 0
    assert train_mode_matters(dropped)


def test_sampling_mode_switches_only_where_it_matters(tiny_eos_path):
    model = lora(tiny_eos_path).train()
    with _sampling_mode(model):
        assert not torch.is_grad_enabled()
        assert all(module.training for module in model.modules())  # left as it was: no walk
    dropped = lora(tiny_eos_path, dropout=0.1).train()
    dropped.base_model.model.model.layers[0].training = False  # a module's own flag comes back as it was
    with _sampling_mode(dropped):
        assert not any(module.training for module in dropped.modules())
    assert not dropped.base_model.model.model.layers[0].training
    assert sum(not module.training for module in dropped.modules()) == 1


def test_train_mode_sampling_gives_the_eval_mode_tokens(tiny_eos_path, tokenizer, prompts):
    model = lora(tiny_eos_path)
    in_train_mode = HFBackend(model.train(), tokenizer).generate(prompts, n=4, sampling=SAMPLING)
    in_eval_mode = HFBackend(model.eval(), tokenizer).generate(prompts, n=4, sampling=SAMPLING)
    assert samples(in_train_mode) == samples(in_eval_mode)
