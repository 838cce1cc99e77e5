"""The shape alphabet and the typed records passed between stages.

Shapes are written once here and used in trailing comments (`# [N, T]`) everywhere:

    B  prompts in a batch
    G  samples (responses) per prompt; a "group"
    N  sequences in a batch, N = B * G (grouped contiguously: prompt b owns rows b*G .. b*G+G-1)
    T  response tokens (padded; `mask` marks the real ones)
    P  prompt tokens (left-padded)
    L  full sequence length, L = P + T
    H  hidden size of the model
    V  vocabulary size
    K  bandit arms

Log-probabilities are natural logs. `mask` is 1/True on response tokens that count, 0 on padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

LossLevel = Literal["sequence", "token"]


@dataclass
class ObjectiveOutput:
    """What every objective returns: unreduced losses plus detached scalar metrics.

    `losses` is [N] when `level == "sequence"` and [N, T] when `level == "token"`; a separate
    aggregation step (`ladkit.objectives.aggregate`) reduces it to the scalar that is backpropagated,
    so the reduction mode is a choice made once, not re-implemented in every loss.
    """

    losses: torch.Tensor  # [N] or [N, T]
    level: LossLevel
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> 0-d tensor (detached)
