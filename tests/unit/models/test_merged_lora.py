"""merged_lora_weights: a peft LoRA model's weights with the adapter merged in, under the base checkpoint's
names, leave the model untouched and reproduce its outputs when loaded into the plain architecture.
module_attributes_state (what a gathered FSDP2 model's weights are read through) is state_dict() itself."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from ladkit.errors import LadkitError
from ladkit.models.loading import current_state_dict, merged_lora_weights, module_attributes_state
from ladkit.models.tiny import build_tiny_model

torch.set_num_threads(1)


def tiny(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])  # qwen2: q/k/v biases (base_layer.bias renamed too)
def test_merged_weights_load_into_the_plain_model_and_match_the_adapter(tmp_path, arch):
    path = build_tiny_model(tmp_path, arch, hidden=32, heads=2, layers=2)
    peft = get_peft_model(tiny(path), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft.named_parameters():
            if "lora_B" in name:  # B = 0 would make the merge trivially the base
                parameter.normal_(0.0, 0.2)
    before = {k: v.clone() for k, v in peft.state_dict().items()}
    weights = merged_lora_weights(peft)
    plain = tiny(path)
    assert [k for k, _ in weights] == list(plain.state_dict())  # the checkpoint's names, in its order
    plain.load_state_dict(dict(weights), strict=True)
    ids = torch.tensor([[3, 7, 1, 4, 9, 2]])
    with torch.no_grad():
        expected, merged = peft(input_ids=ids).logits, plain(input_ids=ids).logits
        base = tiny(path)(input_ids=ids).logits
    assert torch.allclose(merged, expected, atol=1e-5) and not torch.allclose(base, expected, atol=1e-3)
    assert all(torch.equal(before[k], v) for k, v in peft.state_dict().items())  # nothing merged in place


def test_dora_is_refused_with_the_fix(tmp_path):
    peft = get_peft_model(
        tiny(build_tiny_model(tmp_path, "llama", hidden=32, heads=2, layers=1)),
        LoraConfig(r=4, target_modules="all-linear", use_dora=True),
    )
    with pytest.raises(LadkitError, match="supports plain LoRA only .* use rollout.vllm_lora_sync=adapter"):
        merged_lora_weights(peft)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("lora", [False, True], ids=["plain", "peft"])
def test_module_attributes_reproduce_the_state_dict(tmp_path, arch, lora):
    # current_state_dict reads a gathered FSDP2 model this way (its state_dict() would reshard it and give this
    # rank's shards), so the walk must be state_dict() itself: same keys in the same order, same tensors, shared
    # modules under every path, and non-persistent buffers (the rotary inv_freq) left out
    model = tiny(build_tiny_model(tmp_path, arch, hidden=32, heads=2, layers=2))
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    assert any(name.endswith("inv_freq") for name, _ in model.named_buffers())  # the exclusion is exercised
    expected, walked = model.state_dict(), module_attributes_state(model)
    assert list(walked) == list(expected)
    assert all(torch.equal(walked[key], value) and not walked[key].requires_grad for key, value in expected.items())
    assert current_state_dict(model).keys() == expected.keys()  # not sharded: state_dict() itself
