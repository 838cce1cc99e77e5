"""The training dashboard's controls: which TrainConfig key each widget sets, and the widgets themselves.

A control is a name (what `TrainDashboard(steps=4)` and `dash.config(objective="grpo")` take) mapped to one
dotted TrainConfig key (what `ladkit.training.resolve.resolve` takes as a flag). The menus are read from the
registries (objectives, divergences, tasks, rollout backends, model dtypes), so an objective or task
registered later appears in the dashboard without touching this module.
"""

from __future__ import annotations

from typing import Any

from ladkit.config import preset_names
from ladkit.errors import LadkitError
from ladkit.models.loading import DTYPES
from ladkit.objectives import DIVERGENCES, OBJECTIVES
from ladkit.rollout import BACKENDS
from ladkit.tasks import PROMPT_STYLES, TASKS
from ladkit.training.config import TrainConfig

# Control name -> the dotted TrainConfig key it sets (what `resolve` takes as a flag).
CONTROL_KEYS = {
    "model": "model.name_or_path",
    "dtype": "model.dtype",
    "task": "task.name",
    "prompt_style": "task.prompt_style",
    "backend": "rollout.backend",
    "max_new_tokens": "rollout.max_new_tokens",
    "objective": "objective",
    "divergence": "lad.divergence",
    "inv_eta": "lad.inv_eta",
    "lr": "optim.lr",
    "steps": "steps",
    "prompts_per_step": "prompts_per_step",
    "group_size": "group_size",
    "eval_every": "eval_every",
    "seed": "seed",
}
# The controls' layout: one column per tuple (model and data | algorithm | batch and schedule).
COLUMNS = (
    ("preset", "model", "dtype", "backend", "task", "prompt_style"),
    ("objective", "divergence", "inv_eta", "lr", "max_new_tokens"),
    ("steps", "prompts_per_step", "group_size", "eval_every", "seed"),
)
MODEL_HINT = "builtin, a hub id (Qwen/Qwen2.5-0.5B-Instruct) or a local folder"


def check_controls(settings: dict[str, Any]) -> None:
    """Settings passed by name must be controls (a typo is an error, not a silent default)."""
    unknown = sorted(set(settings) - set(CONTROL_KEYS))
    if unknown:
        raise LadkitError(
            f"unknown dashboard setting(s) {', '.join(unknown)}; valid settings: {', '.join(CONTROL_KEYS)};"
            " anything else goes in overrides=['a.b=c']"
        )


def flags_of(values: dict[str, Any]) -> dict[str, Any]:
    """Control values as `resolve` flags (dotted TrainConfig keys); a blank model field means 'not given'."""
    flags = {CONTROL_KEYS[name]: value for name, value in values.items()}
    if isinstance(flags.get("model.name_or_path"), str):
        flags["model.name_or_path"] = flags["model.name_or_path"].strip() or None
    return flags


def task_overrides(values: dict[str, Any]) -> list[str]:
    """Overrides a chosen task implies: any task but 'dataset' drops the preset's data set preset (gsm8k-qwen0.5b
    sets task.dataset.preset gsm8k; choosing countdown or math500 must not keep it)."""
    task = values.get("task")
    return ["task.dataset.preset=null"] if task is not None and task != "dataset" else []


def control_values_of(config: TrainConfig) -> dict[str, Any]:
    """What each control shows for `config`."""
    values = {}
    for name, key in CONTROL_KEYS.items():
        node: Any = config
        for part in key.split("."):  # "lad.divergence" -> config.lad.divergence
            node = getattr(node, part)
        values[name] = node
    values["inv_eta"] = config.lad.inverse_temperature  # a preset may give eta instead
    return values


def control_values(controls: dict[str, Any]) -> dict[str, Any]:
    return {name: controls[name].value for name in CONTROL_KEYS}


def make_controls(widgets: Any, start: TrainConfig, preset: str) -> dict[str, Any]:
    """One widget per control (and the preset menu), starting from `start` (the resolved config)."""
    values, wide = control_values_of(start), {"description_width": "initial"}
    presets = preset_names() + ([preset] if preset not in preset_names() else [])  # a YAML path from code
    menu = lambda name, options, label: widgets.Dropdown(  # noqa: E731
        options=_with(options, values.get(name)), value=values[name], description=label, style=wide
    )
    return {
        "preset": widgets.Dropdown(options=presets, value=preset, description="preset", style=wide),
        # Sent on Enter or on leaving the field, not per keystroke: a model entered may switch the preset.
        "model": widgets.Text(
            value=values["model"], placeholder=MODEL_HINT, description="model", style=wide, continuous_update=False
        ),
        "dtype": menu("dtype", DTYPES, "dtype"),
        "backend": menu("backend", BACKENDS.names(), "rollout backend"),
        "task": menu("task", TASKS.names(), "task"),
        "prompt_style": menu("prompt_style", PROMPT_STYLES, "prompt style"),
        "objective": menu("objective", OBJECTIVES.names(), "objective"),
        "divergence": menu("divergence", DIVERGENCES.names(), "divergence (LAD)"),
        "inv_eta": widgets.FloatLogSlider(
            value=values["inv_eta"], base=10, min=-1, max=2, step=0.05, description="1/eta (LAD)", style=wide
        ),
        "lr": widgets.BoundedFloatText(value=values["lr"], min=0, max=1, step=1e-5, description="lr", style=wide),
        "max_new_tokens": _count(widgets, values, "max_new_tokens", "max new tokens", 1, 10**5),
        "steps": _count(widgets, values, "steps", "steps", 1, 10**6),
        "prompts_per_step": _count(widgets, values, "prompts_per_step", "B prompts", 1, 4096),
        "group_size": _count(widgets, values, "group_size", "G samples", 2, 512),
        "eval_every": _count(widgets, values, "eval_every", "eval every", 0, 10**6),
        "seed": widgets.IntText(value=values["seed"], description="seed", style=wide),
    }


def _count(widgets: Any, values: dict[str, Any], name: str, label: str, low: int, high: int) -> Any:
    return widgets.BoundedIntText(
        value=values[name], min=low, max=high, description=label, style={"description_width": "initial"}
    )


def _with(options: Any, value: Any) -> list:
    """The registry's names, plus the config's own value when it is not among them (a dropdown must hold it)."""
    names = list(options)
    return names + [value] if value is not None and value not in names else names
