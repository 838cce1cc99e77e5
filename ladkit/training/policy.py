"""Forward passes of the policy over a RolloutBatch: response log-probs, token entropy, prompt features.

The log-prob maths lives in ladkit.models.logprobs (fp32, row by row, logits only where needed); this module
adds what the trainer needs around it: the FlowRL path that also returns the prompt's hidden state, and
FlowRL's log Z head.
"""

from __future__ import annotations

import torch

from ladkit.models.logprobs import position_ids_from_mask, sequence_logprobs, token_logprobs
from ladkit.training.batch import RolloutBatch


def response_logprobs(
    model, batch: RolloutBatch, temperature: float, want_entropy: bool = False, want_hidden: bool = False
):
    """(logprobs [N, T], entropy [N, T] or None, prompt feature [N, H] or None) for `batch`."""
    mask = batch.response_mask
    if not want_hidden:
        logprobs, entropy = sequence_logprobs(
            model, batch.input_ids, batch.attention_mask, mask, temperature, with_entropy=want_entropy
        )
        return logprobs, entropy, None
    out = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=position_ids_from_mask(batch.attention_mask),
        output_hidden_states=True,
        use_cache=False,
    )
    t = mask.shape[1]
    logits = out.logits[:, -(t + 1) : -1]  # [N, T, V] the positions that predict the response tokens
    logprobs, entropy = token_logprobs(logits, batch.input_ids[:, -t:], temperature, want_entropy)  # [N, T]
    logprobs = torch.where(mask.bool(), logprobs, torch.zeros_like(logprobs))
    return logprobs, entropy, prompt_feature(out.hidden_states[-1], batch)


def prompt_feature(hidden: torch.Tensor, batch: RolloutBatch) -> torch.Tensor:
    """Mean last-layer hidden state over the real prompt tokens (FlowRL's log Z input). [N, H]"""
    prompt_mask = batch.attention_mask[:, : batch.prompt_length].unsqueeze(-1).to(hidden.dtype)  # [N, P, 1]
    summed = (hidden[:, : batch.prompt_length] * prompt_mask).sum(1)  # [N, H]
    return (summed / prompt_mask.sum(1).clamp(min=1)).float()  # [N, H]


class LogZHead(torch.nn.Module):
    """FlowRL's learned log partition log Z(x): a small MLP on the detached mean prompt hidden state.

    Trained with the policy, saved in checkpoints, never synced into the rollout engine.
    """

    def __init__(self, hidden_size: int, width: int = 128):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(hidden_size, width), torch.nn.GELU(), torch.nn.Linear(width, 1))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.net(feature.detach()).squeeze(-1)  # [N]
