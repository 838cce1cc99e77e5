"""Resolve a TrainConfig: dataclass defaults <- preset or YAML file <- `--set a.b=c` overrides <- flags."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ladkit.config import apply_overrides, build, load_yaml, merge
from ladkit.errors import LadkitError
from ladkit.training.config import TrainConfig


def preset_names() -> list[str]:
    return sorted(
        p.name[: -len(".yaml")] for p in resources.files("ladkit.presets").iterdir() if p.name.endswith(".yaml")
    )


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (ladkit/presets/NAME.yaml) or a YAML file by path."""
    if Path(name_or_path).suffix in (".yaml", ".yml") or "/" in name_or_path:
        return load_yaml(name_or_path)
    if name_or_path not in preset_names():
        raise LadkitError(f"unknown preset {name_or_path!r}; presets: {', '.join(preset_names())}; or give a YAML path")
    with resources.as_file(resources.files("ladkit.presets") / f"{name_or_path}.yaml") as path:
        return load_yaml(path)


def resolve(preset: str | None, overrides: list[str], flags: dict[str, Any]) -> TrainConfig:
    """The config from a preset/YAML, then `--set` overrides, then flags (dotted keys; None = not given)."""
    data = load_preset(preset or "default")
    data = apply_overrides(data, list(overrides))
    given = {key: value for key, value in flags.items() if value is not None}
    data = merge(data, _nest(given))
    return build(TrainConfig, data)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out
