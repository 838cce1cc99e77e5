"""token_logprobs over a large vocabulary: chunked over rows and positions, recomputed in backward, it gives the
unchunked values and gradients and keeps no float32 [N, T, V] copy for autograd."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.models import logprobs as lp

N, T, V = 3, 5, 11


def reference(logits: torch.Tensor, targets: torch.Tensor, temperature: float):
    """Unchunked float64 log-probs and entropies, straight from log_softmax. [N, T] each"""
    logsoftmax = torch.log_softmax(logits.double() / temperature, -1)  # [N, T, V]
    picked = logsoftmax.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T]
    return picked, -(logsoftmax.exp() * logsoftmax).sum(-1)


def test_chunk_shape_takes_whole_rows_then_positions(monkeypatch):
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 2 * T * V)
    assert lp.chunk_shape(N, T, V) == (2, T)  # two whole rows fit
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 2 * V)
    assert lp.chunk_shape(N, T, V) == (1, 2)  # not one row: two positions of one row
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 1)
    assert lp.chunk_shape(N, T, V) == (1, 1)  # at least one position


@pytest.mark.parametrize("elements", [1, 2 * V, T * V, 2 * T * V, 10**9])  # positions, rows, all at once
@pytest.mark.parametrize("entropy_grad", [False, True])  # the written-out backward, autograd with checkpointing
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])  # gradient built in place, via a scratch chunk
def test_chunked_values_and_gradients_equal_the_unchunked_ones(monkeypatch, elements, entropy_grad, dtype):
    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(N, T, V, generator=generator, dtype=torch.float64)).to(dtype).requires_grad_()
    targets = torch.randint(0, V, (N, T), generator=generator)
    weights = torch.randn(N, T, generator=generator, dtype=torch.float64)  # a loss that mixes every entry
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", elements)
    logprobs, entropy = lp.token_logprobs(logits, targets, 0.7, with_entropy=True, entropy_grad=entropy_grad)
    expected, expected_entropy = reference(logits, targets, 0.7)  # float64 autograd: the gradient's truth
    torch.testing.assert_close(logprobs.double(), expected.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy.double(), expected_entropy.detach(), atol=1e-5, rtol=1e-5)
    assert entropy.requires_grad == entropy_grad
    loss = (weights * logprobs).sum() + (entropy.sum() if entropy_grad else 0)
    (grad,) = torch.autograd.grad(loss, logits)
    expected_loss = (weights * expected).sum() + (expected_entropy.sum() if entropy_grad else 0)
    (expected_grad,) = torch.autograd.grad(expected_loss, logits)
    torch.testing.assert_close(grad, expected_grad.to(dtype), atol=1e-5, rtol=1e-5)  # float32 maths inside: 1e-5


def saved_float32_bytes(run) -> tuple[int, torch.Tensor]:
    """Bytes of float32 tensors autograd saves for backward while `run()` builds its graph, not counting views
    of tensors that existed before (the logits themselves). Measured with saved_tensors_hooks: works on a CPU."""
    existing, total = set(), 0

    def pack(tensor):
        nonlocal total
        pointer = tensor.untyped_storage().data_ptr()
        if tensor.dtype == torch.float32 and pointer not in existing:
            existing.add(pointer)
            total += tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = run()
    return total, output


@pytest.mark.parametrize("entropy_grad", [False, True])
def test_autograd_keeps_no_float32_copy_of_the_logits(monkeypatch, entropy_grad):
    # bf16 logits [4, 64, 4096]: a float32 copy is 4 MiB. Autograd through one plain chunk saves >= that copy
    # (logsumexp's input); token_logprobs saves only [N, T] float32 tensors, whatever the chunk: the written-out
    # backward keeps the bf16 logits and log Z, the checkpointed path the bf16 slices and its outputs.
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 64, 4096, generator=generator).bfloat16().requires_grad_()  # [N, T, V]
    targets = torch.randint(0, 4096, (4, 64), generator=generator)
    copy_bytes = logits.numel() * 4

    def run():
        return lp.token_logprobs(logits, targets, with_entropy=True, entropy_grad=entropy_grad)[0]

    plain, plain_out = saved_float32_bytes(lambda: lp._chunk_stats(logits, targets, 1.0, True, entropy_grad)[0])
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 64 * 4096 // 4)  # 16 positions a chunk: 16 chunks
    chunked, chunked_out = saved_float32_bytes(run)
    assert plain >= copy_bytes
    assert chunked <= 4 * 64 * 4 * 4  # a few [N, T] float32 tensors at most, nothing of size V
    torch.testing.assert_close(chunked_out, plain_out)
    (grad,) = torch.autograd.grad(chunked_out.sum(), logits)
    (plain_grad,) = torch.autograd.grad(plain_out.sum(), logits)
    assert grad.dtype == torch.bfloat16
    torch.testing.assert_close(grad, plain_grad)  # bf16 rounding of the same float32 gradient


def test_written_out_gradient_by_hand():
    # V = 2, logits (0, log 3), temperature 1: p = (1/4, 3/4). d log p(y=1) / dz = onehot(1) - p = (-1/4, 1/4);
    # at temperature 2, z = logits / 2 gives p = (1/(1+sqrt 3), sqrt 3/(1+sqrt 3)) and the gradient is halved.
    logits = torch.tensor([[[0.0, math.log(3.0)]]], requires_grad=True)  # [N=1, T=1, V=2]
    (grad,) = torch.autograd.grad(lp.token_logprobs(logits, torch.tensor([[1]]))[0].sum(), logits)
    torch.testing.assert_close(grad, torch.tensor([[[-0.25, 0.25]]]))
    (grad,) = torch.autograd.grad(lp.token_logprobs(logits, torch.tensor([[1]]), 2.0)[0].sum(), logits)
    p0 = 1 / (1 + math.sqrt(3.0))
    torch.testing.assert_close(grad, torch.tensor([[[-p0 / 2, p0 / 2]]]))
