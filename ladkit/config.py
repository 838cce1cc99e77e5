"""Config plumbing shared by every command: dataclass defaults <- preset/YAML <- `--set a.b=c` <- flags.

`build(cls, data)` turns a nested dict into the nested dataclass `cls`, checking every key and type:
an unknown key or a wrong type is a one-line `LadkitError` naming the dotted key and what is allowed.
Dataclasses validate their own values in `__post_init__`. `to_dict` is the inverse, written into the run
folder as config.yaml, so `build(cls, to_dict(c)) == c` (a test checks the round trip).

Sections: a nested dataclass field is a section. A partial section starts from the field's own default
(the bandit's `lad` section defaults to 1/eta = 2, not LADConfig's 4), then the given keys. A dataclass may
declare `MOVED = {"old_key": "section.new_key"}` (a ClassVar): an old key is then an error naming the new
one, and `move_keys` rewrites old keys for files written before the move (a run folder's config.yaml).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Union

import yaml

from ladkit.errors import LadkitError


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def build(cls: type, data: dict[str, Any] | None, prefix: str = "") -> Any:
    """Instantiate dataclass `cls` from `data`, recursing into nested dataclass fields."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise LadkitError(
            f"config section {prefix.rstrip('.') or '<root>'} must be a mapping, got {type(data).__name__}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    _check_moved(cls, data, hints, prefix)
    unknown = sorted(set(data) - set(fields), key=str)  # YAML keys may be ints, None, ...: order them as text
    if unknown:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        name = unknown[0] if isinstance(unknown[0], str) and unknown[0].isprintable() else _show(unknown[0])
        raise LadkitError(f"unknown config key {prefix}{name}{where}; valid keys: {', '.join(fields)}")
    values = {
        name: _coerce(hints[name], _with_section_default(fields[name], data[name]), prefix + name)
        for name in fields
        if name in data
    }
    try:
        return cls(**values)
    except LadkitError as err:
        where = prefix.rstrip(".")
        named = not prefix or str(err).startswith(where)  # the message already names the full key
        raise _same_kind(err, str(err) if named else f"{where}: {err}") from None


def _same_kind(err: LadkitError, message: str) -> LadkitError:
    """`err`'s class with `message` (an unknown divergence stays an UnknownNameError under its section's name)."""
    try:
        return type(err)(message)
    except TypeError:  # a subclass with another signature
        return LadkitError(message)


def _check_moved(cls: type, data: dict[str, Any], hints: dict[str, Any], prefix: str) -> None:
    """An old key (or an old scalar where a section now stands) is an error naming its new home."""
    for old, new in getattr(cls, "MOVED", {}).items():
        section_now = old in hints and dataclasses.is_dataclass(hints[old])
        if old in data and (old not in hints or section_now and not isinstance(data[old], dict)):
            raise LadkitError(f"config key {prefix}{old} is now {prefix}{new}; rename it in the YAML file or --set")


def _with_section_default(field: dataclasses.Field, value: Any) -> Any:
    """A section given in part starts from the field's default instance (its defaults may differ from the class's)."""
    if field.default_factory is dataclasses.MISSING or not isinstance(value, dict):
        return value
    default = field.default_factory()
    if not dataclasses.is_dataclass(default):
        return value
    settable = {f.name for f in dataclasses.fields(default) if f.init}
    return merge({key: v for key, v in to_dict(default).items() if key in settable}, value)


def move_keys(data: dict[str, Any], moves: dict[str, str]) -> dict[str, Any]:
    """`data` with each old key of `moves` (e.g. `{"prompt_field": "dataset.prompt_field"}`) put at its new dotted
    place, unless the new place is already set. An old key that names a section now (`dataset`) is moved only
    when it holds a value, not a mapping (then it is already in the new layout)."""
    out = _deep_copy(data)
    sections = {old for old, new in moves.items() if new.startswith(old + ".")}  # `dataset` -> `dataset.path`
    moved = {old: out.pop(old) for old in moves if old in out and not (old in sections and isinstance(out[old], dict))}
    for old, value in moved.items():
        *parents, leaf = moves[old].split(".")
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node.setdefault(leaf, value)
    return out


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check `value` against the type hint (int/float/str/bool/list/Optional/nested dataclass/Literal)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key + ".")
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(option, value, key)
            except LadkitError as err:
                errors.append(str(err))
        raise LadkitError(
            errors[0] if len(errors) == 1 else f"{key} = {_show(value)} has the wrong type; expected {hint}"
        )
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            allowed = ", ".join(map(str, typing.get_args(hint)))
            raise LadkitError(f"{key} = {_show(value)} is not allowed; choose one of: {allowed}")
        return value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise LadkitError(f"{key} must be a list, got {_show(value)}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: Any, key: str) -> Any:
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise LadkitError(f"{key} must be true or false, got {_show(value)}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT_LIMIT <= value < INT_LIMIT:  # seeds, sizes and counts end up in int64 tensors and C APIs
                raise LadkitError(f"{key} must be an integer in [-2**63, 2**63), got {_show(value)}")
            return value
        raise LadkitError(f"{key} must be an integer, got {_show(value)}")
    if hint is float:
        if isinstance(value, str) and _is_float(value):  # YAML 1.1 reads 1e-3 (no dot) as a string
            value = float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # no setting means anything at nan, and 10**400 overflows a float; inf is left to each field (GRPO's
            # epsilon_high = inf turns clipping off), whose __post_init__ checks its range
            if isinstance(value, int) and abs(value) >= INT_LIMIT or math.isnan(value):
                raise LadkitError(f"{key} must be a number (not nan, below 2**63 in size), got {_show(value)}")
            return float(value)
        raise LadkitError(f"{key} must be a number, got {_show(value)}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise LadkitError(f"{key} must be a string, got {_show(value)}")
    return value


INT_LIMIT = 2**63


def _show(value: Any, limit: int = 80) -> str:
    """`repr(value)` cut to one short line (a 5000-digit int cannot even be printed by default)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT_LIMIT:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file (safe_load: nothing in it can execute)."""
    path = Path(path)
    if not path.is_file():
        raise LadkitError(f"config file {path} does not exist; give a path to a YAML file or a preset name")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:  # includes a !!python/... tag: safe_load constructs plain data only
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise LadkitError(f"config file {path} is not valid YAML{where}; fix its syntax") from None
    except UnicodeDecodeError:
        raise LadkitError(f"config file {path} is not UTF-8 text; give a YAML file") from None
    except RecursionError:
        raise LadkitError(f"config file {path} is nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LadkitError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    return data


def preset_names(folder: str = "") -> list[str]:
    """The YAML presets shipped in ladkit/presets/<folder> (train's at the top, the bandit's in bandit/)."""
    return sorted(p.name[: -len(".yaml")] for p in _presets(folder).iterdir() if p.name.endswith(".yaml"))


def load_preset(name_or_path: str, folder: str = "") -> dict[str, Any]:
    """A preset by name (ladkit/presets/<folder>/NAME.yaml) or a YAML file by path."""
    if Path(name_or_path).suffix in (".yaml", ".yml") or "/" in name_or_path:
        return load_yaml(name_or_path)
    names = preset_names(folder)
    if name_or_path not in names:
        raise LadkitError(f"unknown preset {name_or_path!r}; presets: {', '.join(names)}; or give a YAML path")
    with resources.as_file(_presets(folder) / f"{name_or_path}.yaml") as path:
        return load_yaml(path)


def _presets(folder: str):
    root = resources.files("ladkit.presets")
    return root.joinpath(folder) if folder else root


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` overrides (c parsed as YAML: 3 -> int, 1e-4 -> float, [a, b] -> list, null -> None)."""
    data = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LadkitError(f"--set {item!r} is not key=value; write e.g. --set lad.inv_eta=4")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, RecursionError, ValueError):  # not YAML, absurdly nested, a 5000-digit int: text
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise LadkitError(f"--set {key}: {part} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def nest_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """Command-line flags by dotted key (`{"lad.divergence": "kl"}`) as a nested mapping; None = not given."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: `top` wins."""
    out = _deep_copy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}
