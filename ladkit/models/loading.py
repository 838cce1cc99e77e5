"""Loading the policy: a Hugging Face causal LM and its tokenizer, with a LoRA adapter or full fine-tuning.

Owns `ModelConfig` (the `model.*` config section), `load_policy` (hub id, local folder, or "builtin"), the
reference policy for KL (`reference_policy`: the base model under a disabled adapter, so no second copy),
and `render_prompt` (plain text or chat messages -> prompt token ids). Log-probs of responses under the
policy live in `ladkit.models.logprobs`. transformers and peft are imported inside functions so that
importing ladkit (and `ladkit --help`) stays fast.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ladkit.errors import LadkitError

DTYPES = ("float32", "bfloat16", "float16", "auto")
# owner/name (or a bare name) made of the characters the hub allows; anything else can only be a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass
class ModelConfig:
    """The `model` section of a run config."""

    name_or_path: str = "builtin"
    """A Hugging Face hub id (`Qwen/Qwen2.5-0.5B-Instruct`), a local HF folder, or "builtin" (the shipped tiny
    countdown policy, ladkit.models.builtin)."""
    lora: bool = True
    """Train a LoRA adapter (the base weights stay frozen and double as the KL reference); False = full
    fine-tuning of every weight."""
    lora_rank: int = 16
    """LoRA rank r."""
    lora_alpha: float = 32.0
    """LoRA scaling numerator: the update is (alpha / r) * B @ A."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input. 0 by default: in RL dropout makes the trained policy's log-probs differ from
    the rollout policy's, which biases the importance ratio."""
    target_modules: str | list[str] = "all-linear"
    """Modules that get an adapter: "all-linear" (every linear layer except the output head) or a list of
    module names such as ["q_proj", "v_proj"]."""
    dtype: str = "auto"
    """Weight dtype: "auto", "float32", "bfloat16" or "float16". "auto" is the checkpoint's own on a GPU; on a CPU
    it is float32 unless the checkpoint is bf16 and the CPU has native bf16 (avx512_bf16, amx_bf16), since
    emulated bf16 is ~4x slower (ladkit.models.device). LoRA weights stay in float32 whatever the base dtype
    (peft's default), and log-probs are always computed in float32."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% more compute."""
    trust_remote_code: bool = False
    """Allow model code shipped in the hub repository to run (needed by some architectures; off for safety)."""

    def __post_init__(self):
        for spec in fields(self):
            _check_field(spec.name, getattr(self, spec.name))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # True is an int to Python


def _valid_targets(value) -> bool:
    if isinstance(value, str):
        return value == "all-linear"
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, str) and v for v in value)


# field -> (accepts the value?, what it must be): the error is "model.<field> must be <what>, got <value>".
_RULES = {
    "name_or_path": (lambda v: isinstance(v, str) and bool(v.strip()), "a hub id, a local folder or 'builtin'"),
    "lora": (lambda v: isinstance(v, bool), "true or false"),
    "lora_rank": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a positive integer"),
    "lora_alpha": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "lora_dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "target_modules": (_valid_targets, "'all-linear' or a non-empty list of module names"),
    "dtype": (lambda v: v in DTYPES, f"one of {', '.join(DTYPES)}"),
    "gradient_checkpointing": (lambda v: isinstance(v, bool), "true or false"),
    "trust_remote_code": (lambda v: isinstance(v, bool), "true or false"),
}


def _check_field(name: str, value) -> None:
    """A one-line error naming the key when `value` does not fit the field."""
    accepts, what = _RULES[name]
    if not accepts(value):
        raise LadkitError(f"model.{name} must be {what}, got {value!r}")


def load_policy(config: ModelConfig, device_type: str | None = None):
    """(model, tokenizer) ready for RL: pad token set, left padding, LoRA attached when `config.lora`.

    `device_type` ("cpu", "cuda"; None: cuda when there is one) decides what dtype "auto" means
    (`ladkit.models.device.load_dtype`). A tokenizer without an EOS token is refused: generation could never
    end a response. The model comes back in eval mode (no dropout in rollouts); the trainer switches modes.
    """
    path = resolve_model_path(config.name_or_path)
    tokenizer = _load_tokenizer(path, config)
    model = _load_model(path, config, device_type or _default_device_type())
    _align_pad_token(model, tokenizer)
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing works with frozen inputs; enable_input_require_grads is the belt and
        # braces peft documents for the reentrant variant some models force.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.lora:
            model.enable_input_require_grads()
    model = attach_lora(model, config) if config.lora else model.requires_grad_(True)
    return model, tokenizer


def resolve_model_path(name_or_path: str) -> str:
    """The builtin folder, a GGUF model's converted folder (ladkit.models.gguf), an existing local folder, or a
    plausible hub id; else a one-line error."""
    if name_or_path == "builtin":
        from ladkit.models.builtin import builtin_model_path

        return str(builtin_model_path())
    from ladkit.models import gguf

    if gguf.is_gguf_source(name_or_path):  # a packaged model's name or a .gguf file: converted once, cached
        return str(gguf.converted_path(name_or_path))
    local = Path(name_or_path).expanduser()
    if local.is_dir():
        return str(local)
    if local.exists() or not _looks_like_hub_id(name_or_path):
        raise _not_found(name_or_path)
    return name_or_path


def _looks_like_hub_id(name: str) -> bool:
    """True for `owner/name` or `name` in hub characters; "./x", "/x", "~/x" and "a/b/c" can only be paths."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def _not_found(name: str) -> LadkitError:
    return LadkitError(
        f"model {name!r} not found: not a local folder and not reachable on the Hugging Face hub; give a path or an id"
    )


def _load_errors() -> tuple[type[BaseException], ...]:
    """What from_pretrained raises for a missing, unreachable or unreadable model (OSError covers the hub's)."""
    errors: list[type[BaseException]] = [OSError, ValueError]  # ValueError: e.g. an unrecognised model type
    with contextlib.suppress(ImportError):
        from huggingface_hub.errors import HFValidationError

        errors.append(HFValidationError)
    return tuple(errors)


def _load_failed(path: str, error: BaseException) -> LadkitError:
    """A local folder that exists but does not load says why; anything else was not found."""
    if not Path(path).is_dir():
        return _not_found(path)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return LadkitError(
        f"model folder {path!r} could not be loaded as a Hugging Face causal LM ({reason}); give the folder "
        "save_pretrained wrote (config.json, the weights, the tokenizer files), or a hub id"
    )


def _load_tokenizer(path: str, config: ModelConfig):
    """AutoTokenizer with an EOS token (else a one-line error), a pad token and left padding."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.trust_remote_code)
    except _load_errors() as error:
        raise _load_failed(path, error) from error
    _require_eos(tokenizer, config.name_or_path)
    if tokenizer.pad_token is None:
        # EOS doubles as pad (the usual choice for base LMs). Safe because ladkit never infers response lengths
        # from pad ids: the rollout records each response's length and the loss uses that mask, so a real
        # final EOS is still trained on.
        tokenizer.pad_token = tokenizer.eos_token
    # Batched generation appends at the right edge, so prompts are padded on the left: every prompt then ends
    # in the same column. Rollout backends rely on this; log-prob computation takes any padding (it uses masks).
    tokenizer.padding_side = "left"
    return tokenizer


def _require_eos(tokenizer, name: str) -> None:
    """Responses end at EOS; a tokenizer without one would run every rollout to max_new_tokens."""
    if tokenizer.eos_token_id is None:
        raise LadkitError(
            f'the tokenizer of model {name!r} has no EOS token, so no response could end; set "eos_token" '
            "in its tokenizer_config.json (e.g. the token its chat template closes a turn with)"
        )


def _default_device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def checkpoint_dtype(path: str, config: ModelConfig) -> str | None:
    """The dtype the checkpoint's config.json records ("bfloat16", ...), None when it records none."""
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(path, trust_remote_code=config.trust_remote_code)
    except _load_errors() as error:
        raise _load_failed(path, error) from error
    dtype = getattr(model_config, "dtype", None) or getattr(model_config, "torch_dtype", None)
    return None if dtype is None else str(dtype).removeprefix("torch.")


def _load_model(path: str, config: ModelConfig, device_type: str):
    """AutoModelForCausalLM in the dtype `config.dtype` means on `device_type`; a one-line error when it cannot
    be found."""
    from transformers import AutoModelForCausalLM

    from ladkit.models.device import load_dtype, warn_slow_dtype

    dtype = load_dtype(config.dtype, checkpoint_dtype(path, config), device_type)
    warn_slow_dtype(dtype, device_type)
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=config.trust_remote_code)
    except _load_errors() as error:
        raise _load_failed(path, error) from error


def _align_pad_token(model, tokenizer) -> None:
    """Grow the embeddings if the tokenizer gained a token, and tell the model and generate() the pad id."""
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def linear_module_names(model) -> list[str]:
    """Distinct leaf names of the model's linear layers (what LoRA can target), e.g. q_proj, up_proj, lm_head."""
    import torch

    def is_linear(module) -> bool:  # GPT-2 style models use transformers' Conv1D, which peft also adapts
        return isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules() if is_linear(module)})


def attach_lora(model, config: ModelConfig):
    """Wrap `model` in a peft LoRA adapter; a target that does not fit gives one line listing what does."""
    from peft import LoraConfig, get_peft_model

    targets = config.target_modules if isinstance(config.target_modules, str) else list(config.target_modules)
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        bias="none",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as error:
        linears = ", ".join(linear_module_names(model))
        raise LadkitError(
            f"model.target_modules {targets!r} does not fit this model ({error}); its linear modules are: {linears}"
        ) from error


def merged_lora_weights(model) -> list[tuple[str, Any]]:
    """A peft LoRA model's weights with its active adapter merged in, under the base checkpoint's names
    (`model.layers.0.self_attn.q_proj.weight`): what an engine that loads full weights takes.

    The model is left as it is (`merged_lora_layers`). DoRA and `modules_to_save` adapters are refused: their
    merged weights are not base + delta under the base's names."""
    base = model.get_base_model()
    merged = {f"{name}.weight": weight for name, (_, weight) in merged_lora_layers(model).items()}
    weights = []
    for key, tensor in current_state_dict(base).items():
        if "lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        weights.append((key, merged.get(key, tensor.detach())))
    return weights


def current_state_dict(model) -> dict[str, Any]:
    """`model.state_dict()` (detached), read from the modules' own attributes when the model is FSDP2-sharded.

    Under FSDP2 the trainer keeps the parameters gathered (`unshard`) outside the update, so every module holds
    its full tensors; `state_dict()` would instead reshard the model and return this rank's DTensor shards. The
    walk below reads what the modules hold, with `state_dict()`'s keys (every path of a shared module, tied
    weights under both names; persistent buffers only) and no collectives, so each rank may call it alone (a
    vLLM engine per rank syncs from it). Any other model: its own `state_dict()`, hooks included."""
    if not fsdp_modules(model):
        return {key: value.detach() for key, value in model.state_dict().items()}
    state = module_attributes_state(model)
    if any(type(value).__name__ == "DTensor" for value in state.values()):
        raise LadkitError("the sharded model's weights are not gathered; call distributed.unshard(model) first")
    return state


def module_attributes_state(model) -> dict[str, Any]:
    """The parameters and persistent buffers each module holds, under `state_dict()`'s keys, without its hooks."""
    state = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        prefix = f"{prefix}." if prefix else ""
        for name, param in module._parameters.items():
            if param is not None:
                state[prefix + name] = param.detach()
        for name, buffer in module._buffers.items():
            if buffer is not None and name not in module._non_persistent_buffers_set:
                state[prefix + name] = buffer.detach()
    return state


def fsdp_modules(model) -> list:
    """The modules of `model` sharded with FSDP2's `fully_shard` (none without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):  # one process: nothing is sharded (and no module walk)
        return []
    from torch.distributed.fsdp import FSDPModule

    return [module for module in model.modules() if isinstance(module, FSDPModule)]


def merged_lora_layers(model) -> dict[str, tuple[Any, Any]]:
    """{module name in the base model: (its LoRA layer, base weight + the active adapter's delta)}.

    Each merged weight is a new tensor, base + `get_delta_weight` (B A scaled) in the base's dtype; the model is
    not touched, so no merge/unmerge round trip drifts the frozen base in low precision. DoRA and
    `modules_to_save` adapters are refused (a one-line LadkitError): their effect is not base + delta."""
    from peft.tuners.lora import LoraLayer

    adapter = model.active_adapter
    config = model.peft_config[adapter]
    if getattr(config, "use_dora", False) or getattr(config, "modules_to_save", None):
        raise LadkitError(
            "merged LoRA weight sync supports plain LoRA only (this adapter uses DoRA or modules_to_save); "
            "use rollout.vllm_lora_sync=adapter"
        )
    merged = {}
    for name, module in model.get_base_model().named_modules():
        if isinstance(module, LoraLayer) and adapter in {*module.lora_A, *module.lora_embedding_A}:
            weight = module.get_base_layer().weight
            merged[name] = (module, (weight + module.get_delta_weight(adapter).to(weight.dtype)).detach())
    return merged


DROPOUT_CONFIG_KEYS = (
    "attention_dropout", "attn_pdrop", "resid_pdrop", "embd_pdrop", "hidden_dropout", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "dropout", "activation_dropout",
)  # fmt: skip
TRAIN_ONLY_CONFIG_KEYS = ("router_jitter_noise", "layerdrop", "drop_path_rate")  # noise or skipping in train mode


def deterministic_forward(model) -> bool:
    """True when the train-mode forward computes the eval-mode one: no dropout module with p > 0 and no dropout
    rate in the model config (attention dropout is a functional call in transformers)."""
    import torch

    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        return False
    config = getattr(model, "config", None)
    return not any(_positive(getattr(config, key, 0)) for key in DROPOUT_CONFIG_KEYS)


def train_mode_matters(model) -> bool:
    """False when switching the model to eval mode (sampling, pi_old) would change nothing: a deterministic
    forward, no train-only noise or layer skipping in the config, and gradient checkpointing off (in train mode
    transformers turns the key/value cache off under it). Each switch is a walk over every module (a few
    milliseconds a step for a small model on a CPU), skipped where it is a no-op."""
    config = getattr(model, "config", None)
    if any(_positive(getattr(config, key, 0)) for key in TRAIN_ONLY_CONFIG_KEYS):
        return True
    return bool(getattr(model, "is_gradient_checkpointing", False)) or not deterministic_forward(model)


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def is_lora(model) -> bool:
    """True for a peft model (a frozen base plus adapters)."""
    from peft import PeftModel

    return isinstance(model, PeftModel)


def require_reference(config: ModelConfig, why: str = "a KL penalty to the reference policy") -> None:
    """Fail before training when a reference policy is needed but full fine-tuning leaves none without a copy."""
    if not config.lora:
        raise LadkitError(
            f"{why} needs a reference model, which only LoRA provides for free (the frozen base); "
            "use --lora (model.lora=true) or drop the KL term (e.g. --divergence none)"
        )


@contextlib.contextmanager
def reference_policy(model) -> Iterator:
    """The reference policy for KL: inside this block the LoRA adapter is off, so `model` *is* the base model.

    Gradients are off too (reference log-probs are constants). One copy of the weights serves both policies.
    Full fine-tuning has no reference without a second copy: that is a LadkitError (see `require_reference`).
    """
    import torch

    if not is_lora(model):
        raise LadkitError(
            "a reference policy needs a LoRA adapter (the frozen base is the reference); "
            "this model is fully fine-tuned: use --lora or drop the KL term"
        )
    with model.disable_adapter(), torch.no_grad():
        yield model


def render_prompt(tokenizer, prompt) -> list[int]:
    """Prompt token ids: plain text as is, chat messages through the tokenizer's chat template.

    - `str`: tokenized with the tokenizer's default special tokens (e.g. Llama's BOS; none for the char
      tokenizer), exactly what a user of `tokenizer(text)` expects.
    - list of {"role", "content"}: `apply_chat_template(add_generation_prompt=True)` when the tokenizer has
      a template (the template writes its own BOS, so no second one is added); without one, a plain
      "role: content" line per message and a final "assistant:" line that cues the reply, tokenized like text.
    """
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    if not isinstance(prompt, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in prompt):
        raise LadkitError("a prompt must be text or a list of {'role': ..., 'content': ...} messages")
    if not getattr(tokenizer, "chat_template", None):
        return render_prompt(tokenizer, "".join(f"{m['role']}: {m['content']}\n" for m in prompt) + "assistant:")
    text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


__all__ = [
    "DTYPES",
    "ModelConfig",
    "attach_lora",
    "is_lora",
    "linear_module_names",
    "load_policy",
    "reference_policy",
    "render_prompt",
    "require_reference",
    "resolve_model_path",
]
