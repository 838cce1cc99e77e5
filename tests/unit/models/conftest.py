"""Tiny local models for the model tests: a Llama with the char tokenizer and a Qwen2 with a BPE tokenizer.

The BPE tokenizer is trained here on a few sentences, has a chat template and, like many base-model
tokenizers, no pad token, so pad handling and chat rendering are exercised on something hub-like.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "reinforcement learning from verifiable rewards trains language models",
    "seven plus five times nine minus three makes the target number",
    "a small model learns to add and multiply numbers",
] * 4


def bpe_tokenizer(with_eos: bool = True):
    """A small byte-level BPE `PreTrainedTokenizerFast` with a chat template and NO pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(SENTENCES, trainer)
    extra = {"eos_token": "</s>"} if with_eos else {}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", **extra)
    tokenizer.add_special_tokens({"additional_special_tokens": specials[2:]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny(path: Path, tokenizer, architecture: str, seed: int = 0) -> Path:
    """Random-init a tiny `architecture` sized to `tokenizer` and save both (HF format)."""
    from transformers import AutoModelForCausalLM

    from ladkit.models.tiny import tiny_config

    ids = {name: getattr(tokenizer, f"{name}_id") for name in ("bos_token", "eos_token", "pad_token")}
    config = tiny_config(
        architecture,
        len(tokenizer),
        hidden=32,
        layers=2,
        heads=2,
        max_positions=64,
        bos_token_id=ids["bos_token"],
        eos_token_id=ids["eos_token"],
        pad_token_id=ids["pad_token"],
    )
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def llama_char_dir(tmp_path_factory) -> Path:
    """A tiny Llama with the char tokenizer (pad token present)."""
    from ladkit.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("llama_char"), "llama", hidden=32, layers=2, heads=2)


@pytest.fixture(scope="session")
def qwen_bpe_dir(tmp_path_factory) -> Path:
    """A tiny Qwen2 with the BPE tokenizer. transformers 5 loads any qwen2 folder's tokenizer as Qwen2Tokenizer,
    which brings its own pad token ("<|endoftext|>") absent from this vocabulary: the embeddings must grow."""
    return save_tiny(tmp_path_factory.mktemp("qwen_bpe"), bpe_tokenizer(), "qwen2")


@pytest.fixture(scope="session")
def llama_bpe_dir(tmp_path_factory) -> Path:
    """A tiny Llama with the BPE tokenizer as saved (chat template, EOS, no pad token)."""
    return save_tiny(tmp_path_factory.mktemp("llama_bpe"), bpe_tokenizer(), "llama")


@pytest.fixture(scope="session")
def llama_no_eos_dir(tmp_path_factory) -> Path:
    """A tiny Llama whose tokenizer has neither pad nor EOS: load_policy must refuse it (no response could end)."""
    return save_tiny(tmp_path_factory.mktemp("llama_no_eos"), bpe_tokenizer(with_eos=False), "llama")


@pytest.fixture(params=["llama_char_dir", "qwen_bpe_dir"])
def model_dir(request) -> Path:
    """Each tiny architecture/tokenizer pair in turn."""
    return request.getfixturevalue(request.param)


def _set_lora_b(model, value: float = 0.05, seed: int = 0) -> None:
    """Make the adapter non-zero (peft initialises B = 0, so a fresh adapter changes nothing)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(value * torch.randn(param.shape, generator=generator))


@pytest.fixture
def set_lora_b():
    """`set_lora_b(model, value=0.05, seed=0)`: fill every LoRA B with seeded noise."""
    return _set_lora_b


@pytest.fixture
def make_bpe_tokenizer():
    """`make_bpe_tokenizer(with_eos=True)`: the BPE tokenizer with a chat template and no pad token."""
    return bpe_tokenizer


@pytest.fixture
def save_tiny_model():
    """save_tiny for test modules (a `from conftest import` may find another folder's conftest in a full run)."""
    return save_tiny
