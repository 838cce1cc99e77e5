"""Per-token log-probabilities (and entropies) of response tokens under a causal LM: what objectives consume.

Batches are laid out the way rollouts produce them and TRL's GRPO does: each row is prompt then response,
prompts left-padded and responses right-padded, so the response occupies the last T columns of `input_ids`
and `response_mask` [N, T] marks its real tokens. Log-probs are computed in float32 whatever the model
dtype (DESIGN.md 1: "in fp32"), one row at a time so a bf16 model never holds an fp32 [N, T, V] copy
outside autograd's own saved tensors.
"""

from __future__ import annotations

import torch


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, as HF `generate` and vLLM assign them (left padding aside)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [N, L]


def _response_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, width: int) -> torch.Tensor:
    """Logits at the `width` positions that predict the last `width` tokens (prompt logits are never built)."""
    inputs = dict(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
    )  # fmt: skip
    try:
        # logits_to_keep = width + 1: the last position's logits predict past the sequence and are dropped.
        logits = model(**inputs, logits_to_keep=width + 1).logits  # [N, T+1, V]
    except TypeError:  # an architecture without logits_to_keep: full logits, then slice
        logits = model(**inputs).logits  # [N, L, V]
    return logits[:, -(width + 1) : -1]  # [N, T, V]


def token_logprobs(
    logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(logits / temperature) at `targets`, and optionally the entropy of each token distribution.

    logits [N, T, V] (any float dtype), targets [N, T] -> float32 [N, T] (and [N, T] or None).
    Rows are done one at a time so the float32 copy of the logits is [T, V], not [N, T, V].
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logprobs, entropies = [], []
    for row_logits, row_targets in zip(logits, targets):
        scaled = row_logits.float() / temperature  # [T, V]
        log_normaliser = torch.logsumexp(scaled, dim=-1)  # [T]
        picked = scaled.gather(-1, row_targets.unsqueeze(-1)).squeeze(-1)  # [T]
        logprobs.append(picked - log_normaliser)  # [T]
        if with_entropy:
            # H = log Z - E_p[z]: one softmax, no log_softmax tensor kept.
            entropies.append(log_normaliser - (torch.softmax(scaled, dim=-1) * scaled).sum(-1))  # [T]
    entropy = torch.stack(entropies) if with_entropy else None  # [N, T]
    return torch.stack(logprobs), entropy  # [N, T]


def sequence_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [N, T] (float32) of the response tokens, and their token entropies when asked.

    input_ids, attention_mask: [N, L], prompt then response, the response in the last T columns.
    response_mask: [N, T], 1 on real response tokens. Masked entries of both outputs are 0.
    `temperature` must be the sampling temperature so the log-probs match the rollout's. Gradients flow
    unless the caller wraps this in `torch.no_grad()` (old and reference log-probs).
    """
    width = response_mask.shape[1]
    if input_ids.shape[1] <= width:
        raise ValueError(
            f"input_ids has {input_ids.shape[1]} columns; it needs the prompt before the {width} response ones"
        )
    logits = _response_logits(model, input_ids, attention_mask, width)  # [N, T, V]
    logprobs, entropy = token_logprobs(logits, input_ids[:, -width:], temperature, with_entropy)  # [N, T]
    mask = response_mask.bool()  # [N, T]
    # where, not multiply: a padded position may hold -inf (a masked vocabulary entry) and -inf * 0 is nan.
    logprobs = torch.where(mask, logprobs, torch.zeros_like(logprobs))  # [N, T]
    if entropy is not None:
        entropy = torch.where(mask, entropy, torch.zeros_like(entropy))  # [N, T]
    return logprobs, entropy
