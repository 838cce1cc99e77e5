"""The built-in default policy: what `name_or_path="builtin"` means, and where its files are.

A ~1M-parameter LlamaForCausalLM with the character tokenizer, warm-started on compact countdown
(`"7,5,9,3->36:"` -> `"(7+5)*(9-3)"`), so `ladkit train` works on a fresh offline CPU machine with no model
argument. The weights ship in `data/builtin/countdown-char-llama/` (a few MB, recipe.json says how they were
made); when an install lacks them they are built once into the user cache (~5 minutes on one core).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BUILTIN_NAME = "countdown-char-llama"
# head_dim = hidden / heads = 64: vLLM's CPU attention kernels only take standard head sizes.
ARCHITECTURE = dict(hidden=128, layers=4, heads=2, kv_heads=2, intermediate=512, max_positions=128)
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def shipped_path() -> Path:
    """Where the install ships the built model: data/builtin/ in a checkout, ladkit/data/builtin/ in a wheel."""
    from ladkit.shipped import shipped_path as data_path

    return data_path("builtin", BUILTIN_NAME)


def cache_path() -> Path:
    """Where a build goes when the shipped copy is missing: $LADKIT_CACHE, else $XDG_CACHE_HOME/ladkit."""
    root = os.environ.get("LADKIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ladkit"
    return Path(root) / "builtin" / BUILTIN_NAME


def is_complete(path: Path) -> bool:
    """True when `path` holds a loadable built model."""
    return all((path / name).is_file() for name in _REQUIRED_FILES)


def builtin_model_path() -> Path:
    """The built-in model's folder: the shipped copy, else the cached build, else build it now (once)."""
    for path in (shipped_path(), cache_path()):
        if is_complete(path):
            return path
    target = cache_path()
    print(
        f"ladkit: the built-in model is not in this install; building it once into {target} "
        "(about 5 minutes on one CPU core)",
        file=sys.stderr,
    )
    from ladkit.models.warmstart import build_builtin

    target.parent.mkdir(parents=True, exist_ok=True)
    build_builtin(target, log=lambda line: print(f"ladkit: {line}", file=sys.stderr))
    return target


def new_builtin_model(seed: int = 0, **overrides):
    """A freshly initialised (untrained) built-in architecture and its char tokenizer; `overrides` resize it."""
    import torch
    from transformers import AutoModelForCausalLM

    from ladkit.models.tiny import char_tokenizer, tiny_config

    tokenizer = char_tokenizer()
    config = tiny_config(
        "llama",
        len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **{**ARCHITECTURE, **overrides},
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config), tokenizer
