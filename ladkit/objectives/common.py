"""Tensor helpers shared by the objectives: input checks, masked log-ratios, masked statistics."""

from __future__ import annotations

import torch

from ladkit.errors import LadkitError


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """fp32 at least: log-ratios and exponentials are never formed in bf16/fp16."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def check_inputs(logprobs, old_logprobs, advantages, mask) -> None:
    """Shapes must line up: logprobs/old_logprobs/mask [N, T], advantages [N]."""
    if logprobs.dim() != 2:
        raise LadkitError(f"logprobs must be [N, T], got shape {tuple(logprobs.shape)}")
    for name, t in (("old_logprobs", old_logprobs), ("mask", mask)):
        if t.shape != logprobs.shape:
            raise LadkitError(f"{name} has shape {tuple(t.shape)} but logprobs has {tuple(logprobs.shape)}")
    if advantages.shape != logprobs.shape[:1]:
        raise LadkitError(f"advantages must be [N]={logprobs.shape[0]}, got shape {tuple(advantages.shape)}")


def token_log_ratio(logprobs, old_logprobs, mask) -> torch.Tensor:
    """log pi_theta - log pi_old per token in fp32+, exactly 0 on padding (even if padding holds NaN)."""
    dtype = compute_dtype(logprobs)
    diff = logprobs.to(dtype) - old_logprobs.to(dtype).detach()  # [N, T]
    return torch.where(mask.bool(), diff, 0.0)  # [N, T]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over positions where mask is true; 0 when nothing is masked in."""
    m = mask.bool()
    return torch.where(m, values, 0.0).sum() / m.sum().clamp(min=1)


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    return torch.where(m, values, float("-inf")).max() if m.any() else values.new_zeros(())


def masked_min(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    return torch.where(m, values, float("inf")).min() if m.any() else values.new_zeros(())


def masked_means(values: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Masked means of several same-shaped tensors in one reduction (metrics are cheap this way)."""
    stacked = torch.stack([v.detach() for v in values.values()])  # [M, ...]
    means = _stacked_mean(stacked, mask)
    return dict(zip(values, means.unbind()))


def _stacked_mean(stacked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    total = torch.where(m, stacked, 0.0).flatten(1).sum(-1)  # [M]
    return total / m.sum().clamp(min=1)


def ratio_metrics(log_ratio: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Importance-ratio health and KL(pi_old || pi_theta) estimates (Schulman's k1, k3) over `mask`."""
    lr = log_ratio.detach()
    ratio = torch.exp(lr.clamp(max=30.0))
    means = masked_means(
        {
            "ratio/mean": ratio,
            "kl/old_k1": -lr,  # E_old[log pi_old - log pi]
            "kl/old_k3": torch.expm1(lr.clamp(max=30.0)) - lr,  # E_old[r - 1 - log r]
        },
        mask,
    )
    return {**means, "ratio/min": masked_min(ratio, mask), "ratio/max": masked_max(ratio, mask)}
