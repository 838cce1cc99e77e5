"""Forward passes of the policy over a RolloutBatch: response log-probs, token entropy, prompt features.

The log-prob maths lives in ladkit.models.logprobs (fp32, logits only where needed, one prompt pass per
group); this module adds what the trainer needs around it: the FlowRL path that also returns the prompt's
hidden state, and FlowRL's log Z head.
"""

from __future__ import annotations

import torch

from ladkit.models.logprobs import response_logprobs_and_hidden
from ladkit.training.batch import RolloutBatch


def response_logprobs(
    model, batch: RolloutBatch, temperature: float, want_entropy: bool = False, want_hidden: bool = False,
    prefix_model=None, share_prompts: bool = True,
):  # fmt: skip
    """(logprobs [N, T], entropy [N, T] or None, prompt feature [N, H] or None) for `batch`.

    With `share_prompts` the rows of a group share one prompt pass (ladkit.models.logprobs, "Shared prompts");
    `prefix_model` is the unwrapped model when `model` is a DDP wrapper.
    """
    prompt_index = batch.group_index if share_prompts else None  # [N] or None: one forward over every row
    logprobs, entropy, hidden = response_logprobs_and_hidden(
        model, batch.input_ids, batch.attention_mask, batch.response_mask, temperature, want_entropy, prompt_index,
        prefix_model, want_hidden,
    )  # [N, T], [N, T] or None, [N, P, H] or None  # fmt: skip
    feature = prompt_feature(hidden, batch) if want_hidden else None
    return logprobs, entropy, feature


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
