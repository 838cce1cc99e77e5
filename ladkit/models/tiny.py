"""Tiny causal LMs and tokenizers built locally (no hub access): ladkit's built-in default policy and the
test fixtures. Everything here produces ordinary Hugging Face objects (a `PreTrainedTokenizerFast`, a
`LlamaForCausalLM` or `Qwen2ForCausalLM`), so the rest of ladkit, peft and vLLM treat them like any hub model.
"""

from __future__ import annotations

from pathlib import Path

from ladkit.errors import LadkitError

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
# Characters of the compact arithmetic/countdown prompts and answers the built-in model reads and writes.
DEFAULT_CHARS = "0123456789+-*/()=,:;.> \nabcdefghijklmnopqrstuvwxyz?"


def char_tokenizer(chars: str = DEFAULT_CHARS, vocab_size: int | None = None):
    """A character-level `PreTrainedTokenizerFast`: one token per character, specials first (pad = 0).

    Decoding fuses the characters back together, so decode(encode(s)) == s for any s over `chars`.
    `vocab_size` pads the vocabulary with filler tokens `<f0>`, `<f1>`, ... that encoding never produces but
    decoding spells out, so a model with a hub-sized vocabulary (a random-init benchmark model) can sample
    any id and still be decoded.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if len(set(chars)) != len(chars):
        raise LadkitError("char_tokenizer: the character set has duplicates; give each character once")
    tokens = [*SPECIAL_TOKENS, *chars]
    if vocab_size is not None:
        if vocab_size < len(tokens):
            raise LadkitError(f"char_tokenizer: vocab_size {vocab_size} is smaller than the {len(tokens)} tokens")
        tokens += [f"<f{i}>" for i in range(vocab_size - len(tokens))]
    vocab = {token: i for i, token in enumerate(tokens)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # every char is a token
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


def tiny_config(
    architecture: str,
    vocab_size: int,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 256,
    bos_token_id: int = 1,
    eos_token_id: int = 2,
    pad_token_id: int = 0,
    kv_heads: int | None = None,
    intermediate: int | None = None,
):
    """A small Llama or Qwen2 config (`architecture` "llama" or "qwen2").

    `kv_heads` defaults to heads // 2 (grouped-query attention, as in the real families) and `intermediate`
    to 4 * hidden. head_dim is hidden // heads: vLLM's CPU attention only takes standard sizes (64, 128, ...).
    """
    from transformers import LlamaConfig, Qwen2Config

    shared = dict(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate or hidden * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or max(1, heads // 2),
        max_position_embeddings=max_positions,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        tie_word_embeddings=True,
    )
    if architecture == "llama":
        return LlamaConfig(**shared)
    if architecture == "qwen2":
        return Qwen2Config(**shared)
    raise LadkitError(f"unknown tiny architecture {architecture!r}; valid: llama, qwen2")


def build_tiny_model(path: str | Path, architecture: str = "llama", seed: int = 0, **config_kwargs):
    """Random-init a tiny model with the char tokenizer and save both to `path` (HF format). Returns `path`."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = char_tokenizer()
    config = tiny_config(
        architecture,
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **config_kwargs,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
