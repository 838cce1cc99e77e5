"""The trainer knows objectives only through their registered Needs: the micro-batch weighting follows the
declared level and aggregation, and the inputs an objective declares (entropies, heads) reach its loss.

A toy token-level objective is registered for these tests (and removed after): loss_t = -A * logprob_t.
"""

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.objectives import OBJECTIVES, FlowRLConfig, GRPOConfig, LADConfig, Needs, Objective, objective_loss
from ladkit.training import optimise
from ladkit.training.batch import RolloutBatch
from ladkit.training.optimise import OldPolicy, micro_share
from ladkit.training.policy import PolicyForward
from ladkit.types import ObjectiveOutput

LENGTHS = [1, 2, 3, 2]  # response tokens of the 4 rows: 8 in the mini-batch
ADVANTAGES = [1.0, -2.0, 3.0, 0.5]
T, MAX_NEW_TOKENS = 3, 5


@dataclass
class ToyConfig:
    aggregation: str = "dapo"
    entropy: str = "none"


RECEIVED: list[dict] = []  # what the toy loss was called with, per call


def toy_loss(logprobs, old_logprobs, advantages, mask, config=None, *, ref_logprobs=None, with_metrics=True, **inputs):
    RECEIVED.append(inputs)
    losses = -advantages[:, None] * logprobs  # [N, T]
    if "entropy" in inputs:
        losses = losses - inputs["entropy"]  # an entropy bonus: its gradient flows only when declared "grad"
    return ObjectiveOutput(torch.where(mask, losses, 0.0), "token", {})


@pytest.fixture
def toy(monkeypatch):
    entry = Objective("toy", toy_loss, ToyConfig, lambda c: Needs("token", c.aggregation, entropy=c.entropy))
    monkeypatch.setitem(OBJECTIVES._entries, "toy", entry)
    RECEIVED.clear()
    return entry


def test_the_registered_objectives_declare_what_they_need():
    lad, grpo, flowrl = (OBJECTIVES.get(name) for name in ("lad", "grpo", "flowrl"))
    assert lad.needs_for(LADConfig()) == Needs("sequence")
    assert lad.needs_for(LADConfig(level="token", aggregation="dapo")) == Needs("token", "dapo")
    assert grpo.needs_for(GRPOConfig(aggregation="bnpo")) == Needs("token", "bnpo", reference=False)
    assert grpo.needs_for(GRPOConfig(beta=0.04)).reference  # a KL term needs the reference policy
    assert flowrl.needs_for(FlowRLConfig()) == Needs("sequence", heads=("log_z",))


@pytest.mark.parametrize(
    ("level", "aggregation", "expected"),
    [
        # micro-batch of rows 0, 1 (3 tokens) in a mini-batch of 4 rows (8 tokens)
        ("sequence", None, 2 / 4),  # a mean over sequences: its share of rows
        ("token", "grpo", 2 / 4),  # per-sequence means, then a mean over sequences
        ("token", "dr_grpo", 2 / 4),  # sum / (rows * max length): rows again
        ("token", "bnpo", 3 / 8),  # a mean over tokens: its share of tokens
        ("token", "dapo", 1.0),  # already divided by the mini-batch's 8 tokens
    ],
)
def test_micro_share_follows_the_declared_aggregation(level, aggregation, expected):
    assert micro_share(Needs(level, aggregation), 2, 4, 3.0, 8.0) == pytest.approx(expected)


def hand_gradient(aggregation: str) -> torch.Tensor:
    """d(mini-batch loss)/d logprob[i, t] of the toy loss -A_i * logprob_it, on real tokens (0 elsewhere)."""
    grad = torch.zeros(4, T)
    for i, (length, a) in enumerate(zip(LENGTHS, ADVANTAGES)):
        per_token = {
            "dapo": -a / 8,  # sum over the 8 tokens / 8
            "bnpo": -a / 8,  # mean over the 8 tokens
            "grpo": -a / (4 * length),  # mean over its tokens, then over the 4 rows
            "dr_grpo": -a / (4 * MAX_NEW_TOKENS),  # sum / (rows * max_completion_length)
        }[aggregation]
        grad[i, :length] = per_token
    return grad


def toy_batch() -> RolloutBatch:
    mask = torch.tensor([[t < n for t in range(T)] for n in LENGTHS])  # [4, T]
    ids = torch.arange(4)[:, None].repeat(1, 2 + T)  # [4, P + T]: column 0 names the row (the fake forward reads it)
    return RolloutBatch(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        response_mask=mask,
        sampler_logprobs=torch.zeros(4, T),
        rewards=torch.zeros(1, 4),
        advantages=torch.tensor(ADVANTAGES),
        prompt_length=2,
        group_index=torch.zeros(4, dtype=torch.long),
        valid=torch.ones(4, dtype=torch.bool),
    )


class RecordingOptimizer:
    """Keeps the gradient the step is taken with (mini_batch_step zeroes it afterwards)."""

    def __init__(self, parameter: torch.Tensor):
        self.parameter, self.gradients = parameter, []

    def step(self):
        self.gradients.append(self.parameter.grad.clone())

    def zero_grad(self, set_to_none=True):
        self.parameter.grad = None


def toy_context(config: ToyConfig, grad_accumulation: int, theta: torch.Tensor) -> SimpleNamespace:
    train = SimpleNamespace(
        objective="toy",
        objective_config=config,
        optim=SimpleNamespace(grad_accumulation=grad_accumulation, max_grad_norm=None, micro_batch_tokens=None),
        rollout=SimpleNamespace(temperature=1.0, max_new_tokens=MAX_NEW_TOKENS),
    )
    return SimpleNamespace(
        config=train,
        needs=OBJECTIVES.get("toy").needs_for(config),
        device=torch.device("cpu"),
        train_model=None,
        model=None,
        heads={},
        shared_prompt_pass=False,
        parameters=[theta],
        optimizer=RecordingOptimizer(theta),
        scheduler=SimpleNamespace(step=lambda: None, get_last_lr=lambda: [0.1]),
    )


@pytest.mark.parametrize("aggregation", ["dapo", "bnpo", "grpo", "dr_grpo"])
@pytest.mark.parametrize("grad_accumulation", [1, 2, 4])
def test_a_toy_token_level_objective_gets_the_mini_batch_gradient_at_any_accumulation(
    toy, monkeypatch, aggregation, grad_accumulation
):
    # The policy's log-probs are a leaf theta [4, T] (the fake forward reads each row's id from column 0), so the
    # gradient the optimiser steps with is d(loss)/d logprob, compared with the hand-derived mini-batch one.
    theta = torch.zeros(4, T, requires_grad=True)

    def forward(model, part, temperature, entropy="none", **kwargs):
        return PolicyForward(theta[part.input_ids[:, 0]], None, None)

    monkeypatch.setattr(optimise, "policy_forward", forward)
    ctx = toy_context(ToyConfig(aggregation), grad_accumulation, theta)
    old = OldPolicy(torch.zeros(4, T), torch.zeros(4, T), None, torch.zeros(4, dtype=torch.bool))
    metrics = optimise.mini_batch_step(ctx, toy_batch(), torch.arange(4), old)
    assert metrics is not None and len(RECEIVED) == grad_accumulation  # one loss call per micro-batch
    torch.testing.assert_close(ctx.optimizer.gradients[0], hand_gradient(aggregation))


def test_pending_pi_old_rows_are_filled_from_the_first_forward_before_the_loss(toy, monkeypatch):
    # The explicit fill step: rows left pending by the recomputation take the forward's detached log-probs.
    theta = torch.full((4, T), -0.5, requires_grad=True)

    def forward(model, part, *args, **kwargs):
        return PolicyForward(theta[part.input_ids[:, 0]], torch.ones(2, T), None)

    monkeypatch.setattr(optimise, "policy_forward", forward)
    ctx = toy_context(ToyConfig(), 2, theta)
    old = OldPolicy(
        torch.full((4, T), float("nan")),
        torch.full((4, T), float("nan")),
        None,
        torch.tensor([True, True, False, False]),
    )
    optimise.mini_batch_step(ctx, toy_batch(), torch.arange(4), old)
    assert not old.pending.any() and not old.logprobs.requires_grad
    assert torch.equal(old.logprobs[:2], torch.full((2, T), -0.5)) and torch.equal(old.entropy[:2], torch.ones(2, T))
    assert old.logprobs[2:].isnan().all()  # rows that were not pending are left as the recomputation set them


def test_objective_loss_passes_what_is_declared_and_names_what_is_missing(toy):
    lp, mask, adv = torch.zeros(2, T), torch.ones(2, T, dtype=torch.bool), torch.ones(2)
    objective_loss("toy", ToyConfig(), lp, lp, adv, mask, log_z=torch.zeros(2))  # undeclared: dropped
    assert RECEIVED[-1] == {}
    entropy = torch.full((2, T), 0.25)
    loss, _ = objective_loss("toy", ToyConfig("dapo", "detached"), lp, lp, adv, mask, entropy=entropy)
    assert RECEIVED[-1]["entropy"] is entropy
    assert loss.item() == pytest.approx(-0.25)  # sum of -0.25 over 6 tokens / 6 tokens
    with pytest.raises(LadkitError, match="needs 'entropy'"):
        objective_loss("toy", ToyConfig("dapo", "grad"), lp, lp, adv, mask)


def test_needs_are_validated():
    with pytest.raises(LadkitError, match="aggregation"):
        Needs("token")  # a token-level objective must say how its losses are reduced
    with pytest.raises(LadkitError, match="aggregation"):
        Needs("sequence", "dapo")
    with pytest.raises(LadkitError, match="entropy"):
        Needs("token", "grpo", entropy="yes")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from ladkit.models.tiny import build_tiny_model

    torch.manual_seed(0)
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama", "llama", hidden=32, heads=2, layers=1)
    return AutoModelForCausalLM.from_pretrained(path).float()


def reference_entropy(model, batch: RolloutBatch) -> torch.Tensor:
    """-sum p log p of each response token's distribution, straight from the full logits. [N, T]"""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # [N, L, V]
    logits = logits[:, batch.prompt_length - 1 : -1].float()  # [N, T, V]: position P-1+t predicts token t
    entropy = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)  # [N, T]
    return torch.where(batch.response_mask, entropy, 0.0)


def model_batch() -> RolloutBatch:
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 10, 11, 12]])  # [2, P + T], P = 2, no padding
    mask = torch.tensor([[True, True, True], [True, True, False]])  # [2, T]
    return RolloutBatch(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        response_mask=mask,
        sampler_logprobs=torch.zeros(2, T),
        rewards=torch.zeros(1, 2),
        advantages=torch.tensor([1.0, -1.0]),
        prompt_length=2,
        group_index=torch.zeros(2, dtype=torch.long),
        valid=torch.ones(2, dtype=torch.bool),
    )


@pytest.mark.parametrize("mode", ["detached", "grad"])
def test_the_trainer_feeds_token_entropies_to_an_objective_that_declares_them(toy, tiny_model, mode):
    # The entropies the loss receives are the current policy's (checked against -sum p log p of the full
    # logits); "detached" carries no gradient, "grad" carries exactly the gradient of that reference.
    batch, model = model_batch(), tiny_model
    ctx = toy_context(ToyConfig("dapo", mode), 1, torch.zeros(1))
    ctx.train_model = ctx.model = model
    forward = optimise.train_forward(ctx, batch, fill=False)
    old = OldPolicy(forward.logprobs.detach(), None, None, None)
    loss, _ = optimise.micro_batch_loss(ctx, batch, torch.arange(2), forward, old, mini_tokens=5.0)
    received = RECEIVED[-1]["entropy"]
    assert received is forward.entropy and received.requires_grad == (mode == "grad")
    expected = reference_entropy(model, batch)
    torch.testing.assert_close(received, expected.detach(), atol=1e-5, rtol=1e-5)
    if mode == "grad":
        weights = [p for p in model.parameters() if p.requires_grad]
        mine = torch.autograd.grad(received.sum(), weights, retain_graph=True)
        theirs = torch.autograd.grad(expected.sum(), weights)
        for a, b in zip(mine, theirs):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    loss.backward()  # the toy loss backpropagates in both modes


def test_no_entropy_is_computed_when_nobody_needs_it(toy, tiny_model):
    ctx = toy_context(ToyConfig(), 1, torch.zeros(1))
    ctx.train_model = ctx.model = tiny_model
    assert optimise.train_forward(ctx, model_batch(), fill=False).entropy is None
    assert optimise.train_forward(ctx, model_batch(), fill=True).entropy is not None  # pi_old's fill wants it
