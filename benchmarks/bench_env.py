"""Where a benchmark ran, for its JSON record (CPU model, cores, Python, package versions, commit, date), and
writing the record.

Every script merges `environment(...)` into what it writes, so each result file says how to compare it with
another one (same machine, same commit, same torch) without reading the docs."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC 7B13"), or the architecture where /proc/cpuinfo is unreadable."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_record(record: dict, path: str | Path | None, quiet: bool = False) -> None:
    """The record as indented JSON at `path` (folders made; nothing written when None), then, unless `quiet`
    (a partial record written as it grows), as one line on stdout: the line run_all.py reads back."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=1) + "\n")
    if not quiet:
        print(json.dumps(record))


def environment(*packages: str) -> dict:
    """cpu, cores, python, the installed version of each of `packages` (None when absent), commit and date."""
    try:  # a GPU machine gets a copy of the tree, maybe without .git or git
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        commit_id = commit.stdout.strip() or None
    except OSError:
        commit_id = None
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **versions,
        "commit": commit_id,
        "date": datetime.date.today().isoformat(),
    }
