"""Fuzzing what `--resume` and `ladkit eval` read from a run or adapter folder before any model loads:
config.yaml, meta.json, a checkpoint's state.json, trainer_state.pt and adapter weights, and an adapter folder's
adapter_config.json. Each is replaced by random bytes, or a sound file truncated or bit-flipped.

The contract (issue 20.3): the folder is resumable / evaluable, or a one-line LadkitError; never another
exception, and the folder tree is unchanged (nothing written by a check). 200 derandomized cases, a few seconds.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from ladkit.errors import LadkitError
from ladkit.evaluation import _check_adapter
from ladkit.runs import RunWriter
from ladkit.training.checkpoint import STATE_FILE, checkpoint_dir, resume_point
from ladkit.training.setup import read_config

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    # each example works in its own temporary folder (not tmp_path)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def one_line(error: BaseException) -> None:
    assert str(error) and "\n" not in str(error), str(error)


def _state_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"optimizer": {"state": {}, "param_groups": []}, "scheduler": {"last_epoch": 3}}, buffer)
    return buffer.getvalue()


SOUND = {
    "config.yaml": yaml.safe_dump({"steps": 10, "objective": "lad", "lad": {"divergence": "js"}}).encode(),
    "meta.json": json.dumps({"status": "interrupted", "command": "train"}).encode(),
    "state.json": json.dumps({"step": 3}).encode(),
    STATE_FILE: _state_bytes(),
    "adapter_model.safetensors": save({"base_model.model.0.lora_A.weight": torch.ones(2, 4)}),
}
PLACES = {"config.yaml": "", "meta.json": "", "state.json": "ckpt", STATE_FILE: "ckpt",
          "adapter_model.safetensors": "ckpt/policy"}  # fmt: skip


def _damage(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(data[: len(data) * cut // 1000])
    for position, byte in flips if data else []:
        data[position % len(data)] = byte
    return bytes(data)


damaged_file = st.one_of(
    st.binary(max_size=200),
    st.tuples(
        st.integers(0, 1000), st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=4)
    ),  # a sound file cut at a thousandth of its length and bit-flipped
)


@FUZZ
@given(broken=st.dictionaries(st.sampled_from(sorted(SOUND)), damaged_file, min_size=1, max_size=3))
def test_fuzzed_run_folders_resume_or_refuse_in_one_line_and_write_nothing(broken):
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        RunWriter(run, {}, command="train").finish(status="interrupted")
        places = {"": run, "ckpt": checkpoint_dir(run, 3), "ckpt/policy": checkpoint_dir(run, 3) / "policy"}
        places["ckpt/policy"].mkdir(parents=True)
        for name, data in SOUND.items():
            damage = broken.get(name)
            if damage is not None:
                data = damage if isinstance(damage, bytes) else _damage(data, *damage)
            (places[PLACES[name]] / name).write_bytes(data)
        before = snapshot(Path(folder))
        for check in (lambda: read_config(run), lambda: resume_point(run, steps=10)):
            try:
                check()
            except LadkitError as error:
                one_line(error)
        assert snapshot(Path(folder)) == before


adapter_configs = st.one_of(
    st.binary(max_size=120),
    st.dictionaries(
        st.sampled_from(["peft_type", "r", "lora_alpha", "target_modules", "base_model_name_or_path", "task_type"]),
        st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=8), st.sampled_from(["LORA", "PROMPT_TUNING"])),
        max_size=5,
    ).map(lambda d: json.dumps(d).encode()),
)


@FUZZ
@given(config=adapter_configs, weights=st.one_of(st.none(), damaged_file))
def test_fuzzed_adapter_folders_are_checked_in_one_line(config, weights):
    with tempfile.TemporaryDirectory() as folder:
        adapter = Path(folder)
        (adapter / "adapter_config.json").write_bytes(config)
        if weights is not None:
            data = SOUND["adapter_model.safetensors"]
            data = weights if isinstance(weights, bytes) else _damage(data, *weights)
            (adapter / "adapter_model.safetensors").write_bytes(data)
        before = snapshot(adapter)
        try:
            _check_adapter(adapter)
        except LadkitError as error:
            one_line(error)
        assert snapshot(adapter) == before
