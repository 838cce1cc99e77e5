"""Distributions over one group of G samples (docs/design.md 2.1, 9) and the true token entropy.

LAD matches the policy-induced distribution P_pi(y_i) = r_i / sum_j r_j (r = pi_theta/pi_old) to the
advantage-induced one P_A(y_i) = exp(A_i/eta) / sum_j exp(A_j/eta), both normalised over the group's
samples. Beside them, softmax of the sequence log-probs shows how the policy itself ranks the samples.
"""

from __future__ import annotations

import torch

from ladkit.models.logprobs import token_logprobs


def group_distributions(
    advantages: torch.Tensor, log_ratios: torch.Tensor, sequence_logprobs: torch.Tensor, inverse_eta: float
) -> dict[str, torch.Tensor]:
    """advantage_dist, policy_dist and sequence_dist of one group, each [G] and summing to 1.

    advantages [G]; log_ratios [G] (log pi_theta(y) - log pi_old(y), summed over tokens);
    sequence_logprobs [G] (log pi_theta(y)); inverse_eta = 1/eta. Computed in float64 log space so large
    log-ratios or advantages never overflow (softmax subtracts the max).
    """
    return {
        "advantage_dist": torch.softmax(advantages.double() * inverse_eta, dim=-1),  # [G]
        "policy_dist": torch.softmax(log_ratios.double(), dim=-1),  # [G] normalised ratio
        "sequence_dist": torch.softmax(sequence_logprobs.double(), dim=-1),  # [G]
    }


def token_entropy(logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean true entropy (nats) of softmax(logits / temperature) over the tokens `mask` marks.

    logits [N, T, V], mask [N, T]. Reuses ladkit.models.logprobs.token_logprobs, which works a chunk of rows
    at a time, so the float32 working copy stays bounded whatever N is.
    """
    targets = torch.zeros(logits.shape[:2], dtype=torch.long, device=logits.device)  # [N, T] (unused picks)
    _, entropy = token_logprobs(logits, targets, temperature, with_entropy=True)  # [N, T]
    mask = mask.bool()  # [N, T]
    return float(torch.where(mask, entropy, 0.0).sum() / mask.sum().clamp(min=1))
