"""Hand-made run folders: tiny, with numbers chosen so means and deltas can be worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def write_run(folder: Path, objective: str, rows: list[dict], status: str = "completed", seed: int = 0, **config):
    folder.mkdir(parents=True)
    config = {"objective": objective, "lad": {"divergence": "js"}, "seed": seed, **config}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "meta.json").write_text(json.dumps({"status": status}))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def write_rows(tmp_path):
    """write_rows(name, objective, rows): a run folder under tmp_path with these metric rows as they are."""
    return lambda name, objective, rows, **kwargs: write_run(tmp_path / name, objective, rows, **kwargs)


@pytest.fixture
def make_run(tmp_path):
    def make(name: str, objective: str, values: list[float], key: str = "reward/mean", **kwargs) -> Path:
        rows = [{"step": step, key: value} for step, value in enumerate(values)]
        return write_run(tmp_path / name, objective, rows, **kwargs)

    return make
