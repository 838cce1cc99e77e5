"""From rollout groups and rewards to the padded tensors the objectives take (typed records between stages).

Layout of a batch of N = B*G sequences (prompt b owns rows b*G .. b*G+G-1):

    input_ids   [N, P + T]  prompt left-padded to P, then the response right-padded to T
    attention   [N, P + T]  1 on real tokens
    response    [N, T]      1 on real response tokens (the objectives' `mask`)

The logits at position P-1+t predict response token t, so response log-probs come from
logits[:, P-1 : P+T-1] (ladkit.models.logprobs), with position ids that follow the attention mask as in
`generate`, so the trainer's log-probs of a left-padded prompt match the sampler's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from ladkit.rollout.base import RolloutGroup


@dataclass
class RolloutBatch:
    """One step's rollouts as tensors, plus the per-sample records logged to samples/."""

    input_ids: torch.Tensor  # [N, P + T]
    attention_mask: torch.Tensor  # [N, P + T]
    response_mask: torch.Tensor  # [N, T]
    sampler_logprobs: torch.Tensor  # [N, T] from the rollout backend
    rewards: torch.Tensor  # [B, G]
    advantages: torch.Tensor  # [N]
    prompt_length: int  # P
    group_index: torch.Tensor  # [N] which prompt (0..B-1) each row answers
    records: list[dict] = field(default_factory=list)  # one per row: prompt, completion, reward parts, ...
    valid: torch.Tensor | None = None  # [N] False where the reward could not be computed

    @property
    def num_sequences(self) -> int:
        return self.input_ids.shape[0]

    def to(self, device: torch.device) -> RolloutBatch:
        """Every tensor field on `device` (records stay Python objects)."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, torch.Tensor):
                setattr(self, spec.name, value.to(device))
        return self

    def rows(self, index: torch.Tensor) -> RolloutBatch:
        """The sub-batch of rows `index` (a mini- or micro-batch), tensors sliced, records kept whole."""
        return RolloutBatch(
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            response_mask=self.response_mask[index],
            sampler_logprobs=self.sampler_logprobs[index],
            rewards=self.rewards,
            advantages=self.advantages[index],
            prompt_length=self.prompt_length,
            group_index=self.group_index[index],
            valid=None if self.valid is None else self.valid[index],
        )


def pad_groups(
    groups: list[RolloutGroup], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(input_ids, attention_mask, response_mask, sampler_logprobs, P) for all completions, group-major."""
    prompts = [g.prompt_ids for g in groups for _ in g.completions]
    responses = [c.token_ids for g in groups for c in g.completions]
    logprobs = [c.logprobs for g in groups for c in g.completions]
    p = max(len(x) for x in prompts)
    t = max(1, max(len(x) for x in responses))
    n = len(prompts)
    input_ids = torch.full((n, p + t), pad_id, dtype=torch.long)  # [N, P+T]
    attention = torch.zeros((n, p + t), dtype=torch.long)  # [N, P+T]
    response_mask = torch.zeros((n, t), dtype=torch.bool)  # [N, T]
    sampler = torch.zeros((n, t), dtype=torch.float32)  # [N, T]
    for i, (prompt, response, lp) in enumerate(zip(prompts, responses, logprobs)):
        input_ids[i, p - len(prompt) : p] = torch.tensor(prompt, dtype=torch.long)
        attention[i, p - len(prompt) : p] = 1
        if response:
            input_ids[i, p : p + len(response)] = torch.tensor(response, dtype=torch.long)
            attention[i, p : p + len(response)] = 1
            response_mask[i, : len(response)] = True
            sampler[i, : len(lp)] = torch.tensor(lp, dtype=torch.float32)
    return input_ids, attention, response_mask, sampler, p
