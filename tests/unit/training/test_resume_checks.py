"""What `--resume` and `ladkit eval` check before a model loads, and the checkpoint schedule (issue 20.2/20.3):
a corrupt meta.json, a trainer_state.pt of `{}`, a truncated or foreign adapter, steps lowered below the newest
checkpoint; a run without a complete checkpoint restarts in place; wall-time checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from ladkit.errors import LadkitError
from ladkit.runs import RunWriter, clear_run, read_meta
from ladkit.training import checkpoint
from ladkit.training.checkpoint import STATE_FILE, Schedule, load_policy_weights, resume_point


def _run_with_checkpoint(tmp_path, step=3, state=None, weights=None):
    """A run folder with one complete checkpoint at `step` (trainer state and adapter given or well formed)."""
    run = tmp_path / "run"
    RunWriter(run, {"steps": 10}, command="train").finish(status="interrupted")
    folder = checkpoint.checkpoint_dir(run, step)
    (folder / "policy").mkdir(parents=True)
    torch.save(state if state is not None else {"optimizer": {}, "scheduler": {}}, folder / STATE_FILE)
    save_file(weights if weights is not None else {"a.lora_A.weight": torch.zeros(2, 4)},
              folder / "policy" / "adapter_model.safetensors")  # fmt: skip
    (folder / "state.json").write_text(json.dumps({"step": step}))
    return run, folder


def test_a_sound_run_resumes_from_its_newest_checkpoint(tmp_path):
    run, folder = _run_with_checkpoint(tmp_path, step=3)
    assert resume_point(run, steps=10) == (3, folder)


@pytest.mark.parametrize("meta", [b"\xff\xfe", b'{"status": ', b"[1, 2]", b"[" * 100_000])
def test_a_corrupt_meta_json_is_one_line(meta, tmp_path):
    run, _ = _run_with_checkpoint(tmp_path)
    (run / "meta.json").write_bytes(meta)
    with pytest.raises(LadkitError, match=r"meta\.json (is unreadable|holds a list).*restore it or start a new run"):
        resume_point(run, steps=10)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, "without optimizer, scheduler"),
        ({"optimizer": {}}, "without scheduler"),
        ([1], "without optimizer, scheduler"),  # not a mapping at all
    ],
)
def test_a_trainer_state_without_its_parts_is_one_line(state, expected, tmp_path):
    run, folder = _run_with_checkpoint(tmp_path, state=state)
    with pytest.raises(LadkitError, match=rf"checkpoint .*step_000003 has a {STATE_FILE} {expected}; delete it"):
        resume_point(run, steps=10)


def test_a_truncated_adapter_is_one_line_before_the_model_loads(tmp_path):
    run, folder = _run_with_checkpoint(tmp_path)
    adapter = folder / "policy" / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:-10])
    with pytest.raises(LadkitError, match=r"has an unreadable adapter_model\.safetensors \(.*\); delete it"):
        resume_point(run, steps=10)


def test_steps_lowered_below_the_newest_checkpoint_is_refused(tmp_path):
    # The newest checkpoint is step 7; with steps = 5 the loop would not run and the final row would repeat
    # (the duplicate metrics row of the issue). steps = 8 is fine: step 7 was the last, the final eval is left.
    run, folder = _run_with_checkpoint(tmp_path, step=7)
    with pytest.raises(LadkitError, match=r"checkpoint at step 7, past its steps = 5; raise steps"):
        resume_point(run, steps=5)
    assert resume_point(run, steps=8) == (7, folder)


def test_wrong_shape_or_foreign_weights_are_one_line_not_a_partial_load(tmp_path):
    from peft import LoraConfig, get_peft_model

    base = torch.nn.Sequential(torch.nn.Linear(4, 4))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["0"]))
    _, folder = _run_with_checkpoint(tmp_path, weights={"base_model.model.0.lora_A.weight": torch.zeros(3, 4)})
    with pytest.raises(LadkitError, match=r"has weights that do not fit the model \(.*size mismatch"):
        load_policy_weights(model, folder)
    _, folder = _run_with_checkpoint(tmp_path / "b", weights={"base_model.model.9.lora_A.weight": torch.zeros(2, 4)})
    with pytest.raises(LadkitError, match=r"has 1 weights the model lacks, e.g. base_model\.model\.9"):
        load_policy_weights(model, folder)
    # the right shape loads: the rank-2 A matrix of layer 0 becomes all ones
    _, folder = _run_with_checkpoint(tmp_path / "c", weights={"base_model.model.0.lora_A.weight": torch.ones(2, 4)})
    load_policy_weights(model, folder)
    assert torch.equal(model.base_model.model[0].lora_A["default"].weight, torch.ones(2, 4))


def test_a_run_without_a_checkpoint_restarts_in_place(tmp_path):
    run = tmp_path / "run"
    writer = RunWriter(run, {"steps": 10}, command="train")
    writer.log({"step": 0, "reward/mean": 0.5})
    (run / "tracked.jsonl").write_text("{}\n")
    (run / "samples").mkdir()
    (run / "checkpoints" / ".step_000000.tmp").mkdir(parents=True)
    (run / "notes.txt").write_text("mine")  # not ladkit's: stays
    assert resume_point(run, steps=10) is None
    assert clear_run(run) == 1
    assert sorted(p.name for p in run.rglob("*")) == ["checkpoints", "config.yaml", "notes.txt"]
    RunWriter(run, {"steps": 10}, command="train", resumed=1)
    assert read_meta(run)["resumed"] == 1 and read_meta(run)["status"] == "running"


def test_checkpoints_follow_steps_wall_time_and_the_last_step(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: now[0])
    schedule = Schedule(every_steps=50, every_seconds=600, world_size=1)
    saved = []
    for step in range(120):
        now[0] += 250.0  # each step takes 250 s: wall time is due every third step (750 s >= 600 s)
        if schedule.due(step, last=119):
            saved.append(step)
    # by time at steps 2, 5, 8, ... (every third); by steps at 49 and 99 (which also reset the clock); the last
    assert saved[:4] == [2, 5, 8, 11] and 49 in saved and 99 in saved and saved[-1] == 119
    assert all(b - a <= 3 for a, b in zip(saved, saved[1:]))  # never more than 750 s of work unsaved
    steps_only = Schedule(every_steps=50, every_seconds=0)
    assert [s for s in range(120) if steps_only.due(s, last=119)] == [49, 99, 119]


@pytest.mark.parametrize("content", [b"\xff\xfe binary", b'{"prompt": "p", "answer": '])
def test_a_bad_data_set_is_said_before_the_model_loads_and_no_run_folder_is_made(content, tmp_path, monkeypatch):
    from ladkit.config import build
    from ladkit.training import setup
    from ladkit.training.config import TrainConfig
    from ladkit.training.loop import train

    monkeypatch.setattr(setup, "load_policy", lambda *a, **k: pytest.fail("the model was loaded"))
    (tmp_path / "rows.jsonl").write_bytes(content)
    config = build(TrainConfig, {"task": {"name": "dataset", "dataset": {"path": str(tmp_path / "rows.jsonl")}}})
    with pytest.raises(LadkitError, match=r"rows\.jsonl"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
