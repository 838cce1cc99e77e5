"""Rollout backends sharing one contract: `hf` (transformers generate) and `vllm`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ladkit.registry import Registry
from ladkit.rollout.base import Completion, RolloutBackend, RolloutGroup, SamplingConfig

BACKENDS: Registry[Callable[..., RolloutBackend]] = Registry("rollout backend")
# Options of an inference engine (VLLMBackend's). The hf backend runs the training model as it is and ignores
# them, so a trainer can pass one set of options whichever backend the user picked.
ENGINE_OPTIONS = frozenset(
    {"seed", "max_model_len", "gpu_memory_utilization", "dtype", "enforce_eager", "lora_sync", "sleep_mode"}
)
# The hf backend's options; vllm ignores them.
HF_OPTIONS = frozenset({"max_batch_size", "batched_sampling", "decode", "merge_lora"})


@BACKENDS.register("hf")
def _make_hf(model, tokenizer, model_path=None, lora_rank=None, **options) -> RolloutBackend:
    from ladkit.rollout.hf import HFBackend

    # The hf backend samples from the training model itself: model_path and lora_rank are not needed.
    return HFBackend(model, tokenizer, **{k: v for k, v in options.items() if k not in ENGINE_OPTIONS})


@BACKENDS.register("vllm")
def _make_vllm(model, tokenizer, model_path=None, lora_rank=None, **options) -> RolloutBackend:
    from ladkit.errors import LadkitError
    from ladkit.rollout.vllm import VLLMBackend

    if model_path is None:
        raise LadkitError("--backend vllm needs the base model's path or hub name (model_path) to start its engine")
    backend = VLLMBackend(
        model_path, tokenizer, lora_rank=lora_rank, **{k: v for k, v in options.items() if k not in HF_OPTIONS}
    )
    if model is not None:
        # Start from the trainer's weights, not the checkpoint's: a resumed adapter or already-updated weights.
        backend.sync_weights(model)
    return backend


def make_backend(
    name: str, model, tokenizer, model_path: str | Path | None = None, lora_rank: int | None = None, **options
) -> RolloutBackend:
    """Build the rollout backend `name` ("hf" or "vllm") for `model` (a transformers or peft model).

    model_path: the base model's folder or hub name (vllm starts its own engine from it).
    lora_rank: the LoRA rank when training an adapter, None for full training.
    options: backend keywords. hf: max_batch_size, batched_sampling, decode ("eager", "static", "compiled";
        unset: by device), merge_lora (sample with the adapter merged; unset: on a CPU) (engine options are
        ignored). vllm: max_model_len, seed, gpu_memory_utilization, dtype,
        enforce_eager, lora_sync ("adapter": a LoRARequest per step, the default; "merged": the adapter merged
        into the weights, reloaded in place), sleep_mode (unset: where supported), and any other `vllm.LLM`
        keyword (hf options are ignored).
    """
    return BACKENDS.get(name)(model, tokenizer, model_path=model_path, lora_rank=lora_rank, **options)


__all__ = ["BACKENDS", "Completion", "RolloutBackend", "RolloutGroup", "SamplingConfig", "make_backend"]
