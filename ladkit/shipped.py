"""Where the files of the repository's `data/` folder are: next to the package in a source checkout or an
editable install (`data/`), inside it in a wheel (`ladkit/data/`, installed as the package `ladkit.data`)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
ROOTS = (_PACKAGE / "data", _PACKAGE.parent / "data")
"""Wheel layout first: in site-packages, a sibling `data/` folder could belong to anything."""


def shipped_path(*parts: str) -> Path:
    """`data/<parts>` wherever this install keeps it; the wheel location when no install has it."""
    for root in ROOTS:
        if root.joinpath(*parts).exists():
            return root.joinpath(*parts)
    return ROOTS[0].joinpath(*parts)
