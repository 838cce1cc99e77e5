"""Forward passes of the policy over a RolloutBatch (response log-probs, token entropies, prompt features)
and the extra trainable heads an objective can ask for (objectives.Needs.heads).

The log-prob maths lives in ladkit.models.logprobs (fp32, logits only where needed, one prompt pass per
group); this module adds what the trainer needs around it: the prompt feature (mean last-layer hidden state
over the prompt) and the heads built on it, e.g. FlowRL's log Z.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ladkit.models.logprobs import response_logprobs_and_hidden
from ladkit.training.batch import RolloutBatch


@dataclass
class PolicyForward:
    """One forward of the policy over a RolloutBatch."""

    logprobs: torch.Tensor  # [N, T] with gradient unless run under no_grad
    entropy: torch.Tensor | None  # [N, T] token entropies, or None when not asked for
    feature: torch.Tensor | None  # [N, H] mean prompt hidden state (the heads' input), or None


def policy_forward(
    model: torch.nn.Module,
    batch: RolloutBatch,
    temperature: float,
    entropy: str = "none",
    hidden: bool = False,
    prefix_model: torch.nn.Module | None = None,
    shared_prompt_pass: bool = True,
) -> PolicyForward:
    """Response log-probs of `batch`, with token entropies (`entropy`: "none", "detached" or "grad", see
    objectives.Needs) and the prompt feature (`hidden`) when asked.

    With `shared_prompt_pass` the rows of a group share one prompt pass (ladkit.models.logprobs, "Shared
    prompt pass"); `prefix_model` is the unwrapped model when `model` is a DDP wrapper.
    """
    prompt_index = batch.group_index if shared_prompt_pass else None  # [N] or None: one forward over every row
    logprobs, entropies, states = response_logprobs_and_hidden(
        model,
        batch.input_ids,
        batch.attention_mask,
        batch.response_mask,
        temperature,
        with_entropy=entropy != "none",
        prompt_index=prompt_index,
        prefix_model=prefix_model,
        want_hidden=hidden,
        entropy_grad=entropy == "grad",
    )  # [N, T], [N, T] or None, [N, P, H] or None
    return PolicyForward(logprobs, entropies, prompt_feature(states, batch) if hidden else None)


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


# Head name (objectives.Needs.heads) -> builder(hidden size) of a module mapping the prompt feature [N, H] to [N].
HEADS: dict[str, Callable[[int], torch.nn.Module]] = {"log_z": LogZHead}
