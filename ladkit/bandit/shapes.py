"""Advantage shapes for the bandit: one advantage per arm, standardised (mean 0, std 1 over arms).

The paper's controlled check uses a trimodal advantage: a mixture of three Gaussian bumps over the
arm index, standardised. `table` takes the user's own values (a list, or a file of numbers).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ladkit.errors import LadkitError
from ladkit.registry import Registry

Shape = Callable[[int], torch.Tensor]
SHAPES: Registry[Shape] = Registry("advantage shape")


def standardise(values: torch.Tensor) -> torch.Tensor:
    """(v - mean) / std over arms (population std), so 1/eta means the same for every shape."""
    std = values.std(unbiased=False)
    if not std > 0:
        raise LadkitError("advantage table is constant: every arm would get A = 0; give differing values")
    return (values - values.mean()) / std


def gaussian_mixture(num_arms: int, centres: Sequence[float], heights: Sequence[float], width: float) -> torch.Tensor:
    """Sum of Gaussian bumps at fractional positions `centres` of the arm range, standardised. [K]

    Centres are rounded to whole arms so each bump peaks on one arm (no tie between two arms).
    """
    index = torch.arange(num_arms, dtype=torch.float64)  # [K]
    scale = width * num_arms
    bumps = [h * torch.exp(-0.5 * ((index - round(c * (num_arms - 1))) / scale) ** 2) for c, h in zip(centres, heights)]
    return standardise(torch.stack(bumps).sum(0))


@SHAPES.register("trimodal")
def trimodal(num_arms: int) -> torch.Tensor:
    """The paper's shape: three separated bumps of slightly different heights."""
    return gaussian_mixture(num_arms, centres=(0.15, 0.5, 0.85), heights=(0.9, 1.0, 0.8), width=0.06)


@SHAPES.register("bimodal")
def bimodal(num_arms: int) -> torch.Tensor:
    return gaussian_mixture(num_arms, centres=(0.25, 0.75), heights=(1.0, 0.9), width=0.07)


@SHAPES.register("unimodal")
def unimodal(num_arms: int) -> torch.Tensor:
    return gaussian_mixture(num_arms, centres=(0.5,), heights=(1.0,), width=0.12)


@SHAPES.register("linear")
def linear(num_arms: int) -> torch.Tensor:
    return standardise(torch.arange(num_arms, dtype=torch.float64))


def _read_table_file(path: Path, spec: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise LadkitError(
            f"advantage table file {spec!r}: byte {error.start} is not UTF-8 (a binary file?); save the numbers as text"
        ) from None
    except OSError as error:
        raise LadkitError(f"advantage table file {spec!r} cannot be read ({error.strerror or error})") from None


def parse_table(spec: str) -> torch.Tensor:
    """Advantages from '0.1,0.5,-1' or from a file (.json list, or numbers split by commas/whitespace,
    '#' starting a comment)."""
    text = spec
    path = Path(spec)
    if not any(c in spec for c in ",\n") and path.suffix in {".json", ".txt", ".csv"}:
        if not path.is_file():
            raise LadkitError(f"advantage table file {spec!r} does not exist; give a path or comma-separated numbers")
        text = _read_table_file(path, spec)
    if path.suffix == ".json" and text is not spec:
        try:
            values = json.loads(text)
        except (ValueError, RecursionError) as err:  # bad syntax, a >4300-digit integer, nesting past the limit
            raise LadkitError(
                f"advantage table {spec!r} is not valid JSON ({getattr(err, 'msg', type(err).__name__)}); "
                "write a list of numbers"
            ) from None
        if not isinstance(values, list):
            raise LadkitError(f"advantage table {spec!r} must hold a JSON list of numbers")
        tokens = [str(v) for v in values]
    else:
        lines = [line.split("#", 1)[0] for line in text.splitlines()]  # '#' starts a comment
        tokens = [t for t in " ".join(lines).replace(",", " ").split() if t]
    numbers = []
    for i, token in enumerate(tokens):
        try:
            value = float(token)
        except ValueError:
            raise LadkitError(f"advantage table entry {i} ({token!r}) is not a number; give numbers only") from None
        if not math.isfinite(value):
            raise LadkitError(f"advantage table entry {i} is {token!r}; every advantage must be finite")
        numbers.append(value)
    if len(numbers) < 2:
        raise LadkitError(f"advantage table has {len(numbers)} value(s); a bandit needs at least 2 arms")
    return torch.tensor(numbers, dtype=torch.float64)


def make_advantages(shape: str, num_arms: int, table: str | None = None, standardised: bool = True) -> torch.Tensor:
    """Advantages [K] for a named shape, or for a user table when `shape == "table"`."""
    if shape == "table":
        if table is None:
            raise LadkitError("shape 'table' needs a table: pass --table '0.1,0.5,...' or a file path")
        values = parse_table(table)
        if len(values) != num_arms:
            raise LadkitError(f"advantage table has {len(values)} values but num_arms is {num_arms}; make them agree")
        return standardise(values) if standardised else values
    if num_arms < 2:
        raise LadkitError(f"num_arms (K) must be >= 2, got {num_arms}")
    return SHAPES.get(shape)(num_arms)
