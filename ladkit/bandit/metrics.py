"""How close a learned distribution over arms is to the target, and which of its modes it kept.

Modes of the target softmax(A/eta): its local maxima, each owning the basin of arms between the
minima on either side. A basin holding less than `MIN_MODE_MASS` of the target is noise, not a mode.
A mode is *kept* when the policy puts at least `KEEP_FRACTION` of the target's mass on its basin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MIN_MODE_MASS = 0.05
KEEP_FRACTION = 0.5


def tv_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total variation 1/2 sum |p - q| over the last axis. [...]"""
    return 0.5 * (p - q).abs().sum(-1)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Shannon entropy in nats; 0 log 0 = 0. [...]"""
    return -torch.where(p > 0, p * p.clamp(min=1e-30).log(), 0.0).sum(-1)


@dataclass(frozen=True)
class Modes:
    """The target's modes: their peak arms and basin membership."""

    peaks: list[int]
    basins: torch.Tensor  # [M, K] 0/1 membership of each arm in each mode's basin
    target_mass: torch.Tensor  # [M] target probability on each basin

    def mass(self, probs: torch.Tensor) -> torch.Tensor:
        """Probability a distribution puts on each basin. [M]"""
        return self.basins @ probs.to(self.basins.dtype)

    def kept(self, probs: torch.Tensor) -> int:
        return int((self.mass(probs) >= KEEP_FRACTION * self.target_mass).sum())


def find_modes(target: torch.Tensor) -> Modes:
    """Local maxima of `target` [K] and their basins (split at the lowest arm between two peaks)."""
    p = target.double()
    k = p.numel()
    left = torch.cat([p.new_tensor([-1.0]), p[:-1]])  # [K]
    right = torch.cat([p[1:], p.new_tensor([-1.0])])  # [K]
    candidates = ((p >= left) & (p > right)).nonzero().flatten().tolist()  # plateaus count once
    bounds = [0]
    for a, b in zip(candidates, candidates[1:]):
        bounds.append(a + int(torch.argmin(p[a : b + 1])))  # the valley arm starts the next basin
    bounds.append(k)
    basins, peaks = [], []
    for peak, start, stop in zip(candidates, bounds[:-1], bounds[1:]):
        member = torch.zeros(k, dtype=torch.float64)
        member[start:stop] = 1.0
        if float(member @ p) >= MIN_MODE_MASS:
            basins.append(member)
            peaks.append(peak)
    stack = torch.stack(basins) if basins else torch.zeros(0, k, dtype=torch.float64)
    return Modes(peaks=peaks, basins=stack, target_mass=stack @ p)
