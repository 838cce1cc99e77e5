"""Checkpoints: `checkpoints/step_NNNNNN/` holds the policy weights in HF format (the peft adapter, or the
full model without LoRA), `trainer_state.pt` (optimiser, scheduler, FlowRL log Z head: tensors and plain
numbers only, loaded with `weights_only=True`) and `state.json`.

A checkpoint is written under a temporary name, fsynced, then renamed into place, so a killed process leaves
either a complete checkpoint or none; `latest` ignores leftovers. Nothing here unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ladkit.errors import LadkitError

STATE_FILE = "trainer_state.pt"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:06d}"


def save(run_dir: Path, step: int, model, optimizer, scheduler, heads: dict[str, torch.nn.Module], keep: int) -> Path:
    """Write the checkpoint of `step` atomically and prune all but the newest `keep`."""
    final = checkpoint_dir(run_dir, step)
    tmp = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "policy")
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        **{f"module.{name}": module.state_dict() for name, module in heads.items()},
    }
    torch.save(state, tmp / STATE_FILE)
    (tmp / "state.json").write_text(json.dumps({"step": step}))
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)  # the rename itself survives a power loss
    _prune(run_dir, keep)
    return final


def latest(run_dir: Path) -> tuple[int, Path] | None:
    """(step, folder) of the newest complete checkpoint, or None."""
    found = []
    for folder in (run_dir / "checkpoints").glob("step_*"):
        state = folder / "state.json"
        if state.is_file() and (folder / STATE_FILE).is_file():
            try:
                found.append((int(json.loads(state.read_text())["step"]), folder))
            except (ValueError, KeyError, json.JSONDecodeError):
                continue
    return max(found) if found else None


def read_state(folder: Path, heads: Sequence[str] = ()) -> dict[str, Any]:
    """trainer_state.pt of a checkpoint (weights-only unpickling), checked to hold what a resume loads."""
    try:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise _broken(folder, f"has an unreadable {STATE_FILE} ({type(err).__name__})") from None
    wanted = ["optimizer", "scheduler", *(f"module.{name}" for name in heads)]
    missing = [key for key in wanted if not isinstance(state, dict) or not isinstance(state.get(key), dict)]
    if missing:
        raise _broken(folder, f"has a {STATE_FILE} without {', '.join(missing)}")
    return state


def load_state(folder: Path, optimizer, scheduler, heads: dict[str, torch.nn.Module]) -> None:
    """Restore optimiser, scheduler and the objective's heads from a checkpoint folder (weights-only unpickling)."""
    state = read_state(folder, list(heads))
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for name, module in heads.items():
            module.load_state_dict(state[f"module.{name}"])
    except (ValueError, KeyError, RuntimeError, TypeError) as err:  # another model's or objective's state
        raise _broken(folder, f"has a {STATE_FILE} that does not fit this run ({_first_line(err)})") from None


def weight_files(folder: Path) -> list[Path]:
    """The checkpoint's safetensors files, each checked to be complete (its header and size agree)."""
    from safetensors import safe_open

    policy = folder / "policy"
    adapter = policy / "adapter_model.safetensors"
    files = [adapter] if adapter.is_file() else sorted(policy.glob("*.safetensors"))
    if not files:
        raise _broken(folder, "holds no weights")
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                list(handle.keys())
        except Exception as err:  # SafetensorError (truncated, not safetensors), OSError
            raise _broken(folder, f"has an unreadable {file.name} ({_first_line(err)})") from None
    return files


def load_policy_weights(model, folder: Path) -> None:
    """Load the checkpoint's adapter (peft) or full weights into `model` in place; weights of another shape or
    names this model does not have are a one-line error, never a silent partial load."""
    from safetensors.torch import load_file

    files = weight_files(folder)
    state = {key: value for file in files for key, value in load_file(file).items()}
    try:
        if files[0].name == "adapter_model.safetensors":
            from peft import set_peft_model_state_dict

            unexpected = set_peft_model_state_dict(model, state).unexpected_keys
        else:
            unexpected = model.load_state_dict(state, strict=False).unexpected_keys
    except (RuntimeError, ValueError, KeyError) as err:  # size mismatch: an adapter of another rank or model
        raise _broken(folder, f"has weights that do not fit the model ({_first_line(err)})") from None
    if unexpected:
        raise _broken(folder, f"has {len(unexpected)} weights the model lacks, e.g. {unexpected[0]}")


def check(folder: Path, heads: Sequence[str] = ()) -> None:
    """Everything of a checkpoint that can be checked without the model (before minutes of model loading)."""
    read_state(folder, heads)
    weight_files(folder)


def _broken(folder: Path, problem: str) -> LadkitError:
    return LadkitError(
        f"checkpoint {folder} {problem}; delete it to fall back to an earlier checkpoint "
        "(with none left, --resume restarts the run from step 0)"
    )


def _first_line(error: BaseException) -> str:
    """The error's first line, with the next one when it is a heading ("Error(s) in loading state_dict ...:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [type(error).__name__]
    return " ".join(lines[:2] if lines[0].endswith(":") else lines[:1])[:300]


def _prune(run_dir: Path, keep: int) -> None:
    folders = sorted((run_dir / "checkpoints").glob("step_*"))
    for folder in folders[:-keep]:
        shutil.rmtree(folder, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resume_point(run_dir: Path, steps: int, heads: Sequence[str] = ()) -> tuple[int, Path] | None:
    """(step, folder) a `--resume` continues from, checked before the model loads (meta.json, the checkpoint's
    files, the step against `steps`); None when the run has no complete checkpoint (it restarts from step 0)."""
    from ladkit.runs import read_meta

    read_meta(run_dir)
    found = latest(run_dir)
    if found is None:
        return None
    step, folder = found
    if step >= steps:  # steps lowered in config.yaml: the loop would not run and the final row would repeat
        raise LadkitError(
            f"run {run_dir} has a checkpoint at step {step}, past its steps = {steps}; raise steps in its "
            f"config.yaml above {step}, or evaluate the checkpoint with ladkit eval"
        )
    check(folder, heads)
    return found


class Schedule:
    """When to save: every `every_steps` steps, every `every_seconds` of wall time (so a long step count loses
    little to a kill), and at the last step. Under several processes the main one's clock decides for all."""

    def __init__(self, every_steps: int, every_seconds: float, world_size: int = 1):
        self.every_steps, self.every_seconds, self.world_size = every_steps, every_seconds, world_size
        self.last_save = time.monotonic()

    def due(self, step: int, last: int) -> bool:
        by_steps = bool(self.every_steps) and (step + 1) % self.every_steps == 0
        by_time = bool(self.every_seconds) and time.monotonic() - self.last_save >= self.every_seconds
        if self.world_size > 1 and self.every_seconds:
            by_time = _main_process_says(by_time)
        if by_steps or by_time or step == last:
            self.last_save = time.monotonic()
            return True
        return False


def _main_process_says(flag: bool) -> bool:
    import torch.distributed as dist

    box = [flag]
    dist.broadcast_object_list(box, src=0)  # every process saves at the same step, or the barrier hangs
    return bool(box[0])
