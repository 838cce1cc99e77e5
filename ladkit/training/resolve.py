"""Resolve a TrainConfig: dataclass defaults <- preset or YAML file <- `--set a.b=c` overrides <- flags.

Which preset when none is given: `default` for the built-in model, `real-lm` for any other model (a real
pretrained causal LM must not inherit the character model's 16 new tokens and lr 5e-4). Under `real-lm`:

- the prompt style follows the tokenizer: chat when it has a chat template, plain text (compact) otherwise,
  unless the user set `task.prompt_style`;
- a preset's `on_cpu:` section is merged in when there is no CUDA GPU (a first run small enough for a CPU).

`resolve` appends what it decided to `notes` (the CLI prints them once); the values land in config.yaml.
"""

from __future__ import annotations

from typing import Any

from ladkit.config import apply_overrides, build, merge
from ladkit.config import load_preset as read_preset
from ladkit.errors import LadkitError
from ladkit.training.config import TrainConfig

BUILTIN_PRESET = "default"
REAL_LM_PRESET = "real-lm"
ON_CPU = "on_cpu"  # a preset section merged in when training runs on a CPU


def load_preset(name_or_path: str, device_type: str | None = None) -> dict[str, Any]:
    """A preset by name (ladkit/presets/NAME.yaml) or a YAML file by path, its `on_cpu` section merged in on a
    CPU (`device_type` None: a CPU unless CUDA is available) and removed."""
    data = read_preset(name_or_path)
    on_cpu = data.pop(ON_CPU, None) or {}
    if not isinstance(on_cpu, dict):
        raise LadkitError(f"{ON_CPU} in preset {name_or_path!r} must be a mapping of config keys")
    return merge(data, on_cpu) if (device_type or _device_type()) == "cpu" else data


def resolve(
    preset: str | None, overrides: list[str], flags: dict[str, Any], notes: list[str] | None = None
) -> TrainConfig:
    """The config from a preset/YAML, then `--set` overrides, then flags (dotted keys; None = not given).

    With no preset, the model decides it (module docstring); the decision is appended to `notes`."""
    user = merge(apply_overrides({}, list(overrides)), _nest({k: v for k, v in flags.items() if v is not None}))
    model = _section(user, "model").get("name_or_path", "builtin")
    chosen = preset or (BUILTIN_PRESET if model == "builtin" else REAL_LM_PRESET)
    data = {**load_preset(chosen), "preset": chosen}
    if preset is None and chosen == REAL_LM_PRESET and "prompt_style" not in _section(user, "task"):
        data.setdefault("task", {})["prompt_style"] = "chat" if has_chat_template(model) else "compact"
    config = build(TrainConfig, merge(data, user))
    if preset is None and chosen == REAL_LM_PRESET and notes is not None:
        notes.append(real_lm_note(config))
    return config


def has_chat_template(name_or_path: str) -> bool:
    """True when the model's tokenizer has a chat template. Only local files are read (a folder, the hub cache):
    a model that cannot be read here counts as having one (instruct models on the hub do), and if it has none
    after all, the run stops before writing anything with a line saying to use task.prompt_style=compact."""
    from ladkit.models.loading import resolve_model_path

    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name_or_path), local_files_only=True)
    except Exception:  # noqa: BLE001 (whatever stops reading it here, loading it reports properly)
        return True
    return bool(getattr(tokenizer, "chat_template", None))


def real_lm_note(config: TrainConfig) -> str:
    """The one line saying what `real-lm` applied."""
    style = "chat prompts" if config.task.prompt_style == "chat" else "plain-text prompts (no chat template)"
    where = "on a CPU, a small first run" if _device_type() == "cpu" else "on a GPU"
    return (
        f"using preset {REAL_LM_PRESET} for a model that is not builtin: {style}, task {config.task.name}, "
        f"LoRA lr {config.optim.lr:g}, up to {config.rollout.max_new_tokens} new tokens, dtype {config.model.dtype}; "
        f"{where} of {config.steps} steps x {config.prompts_per_step} prompts x {config.group_size} samples "
        "(any --config, --set or flag overrides these)"
    )


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """data[key] when it is a section (a mapping); {} when absent or a scalar (build() reports that one)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
