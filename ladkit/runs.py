"""The run folder: the self-describing record every command writes and `compare`/notebooks read.

    config.yaml    the fully resolved config
    meta.json      versions, git sha, argv, device, status (running / completed / stopped / failed /
                   interrupted: SIGTERM or Ctrl-C, resumable like a killed run), times
    metrics.jsonl  one JSON object per row, appended and flushed as it is produced
    summary.json   final numbers
    (plus command-specific files: samples/, checkpoints/, figures)

JSON and YAML files are written atomically (temporary name, fsync, rename), so a killed process never
leaves a half-written one behind. Nothing here executes what it reads: JSON and safe YAML only.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ladkit import __version__
from ladkit.errors import LadkitError


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file + fsync + rename (never a torn file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def to_jsonable(value: Any, finite: bool = True) -> Any:
    """Tensors/numpy scalars to floats, non-finite floats to None (strict JSON has no NaN; `finite=False` keeps
    them, for YAML, which writes inf as .inf: GRPO's open clip must read back as inf, not null)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) or not finite else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, finite) for v in value]
    return value


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_name(*parts: str) -> str:
    """`bandit-lad_js-grpo-s0-20261126-163000`: what, on what, which seed, when."""
    clean = [p.replace(":", "_").replace("/", "_") for p in parts if p]
    return "-".join([*clean, time.strftime("%Y%m%d-%H%M%S")])


def unique_path(path: str | Path) -> Path:
    """`path`, or `path-2`, `path-3`, ... when it exists (two runs named in the same second)."""
    path = base = Path(path)
    n = 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunWriter:
    """Creates a run folder and appends to it. Refuses to overwrite a folder that already holds a run."""

    def __init__(self, path: str | Path, config: dict[str, Any], command: str, durable: bool = False, resumed=0):
        self.path = Path(path)
        self.durable = durable  # fsync every row: a later checkpoint never outlives its rows after a power loss
        if (self.path / "meta.json").exists():
            raise LadkitError(f"run folder {self.path} already holds a run; choose another --run-dir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LadkitError(
                f"cannot create run folder {self.path}: {err.strerror}; choose another --run-dir"
            ) from None
        self.meta = {
            "command": command,
            "status": "running",
            "ladkit_version": __version__,
            "git_sha": git_sha(),
            "argv": sys.argv,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **_library_versions(),
            **({"resumed": resumed} if resumed else {}),  # a run restarted in place (clear_run) counts its resumes
        }
        write_atomic(self.path / "config.yaml", yaml.safe_dump(to_jsonable(config, finite=False), sort_keys=False))
        self._write_meta()
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")

    @classmethod
    def reopen(cls, path: str | Path, keep: Callable[[dict], bool], durable: bool = False) -> RunWriter:
        """Continue an existing run: keep the metric rows `keep` accepts (a torn last line is dropped),
        rewrite metrics.jsonl atomically and append from there."""
        self = cls.__new__(cls)
        self.path, self.durable = Path(path), durable
        self.meta = read_meta(self.path)
        rows = [row for row in read_rows(self.path / "metrics.jsonl") if keep(row)]
        write_atomic(self.path / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
        self.meta.update(status="running", resumed=self.meta.get("resumed", 0) + 1, argv=sys.argv)
        self._write_meta()
        self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        return self

    def _write_meta(self) -> None:
        write_atomic(self.path / "meta.json", json.dumps(self.meta, indent=2))

    def log(self, row: dict[str, Any]) -> None:
        """Append one metrics row and flush it (a reader sees every finished row)."""
        self._metrics.write(json.dumps(to_jsonable(row)) + "\n")
        self._metrics.flush()
        if self.durable:
            os.fsync(self._metrics.fileno())

    def write_json(self, name: str, data: Any) -> Path:
        path = self.path / name
        write_atomic(path, json.dumps(to_jsonable(data), indent=2))
        return path

    def finish(self, status: str = "completed", **extra: Any) -> None:
        self._metrics.close()
        self.meta.update(status=status, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra)
        self._write_meta()


def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """A run's meta.json as a mapping; missing, unreadable or not a mapping is a one-line error."""
    path = Path(run_dir) / "meta.json"
    if not path.is_file():
        raise LadkitError(f"{run_dir} is not a ladkit run (no meta.json); give a run folder")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, nested past the limit
        raise LadkitError(f"{path} is unreadable ({type(err).__name__}); restore it or start a new run") from None
    if not isinstance(meta, dict):
        raise LadkitError(f"{path} holds a {type(meta).__name__}, not a mapping; restore it or start a new run")
    return meta


def clear_run(run_dir: str | Path) -> int:
    """Remove what a run wrote before its first checkpoint (meta.json, summary.json, its *.jsonl rows, samples/,
    tensorboard/, torn checkpoint folders), so it starts again in the same folder; config.yaml stays. Returns
    how often the run has been resumed, this time included."""
    run_dir = Path(run_dir)
    resumed = int(read_meta(run_dir).get("resumed", 0) or 0) + 1
    for path in [run_dir / "meta.json", run_dir / "summary.json", *run_dir.glob("*.jsonl")]:
        path.unlink(missing_ok=True)
    for folder in (run_dir / "checkpoints").glob(".step_*.tmp"):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in ("tensorboard", "samples"):
        shutil.rmtree(run_dir / folder, ignore_errors=True)
    return resumed


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl; a line that is not a complete JSON object (a torn write) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):  # a torn write, a >4300-digit integer, nesting past the limit
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("torch", "transformers", "peft", "vllm"):
        module = sys.modules.get(name)
        if module is not None:
            versions[f"{name}_version"] = getattr(module, "__version__", "unknown")
    return versions
