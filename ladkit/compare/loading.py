"""Reading run folders for `compare`: config, status, metric rows, eval rows and tracked prompts.

Reading never raises on a damaged run: what cannot be read becomes a note (a sentence the table and the
report print), so one torn or half-written run never hides the others. Only "nothing usable at all" is an
error, and that is the caller's call (`load_runs` returns the notes; `compare_runs` decides).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RUN_FILES = ("config.yaml", "meta.json", "metrics.jsonl")


@dataclass
class Run:
    """One LLM training run folder, as read (rows keep their JSON types; missing files are empty)."""

    path: Path
    config: dict[str, Any]
    status: str
    rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]] = field(default_factory=list)
    tracked: list[dict[str, Any]] = field(default_factory=list)
    eval_prompts: list[dict[str, Any]] = field(default_factory=list)  # step, example_id, n, correct per prompt

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def last_step(self) -> int | None:
        steps = [row["step"] for row in self.rows]
        return max(steps) if steps else None


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_FILES)


def is_bandit(config: dict[str, Any]) -> bool:
    """Bandit run folders share the layout but hold a K-armed experiment (their config has num_arms)."""
    return "num_arms" in config


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of a JSONL file with a "step", plus a note per line that could not be read.

    A bad final line is a torn write (the process was killed mid-line) and is expected of a live run; a bad
    line in the middle is corruption. Both are skipped, but they are worded differently."""
    if not path.is_file():
        return [], []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows, notes = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # bad JSON, a >4300-digit integer, nesting past the limit
            row = None
        if isinstance(row, dict) and finite(row.get("step")) is not None:
            rows.append(row)
        elif number == len(lines):
            notes.append(f"{path.name}: torn last line {number} skipped (a write was cut off)")
        else:
            notes.append(f"{path.name}: line {number} is not a JSON row with a step; skipped")
    return rows, notes


def finite(value: Any) -> float | None:
    """`value` as a finite float, or None (a non-number, a bool, NaN, inf, or an integer too large for a float).
    JSON lets NaN, Infinity and 400-digit integers through; none of them is a step or a metric value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def config_keys(config: dict[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of a config that holds a value (not a section), in file order."""
    keys = []
    for name, value in config.items():
        dotted = f"{prefix}{name}"
        keys += config_keys(value, f"{dotted}.") if isinstance(value, dict) and value else [dotted]
    return keys


def _read_mapping(path: Path, loader) -> tuple[dict[str, Any], str | None]:
    if not path.is_file():
        return {}, f"no {path.name}"
    try:
        data = loader(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, yaml.YAMLError):  # ValueError covers bytes that are not UTF-8
        return {}, f"{path.name} cannot be parsed"
    return (data, None) if isinstance(data, dict) else ({}, f"{path.name} is not a mapping")


def read_run(path: Path) -> tuple[Run | None, list[str]]:
    """One run folder -> (Run or None when it is not an LLM run, notes about it, each prefixed by its name)."""
    config, config_note = _read_mapping(path / "config.yaml", yaml.safe_load)
    meta, meta_note = _read_mapping(path / "meta.json", json.loads)
    if is_bandit(config):
        return None, [
            f"{path.name}: a bandit run folder (config has num_arms), not an LLM training run; "
            f"compare reads LLM runs (see its bandit.html instead); skipped"
        ]
    config.setdefault("engine", "ladkit")  # TRL/verl run folders say engine: trl|verl (ladkit.integrations)
    rows, notes = read_jsonl(path / "metrics.jsonl")
    eval_rows, eval_notes = read_jsonl(path / "eval.jsonl")
    tracked, tracked_notes = read_jsonl(path / "tracked.jsonl")
    eval_prompts, prompt_notes = read_jsonl(path / "eval_prompts.jsonl")
    notes += eval_notes + tracked_notes + prompt_notes + [n for n in (config_note, meta_note) if n]
    status = str(meta.get("status", "unknown"))
    if status != "completed":
        notes.append(f"status {status}: partly written, read up to step {_last(rows)}")
    if not rows:
        notes.append("no metric rows; skipped")
        return None, [f"{path.name}: {n}" for n in notes]
    run = Run(path, config, status, sorted(rows, key=lambda r: r["step"]), eval_rows, tracked, eval_prompts)
    return run, [f"{path.name}: {n}" for n in notes]


def _last(rows: list[dict[str, Any]]) -> Any:
    return max((row["step"] for row in rows), default="none")


def expand(path: Path) -> tuple[list[Path], list[str]]:
    """A run folder is itself; a parent folder stands for the run folders directly inside it."""
    if not path.exists():
        return [], [f"{path}: does not exist; skipped"]
    if is_run_folder(path):
        return [path], []
    children = sorted(child for child in path.iterdir() if is_run_folder(child)) if path.is_dir() else []
    if not children:
        return [], [f"{path}: not a run folder (no {', '.join(RUN_FILES)}) and holds none; skipped"]
    return children, []


def load_runs(paths: list[str | Path]) -> tuple[list[Run], list[str]]:
    """Every LLM run found under `paths` (in the order given) and the notes about what was skipped."""
    runs, notes = [], []
    for given in paths:
        folders, expand_notes = expand(Path(given))
        notes += expand_notes
        for folder in folders:
            run, run_notes = read_run(folder)
            notes += run_notes
            if run is not None:
                runs.append(run)
    return runs, notes
