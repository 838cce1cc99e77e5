"""token_logprobs over a large vocabulary: chunked over rows and positions, recomputed in backward, it gives the
unchunked values and gradients and keeps no float32 [N, T, V] copy for autograd."""

from __future__ import annotations

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
@pytest.mark.parametrize("entropy_grad", [False, True])
def test_chunked_values_and_gradients_equal_the_unchunked_ones(monkeypatch, elements, entropy_grad):
    generator = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(N, T, V, generator=generator, dtype=torch.float64)).requires_grad_()
    targets = torch.randint(0, V, (N, T), generator=generator)
    weights = torch.randn(N, T, generator=generator, dtype=torch.float64)  # a loss that mixes every entry
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", elements)
    logprobs, entropy = lp.token_logprobs(logits, targets, 0.7, with_entropy=True, entropy_grad=entropy_grad)
    expected, expected_entropy = reference(logits, targets, 0.7)
    torch.testing.assert_close(logprobs.double(), expected.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy.double(), expected_entropy.detach(), atol=1e-5, rtol=1e-5)
    assert entropy.requires_grad == entropy_grad
    loss = (weights * logprobs).sum() + (entropy.sum() if entropy_grad else 0)
    (grad,) = torch.autograd.grad(loss, logits)
    expected_loss = (weights * expected).sum() + (expected_entropy.sum() if entropy_grad else 0)
    (expected_grad,) = torch.autograd.grad(expected_loss, logits)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-5)  # float32 maths inside: 1e-5


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


def test_autograd_keeps_no_float32_copy_of_the_logits(monkeypatch):
    # bf16 logits [4, 64, 4096]: a float32 copy is 4 MiB. Unchunked (one chunk) autograd saves >= that copy
    # (logsumexp's input); chunked with checkpointing it saves only the [N, T] outputs, whatever the chunk.
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 64, 4096, generator=generator).bfloat16().requires_grad_()  # [N, T, V]
    targets = torch.randint(0, 4096, (4, 64), generator=generator)
    copy_bytes = logits.numel() * 4

    def run():
        return lp.token_logprobs(logits, targets, with_entropy=True)[0]

    monkeypatch.setattr(lp, "_chunk", lambda *args: lp._chunk_stats(*args[:5]))  # the plain path: no checkpoint
    plain, plain_out = saved_float32_bytes(run)
    monkeypatch.undo()
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", 64 * 4096 // 4)  # 16 positions a chunk: 16 chunks
    chunked, chunked_out = saved_float32_bytes(run)
    assert plain >= copy_bytes
    assert chunked <= 4 * 64 * 4 * 4  # a few [N, T] float32 tensors at most, nothing of size V
    torch.testing.assert_close(chunked_out, plain_out)
    chunked_out.sum().backward()  # backward recomputes each chunk
    assert logits.grad is not None and torch.isfinite(logits.grad.float()).all()
