"""Micro-batches sized by a token budget (optim.micro_batch_tokens): the split follows rows x padded length,
and the optimiser steps with the one-big-batch gradient whatever the split (float64, a tiny model, real
objectives of each declared level and aggregation)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import OBJECTIVES, GRPOConfig, LADConfig
from ladkit.training import optimise
from ladkit.training.batch import RolloutBatch
from ladkit.training.config import OptimConfig
from ladkit.training.optimise import OldPolicy, micro_batch_size
from ladkit.training.policy import policy_forward

CPU, GPU = torch.device("cpu"), torch.device("cuda")
LENGTHS = [1, 4, 2, 3, 4, 1]  # response tokens of the 6 rows (two groups of 3)
P, T = 3, 4  # padded prompt and response columns: width 7


@pytest.mark.parametrize(
    ("tokens", "accumulation", "device", "rows", "expected"),
    [
        (None, 1, CPU, 6, 6),  # unset on a CPU: today's split, grad_accumulation alone
        (None, 3, CPU, 6, 2),
        (None, 1, GPU, 6, 6),  # unset on a GPU: 16384 tokens, more than the 6 rows x 7 columns there are
        (None, 1, GPU, 10**6, 16384 // 7),  # the GPU budget binds on a large mini-batch
        (0, 2, GPU, 6, 3),  # 0: no budget anywhere
        (21, 1, CPU, 6, 3),  # 21 tokens = 3 rows of width 7
        (20, 1, CPU, 6, 2),  # never above the budget
        (3, 1, CPU, 6, 1),  # at least one row
        (28, 3, CPU, 6, 2),  # the tighter knob wins: grad_accumulation's 2 rows < the budget's 4
    ],
)
def test_micro_batch_size_follows_the_token_budget(tokens, accumulation, device, rows, expected):
    optim = OptimConfig(grad_accumulation=accumulation, micro_batch_tokens=tokens)
    assert micro_batch_size(optim, device, rows, P + T) == expected


def test_a_negative_budget_is_a_one_line_error():
    with pytest.raises(LadkitError, match="micro_batch_tokens"):
        OptimConfig(micro_batch_tokens=-1)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from ladkit.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama", hidden=16, heads=2, layers=1)
    return AutoModelForCausalLM.from_pretrained(path).double()


def padded_batch(vocabulary: int) -> RolloutBatch:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, vocabulary, (6, P + T), generator=generator)  # [6, P + T]
    ids[:, :P] = ids[[0, 0, 0, 3, 3, 3], :P]  # a group's rows share its prompt
    response = torch.tensor([[t < n for t in range(T)] for n in LENGTHS])  # [6, T]
    attention = torch.cat([torch.ones(6, P, dtype=torch.long), response.long()], 1)  # [6, P + T]
    attention[:3, 0] = 0  # group 0's prompt is left-padded
    return RolloutBatch(
        input_ids=ids,
        attention_mask=attention,
        response_mask=response,
        sampler_logprobs=torch.zeros(6, T),
        rewards=torch.zeros(2, 3),
        advantages=torch.tensor([1.0, -0.5, -0.5, 2.0, -1.0, -1.0], dtype=torch.float64),
        prompt_length=P,
        group_index=torch.tensor([0, 0, 0, 1, 1, 1]),
        valid=torch.ones(6, dtype=torch.bool),
    )


class Recorder:
    """The optimiser stand-in: keeps the gradients the step is taken with (mini_batch_step zeroes them after)."""

    def __init__(self, parameters):
        self.parameters, self.gradients = parameters, []

    def step(self):
        self.gradients.append([p.grad.clone() for p in self.parameters])

    def zero_grad(self, set_to_none=True):
        for p in self.parameters:
            p.grad = None


def context(model, objective: str, objective_config, tokens: int) -> SimpleNamespace:
    parameters = list(model.parameters())
    config = SimpleNamespace(
        objective=objective,
        objective_config=objective_config,
        optim=OptimConfig(micro_batch_tokens=tokens, max_grad_norm=None),
        rollout=SimpleNamespace(temperature=1.0, max_new_tokens=T),
    )
    return SimpleNamespace(
        config=config,
        needs=OBJECTIVES.get(objective).needs_for(objective_config),
        device=CPU,
        train_model=model,
        model=model,
        heads={},
        shared_prompt_pass=True,
        parameters=parameters,
        optimizer=Recorder(parameters),
        scheduler=SimpleNamespace(step=lambda: None, get_last_lr=lambda: [0.1]),
    )


OBJECTIVE_CASES = [
    ("lad", LADConfig()),  # sequence level: rows' share
    ("lad", LADConfig(level="token", aggregation="dapo")),  # summed micro losses
    ("grpo", GRPOConfig(aggregation="bnpo")),  # tokens' share
    ("grpo", GRPOConfig(aggregation="grpo")),
    ("grpo", GRPOConfig(aggregation="dr_grpo")),
]


@pytest.mark.parametrize(("objective", "objective_config"), OBJECTIVE_CASES)
def test_any_token_budget_gives_the_one_big_batch_gradient(tiny_model, objective, objective_config):
    batch = padded_batch(tiny_model.config.vocab_size)
    with torch.no_grad():
        current = policy_forward(tiny_model, batch, 1.0).logprobs  # [6, T]
    shift = 0.05 * torch.arange(6 * T, dtype=torch.float64).reshape(6, T).sin()  # pi_old != pi: ratios off 1
    old = OldPolicy(current + shift, torch.zeros(6, T), None, torch.zeros(6, dtype=torch.bool))
    gradients = {}
    for tokens in (0, 7, 14, 28):  # one micro-batch of 6 rows; 6 of 1; 3 of 2; 4 + 2 rows (uneven)
        ctx = context(tiny_model, objective, objective_config, tokens)
        assert optimise.mini_batch_step(ctx, batch, torch.arange(6), old) is not None
        gradients[tokens] = ctx.optimizer.gradients[0]
    for tokens in (7, 14, 28):
        for mine, whole in zip(gradients[tokens], gradients[0]):
            # float64 model, but log-probs are float32 by design (ladkit.models.logprobs): rounding ~1e-7; a
            # wrong micro-batch weight is off by a factor (e.g. 1/3 vs 1/2), far outside this.
            torch.testing.assert_close(mine, whole, atol=1e-6, rtol=1e-5)
    assert any(float(g.abs().max()) > 1e-6 for g in gradients[0])  # a real gradient, not zeros
