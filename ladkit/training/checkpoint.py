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


def load_state(folder: Path, optimizer, scheduler, heads: dict[str, torch.nn.Module]) -> None:
    """Restore optimiser, scheduler and the objective's heads from a checkpoint folder (weights-only unpickling)."""
    try:
        state: dict[str, Any] = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise LadkitError(
            f"checkpoint {folder} has an unreadable {STATE_FILE} ({type(err).__name__}); delete it"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for name, module in heads.items():
        module.load_state_dict(state[f"module.{name}"])


def load_policy_weights(model, folder: Path) -> None:
    """Load the checkpoint's adapter (peft) or full weights into `model` in place."""
    from safetensors.torch import load_file

    policy = folder / "policy"
    if (policy / "adapter_model.safetensors").is_file():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(policy / "adapter_model.safetensors"))
        return
    files = sorted(policy.glob("*.safetensors"))
    if not files:
        raise LadkitError(f"checkpoint {folder} holds no weights; delete it and resume from an earlier one")
    state = {}
    for file in files:
        state.update(load_file(file))
    model.load_state_dict(state, strict=False)


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
