"""The run folder writer: files, flushing, atomic writes, refusal to overwrite a run."""

import json
import math

import pytest
import yaml

from ladkit.errors import LadkitError
from ladkit.runs import RunWriter, to_jsonable, write_atomic


def test_run_folder_files_and_rows(tmp_path):
    writer = RunWriter(tmp_path / "run", {"a": 1, "nested": {"b": [1, 2]}}, command="test")
    writer.log({"step": 0, "x": 1.5})
    # flushed: a reader sees the row before the run finishes
    assert json.loads((tmp_path / "run/metrics.jsonl").read_text()) == {"step": 0, "x": 1.5}
    writer.log({"step": 1, "x": float("nan")})
    writer.write_json("summary.json", {"best": 2})
    writer.finish()
    rows = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert rows[1] == {"step": 1, "x": None}  # strict JSON: NaN is written as null
    assert yaml.safe_load((tmp_path / "run/config.yaml").read_text()) == {"a": 1, "nested": {"b": [1, 2]}}
    meta = json.loads((tmp_path / "run/meta.json").read_text())
    assert meta["status"] == "completed" and meta["command"] == "test" and "torch_version" in meta
    assert not list(tmp_path.glob("run/.*.tmp"))


def test_refuses_to_overwrite_a_run(tmp_path):
    RunWriter(tmp_path / "run", {}, command="test").finish()
    before = (tmp_path / "run/meta.json").read_text()
    with pytest.raises(LadkitError, match="already holds a run"):
        RunWriter(tmp_path / "run", {"other": 1}, command="test")
    assert (tmp_path / "run/meta.json").read_text() == before


def test_write_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "f.json"
    write_atomic(path, "one")
    write_atomic(path, "two")
    assert path.read_text() == "two"


def test_to_jsonable():
    import torch

    assert to_jsonable({"t": torch.tensor([1.0, math.inf]), "n": (1, 2)}) == {"t": [1.0, None], "n": [1, 2]}
