"""Shared test setup: one CPU thread (small tensors, deterministic timings) and a few tiny fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def ragged_mask() -> torch.Tensor:
    """[N=3, T=4] response mask with lengths 3, 2 and 4 (every row has at least one real token)."""
    return torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)


@pytest.fixture
def central_diff() -> Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, float], torch.Tensor]:
    """d scalar_fn / d x by central differences, one entry of x at a time (use float64 inputs)."""

    def grad(scalar_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
        x = x.detach().clone()
        out = torch.zeros_like(x)
        flat, out_flat = x.view(-1), out.view(-1)
        with torch.no_grad():
            for i in range(flat.numel()):
                keep = flat[i].item()
                flat[i] = keep + h
                up = float(scalar_fn(x.clone()))
                flat[i] = keep - h
                down = float(scalar_fn(x.clone()))
                flat[i] = keep
                out_flat[i] = (up - down) / (2 * h)
        return out

    return grad
