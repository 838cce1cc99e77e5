"""The hf backend samples a LoRA model with the adapter merged (on a CPU by default): the same tokens and sampler
log-probs as sampling through the adapter, up to float rounding; the trainer's base weights and parameters come
back untouched (the same objects, bit for bit) and the adapter is live again afterwards; models it cannot merge
are sampled as they are."""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import LOGPROB_TOL, add_lora, load_model, logprob_error, samples, set_lora

from ladkit.rollout import SamplingConfig
from ladkit.rollout.hf import HFBackend, _merged_lora, default_merge_lora

SAMPLING = SamplingConfig(max_new_tokens=9, temperature=0.8, top_k=20, seed=7)


def lora_model(path, seed=3):
    model = add_lora(load_model(path))
    set_lora(model, seed=seed)  # B != 0: merging changes the weights it computes with
    return model


def test_default_is_on_a_cpu_only():
    assert default_merge_lora(torch.device("cpu")) and not default_merge_lora(torch.device("cuda"))


def test_merged_sampling_matches_sampling_through_the_adapter(tiny_eos_path, tokenizer, prompts):
    model = lora_model(tiny_eos_path)
    merged = HFBackend(model, tokenizer, merge_lora=True).generate(prompts, n=4, sampling=SAMPLING)
    plain = HFBackend(model, tokenizer, merge_lora=False).generate(prompts, n=4, sampling=SAMPLING)
    assert samples(merged) == samples(plain)
    for mine, theirs in zip(merged, plain, strict=True):
        for a, b in zip(mine.completions, theirs.completions, strict=True):
            torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=1e-5)
    # and both are the adapted model's teacher-forced log-probs (not the base model's)
    assert logprob_error(model, merged, SAMPLING) < LOGPROB_TOL["hf"]
    with model.disable_adapter():
        assert logprob_error(model, merged, SAMPLING) > 10 * LOGPROB_TOL["hf"]


def test_base_weights_and_adapter_come_back_unchanged(tiny_eos_path, tokenizer, prompts):
    model = lora_model(tiny_eos_path).eval()  # no LoRA dropout: the two forwards compute one function
    before = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    probe = torch.tensor([prompts[2]])
    with torch.no_grad():
        logits = model(probe).logits
        with _merged_lora(model) as merged:
            assert merged
            inside = {name for name, _ in model.named_parameters()}
            bypassed = sum("forward" in vars(module) for module in model.modules())  # straight to the base layer
            merged_logits = model(probe).logits  # the merged weights, adapters off: the same function
    torch.testing.assert_close(merged_logits, logits, atol=1e-5, rtol=1e-5)
    assert inside == set(before)
    assert bypassed == sum("lora_A" in name and name.endswith("default.weight") for name in before) > 0
    assert not any("forward" in vars(module) for module in model.modules())  # peft's forward is back
    after = dict(model.named_parameters())
    for name, (parameter, value) in before.items():
        assert after[name] is parameter and torch.equal(parameter, value), name  # same object, same bits
    assert [p.requires_grad for p in after.values()] == [p.requires_grad for p, _ in before.values()]
    with torch.no_grad():
        assert torch.equal(model(probe).logits, logits)  # the adapter is live again


def test_an_error_inside_restores_the_weights(tiny_eos_path):
    model = lora_model(tiny_eos_path)
    base = {name: p for name, p in model.named_parameters() if "base_layer" in name}
    with pytest.raises(RuntimeError, match="boom"), torch.no_grad(), _merged_lora(model):
        raise RuntimeError("boom")
    assert all(dict(model.named_parameters())[name] is p for name, p in base.items())
    assert not any("forward" in vars(module) for module in model.modules())


def test_what_it_does_not_merge(tiny_eos_path):
    from peft import LoraConfig, get_peft_model

    plain = load_model(tiny_eos_path)
    dora = get_peft_model(load_model(tiny_eos_path), LoraConfig(r=4, target_modules="all-linear", use_dora=True))
    for model, asked in ((plain, True), (dora, True), (lora_model(tiny_eos_path), False)):
        with torch.no_grad(), _merged_lora(model, asked) as merged:
            assert merged is False
