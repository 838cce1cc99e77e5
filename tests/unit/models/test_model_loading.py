"""load_policy, ModelConfig validation, pad handling, LoRA, the reference policy and render_prompt."""

from __future__ import annotations

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.models.loading import (
    ModelConfig,
    is_lora,
    load_policy,
    reference_policy,
    render_prompt,
    require_reference,
)

NOT_FOUND = "not found: not a local folder and not reachable on the Hugging Face hub; give a path or an id"


def _logits(model, text_ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([text_ids])).logits  # [1, L, V]


def _ids(tokenizer) -> list[int]:
    return tokenizer("the quick 7+5", add_special_tokens=False)["input_ids"]


# --- config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value",
    [
        ("lora_rank", 0), ("lora_rank", 2.5), ("lora_alpha", -1), ("lora_dropout", 1.0), ("dtype", "fp8"),
        ("target_modules", []), ("target_modules", "attention"), ("lora", "yes"), ("name_or_path", ""),
        ("gradient_checkpointing", 1), ("trust_remote_code", None),
    ],
)  # fmt: skip
def test_config_errors_name_the_key_in_one_line(key, value):
    with pytest.raises(LadkitError) as error:
        ModelConfig(**{key: value})
    assert f"model.{key}" in str(error.value) and "\n" not in str(error.value)


def test_config_defaults_are_valid():
    config = ModelConfig()
    assert config.name_or_path == "builtin" and config.lora and config.target_modules == "all-linear"
    assert ModelConfig(target_modules=["q_proj", "v_proj"], dtype="bfloat16").target_modules == ["q_proj", "v_proj"]


# --- not found --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/nonexistent/model/dir", "./no/such/folder", "~/missing-model", "a/b/c"])
def test_missing_local_path_is_one_line(name):
    with pytest.raises(LadkitError) as error:
        load_policy(ModelConfig(name_or_path=name))
    assert str(error.value) == f"model {name!r} {NOT_FOUND}"


def test_unreachable_hub_id_is_one_line(monkeypatch):
    # Offline mode makes the hub lookup fail at once (the real machine has no network either, but retries).
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(LadkitError) as error:
        load_policy(ModelConfig(name_or_path="nobody-xyz/no-such-model-123"))
    assert str(error.value) == f"model 'nobody-xyz/no-such-model-123' {NOT_FOUND}"


def test_local_folder_that_is_not_a_model_says_why(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(LadkitError) as error:
        load_policy(ModelConfig(name_or_path=str(tmp_path)))
    message = str(error.value)
    assert message.startswith(f"model folder {str(tmp_path)!r} could not be loaded") and "\n" not in message
    assert message.endswith(
        "give the folder save_pretrained wrote (config.json, the weights, the tokenizer files), or a hub id"
    )


# --- tokenizer: pad token, padding side -------------------------------------------------------------------


def test_char_tokenizer_keeps_its_pad(llama_char_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir)))
    assert tokenizer.pad_token == "<pad>" and tokenizer.padding_side == "left"
    assert model.config.pad_token_id == tokenizer.pad_token_id == 0


def test_missing_pad_becomes_eos(llama_bpe_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_bpe_dir)))
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert model.config.pad_token_id == tokenizer.eos_token_id and tokenizer.padding_side == "left"
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)  # nothing added


def test_tokenizer_without_eos_is_refused_in_one_line(llama_no_eos_dir):
    # No EOS: no response could ever end, every rollout would run to max_new_tokens.
    with pytest.raises(LadkitError) as error:
        load_policy(ModelConfig(name_or_path=str(llama_no_eos_dir), lora=False))
    message = str(error.value)
    assert (
        message.startswith(f"the tokenizer of model {str(llama_no_eos_dir)!r} has no EOS token") and "\n" not in message
    )
    assert 'set "eos_token" in its tokenizer_config.json' in message


def test_tokenizer_that_brings_a_new_pad_grows_the_embeddings(qwen_bpe_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(qwen_bpe_dir), lora=False))
    assert tokenizer.pad_token is not None and model.config.pad_token_id == tokenizer.pad_token_id
    assert model.get_input_embeddings().num_embeddings >= len(tokenizer) > tokenizer.pad_token_id


# --- render_prompt ---------------------------------------------------------------------------------------


def test_render_plain_text_uses_the_tokenizer_defaults(llama_char_dir, make_bpe_tokenizer):
    from ladkit.models.tiny import char_tokenizer

    char = char_tokenizer()
    assert render_prompt(char, "7,5,9,3->36:") == char("7,5,9,3->36:")["input_ids"]
    assert char.decode(render_prompt(char, "7,5,9,3->36:")) == "7,5,9,3->36:"
    bpe = make_bpe_tokenizer()
    assert render_prompt(bpe, "the quick fox") == bpe("the quick fox")["input_ids"]


def test_render_chat_uses_the_template(make_bpe_tokenizer):
    tokenizer = make_bpe_tokenizer()
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "the fox"}]
    ids = render_prompt(tokenizer, messages)
    assert tokenizer.decode(ids) == "<|system|>be brief</s><|user|>the fox</s><|assistant|>"
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|assistant|>")  # generation prompt appended


def test_render_chat_without_template_joins_roles():
    from ladkit.models.tiny import char_tokenizer

    tokenizer = char_tokenizer()
    ids = render_prompt(tokenizer, [{"role": "user", "content": "1+2?"}])
    assert tokenizer.decode(ids) == "user: 1+2?\nassistant:"


def test_render_rejects_other_prompt_types():
    from ladkit.models.tiny import char_tokenizer

    with pytest.raises(LadkitError, match="list of"):
        render_prompt(char_tokenizer(), [{"text": "no role"}])


# --- LoRA and full fine-tuning ----------------------------------------------------------------------------


def test_lora_all_linear_trains_only_adapters(model_dir):
    model, _ = load_policy(ModelConfig(name_or_path=str(model_dir), lora_rank=4))
    assert is_lora(model)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    adapted = {name.split(".")[-4] for name in trainable}  # ...<module>.lora_A.default.weight
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= adapted
    assert model.peft_config["default"].task_type == "CAUSAL_LM"


def test_lora_explicit_modules(llama_char_dir):
    model, _ = load_policy(ModelConfig(name_or_path=str(llama_char_dir), target_modules=["q_proj", "v_proj"]))
    adapted = {name.split(".")[-4] for name, p in model.named_parameters() if p.requires_grad}
    assert adapted == {"q_proj", "v_proj"}


def test_adapter_that_does_not_fit_lists_the_linear_modules(llama_char_dir):
    with pytest.raises(LadkitError) as error:
        load_policy(ModelConfig(name_or_path=str(llama_char_dir), target_modules=["c_attn", "c_proj"]))
    message = str(error.value)
    assert "\n" not in message and "model.target_modules" in message
    assert "its linear modules are: " in message and "q_proj" in message and "down_proj" in message


def test_full_fine_tuning_has_no_free_reference(model_dir):
    config = ModelConfig(name_or_path=str(model_dir), lora=False)
    model, _ = load_policy(config)
    assert not is_lora(model) and all(p.requires_grad for p in model.parameters())
    with pytest.raises(LadkitError, match="--lora"):
        require_reference(config)
    with pytest.raises(LadkitError, match="--lora"), reference_policy(model):
        pass
    require_reference(ModelConfig(name_or_path=str(model_dir)))  # LoRA: fine


def test_reference_is_the_base_model(model_dir, set_lora_b):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), lora_rank=4))
    ids = _ids(tokenizer)
    policy = _logits(model, ids)
    with reference_policy(model):
        assert torch.equal(_logits(model, ids), policy)  # B = 0: the adapter is the identity
    set_lora_b(model)
    adapted = _logits(model, ids)
    with reference_policy(model) as reference:
        assert not torch.is_grad_enabled()
        base = _logits(reference, ids)
    assert torch.equal(base, policy)  # the base weights never moved
    assert not torch.allclose(adapted, base, atol=1e-4)
    assert torch.equal(_logits(model, ids), adapted)  # the adapter is back on after the block


def test_adapter_save_and_reload_gives_identical_logits(model_dir, set_lora_b, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), lora_rank=4))
    set_lora_b(model, seed=3)
    model.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    base.resize_token_embeddings(model.get_input_embeddings().num_embeddings)
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter")
    ids = _ids(tokenizer)
    assert torch.equal(_logits(reloaded, ids), _logits(model, ids))


def test_bf16_and_gradient_checkpointing_train_the_adapter(qwen_bpe_dir):
    from ladkit.models.logprobs import sequence_logprobs

    config = ModelConfig(name_or_path=str(qwen_bpe_dir), dtype="bfloat16", gradient_checkpointing=True, lora_rank=4)
    model, tokenizer = load_policy(config)
    assert model.get_base_model().model.embed_tokens.weight.dtype == torch.bfloat16
    assert model.get_base_model().is_gradient_checkpointing
    model.train()
    ids = torch.tensor([_ids(tokenizer)])  # [1, L]
    logprobs, _ = sequence_logprobs(model, ids, torch.ones_like(ids), torch.ones(1, 3))  # [1, 3]
    assert logprobs.dtype == torch.float32
    logprobs.sum().backward()
    # B starts at 0, so only B gets a gradient on the first step (dL/dA is proportional to B).
    grads = [p.grad for name, p in model.named_parameters() if "lora_B" in name]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)
    assert all(p.dtype == torch.float32 for name, p in model.named_parameters() if "lora_" in name)
