"""Build ladkit's built-in default policy (the recipe behind data/builtin/countdown-char-llama/).

    python scripts/build_builtin_model.py                      # the shipped model (~4-5 min on one core)
    python scripts/build_builtin_model.py --steps 5 --out /tmp/x  # a smoke-size build

Random-inits a ~1M-parameter Llama with the char tokenizer, trains it briefly on solved compact countdown
problems from reasoning-gym, measures sampled accuracy on held-out problems, and writes an HF folder with
recipe.json (the command, seed, steps, wall time and accuracy). The library side is ladkit.models.warmstart.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import torch

from ladkit.models.builtin import shipped_path
from ladkit.models.warmstart import WarmStartConfig, build_builtin


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=shipped_path(), help="output folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the recipe is timed on 1)")
    for spec in fields(WarmStartConfig):
        parser.add_argument(f"--{spec.name.replace('_', '-')}", type=type(spec.default), default=spec.default)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = WarmStartConfig(**{spec.name: getattr(args, spec.name) for spec in fields(WarmStartConfig)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "scripts/build_builtin_model.py", *(argv if argv is not None else sys.argv[1:])])
    recipe = build_builtin(args.out, config, command=command)
    print(f"wrote {args.out} in {recipe['wall_seconds']:.0f}s: {recipe['eval']}")
    return recipe


if __name__ == "__main__":
    main(sys.argv[1:])
