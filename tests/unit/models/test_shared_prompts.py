"""One prompt pass per group (ladkit.models.logprobs, "Shared prompt pass"): the same log-probs, entropies, prompt
hidden states and gradients as the full forward, on groups of different sizes and prompt lengths, and the
full forward for models whose cache cannot be repeated."""

from __future__ import annotations

import pytest
import torch

from ladkit.models import logprobs as lp
from ladkit.models.loading import ModelConfig, load_policy

# Three prompts (lengths 5, 2, 4) answered by groups of 3, 1 and 2 rows; every response differs.
PROMPT_LENGTHS, GROUP_SIZES, RESPONSE_LENGTHS = (5, 2, 4), (3, 1, 2), (3, 4, 1, 2, 4, 3)


def _grouped_batch(vocab: int, pad: int, seed: int = 0):
    """(input_ids [N, P+T], attention_mask [N, P+T], response_mask [N, T], prompt_index [N]) in the rollout
    layout: prompts left-padded, responses right-padded, a group's rows adjacent."""
    generator = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(4, vocab, (p,), generator=generator) for p in PROMPT_LENGTHS]
    index = [i for i, size in enumerate(GROUP_SIZES) for _ in range(size)]  # [N]
    responses = [torch.randint(4, vocab, (r,), generator=generator) for r in RESPONSE_LENGTHS]
    P, T, N = max(PROMPT_LENGTHS), max(RESPONSE_LENGTHS), len(index)
    input_ids = torch.full((N, P + T), pad)
    attention_mask = torch.zeros(N, P + T, dtype=torch.long)
    response_mask = torch.zeros(N, T, dtype=torch.bool)
    for row, (i, response) in enumerate(zip(index, responses)):
        prompt = prompts[i]
        input_ids[row, P - len(prompt) : P] = prompt
        input_ids[row, P : P + len(response)] = response
        attention_mask[row, P - len(prompt) : P + len(response)] = 1
        response_mask[row, : len(response)] = True
    return input_ids, attention_mask, response_mask, torch.tensor(index)


def _row_counts(model) -> list[tuple[int, int]]:
    """Records the [rows, columns] of every forward through the embeddings."""
    shapes: list[tuple[int, int]] = []
    model.get_input_embeddings().register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    return shapes


def _logprobs_and_grads(model, batch, prompt_index):
    input_ids, attention_mask, response_mask, _ = batch
    model.zero_grad()
    logprobs, entropy = lp.sequence_logprobs(
        model, input_ids, attention_mask, response_mask, 0.7, with_entropy=True, prompt_index=prompt_index
    )  # [N, T]
    weights = torch.linspace(-1, 1, logprobs.numel()).view_as(logprobs)  # a loss that touches every token
    (logprobs * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logprobs.detach(), entropy.detach(), grads


def test_shared_prompt_pass_equals_the_full_forward(model_dir, set_lora_b):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), lora_rank=4))
    set_lora_b(model)
    model.train()
    batch = _grouped_batch(len(tokenizer), tokenizer.pad_token_id)
    shapes = _row_counts(model)
    full = _logprobs_and_grads(model, batch, None)
    assert shapes == [(6, batch[0].shape[1])]  # one pass over all 6 rows and 9 columns
    shapes.clear()
    shared = _logprobs_and_grads(model, batch, batch[3])
    assert shapes == [(3, 5), (6, 4)]  # the 3 distinct prompts (P = 5 columns), then the 6 responses (T = 4)
    # Only float rounding differs (other matmul shapes): measured <= 6e-6 on the log-probs.
    torch.testing.assert_close(shared[0], full[0], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(shared[1], full[1], atol=2e-5, rtol=1e-5)
    assert full[2].keys() == shared[2].keys() and any("lora_A" in n for n in full[2])
    for name, grad in full[2].items():  # gradients reach the adapter through the repeated cache
        torch.testing.assert_close(shared[2][name], grad, atol=1e-5 * grad.abs().max().item() + 1e-8, rtol=1e-4)


def test_prompt_hidden_states_are_those_of_the_full_forward(llama_char_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora=False))
    input_ids, attention_mask, response_mask, index = _grouped_batch(len(tokenizer), tokenizer.pad_token_id)
    width = response_mask.shape[1]
    with torch.no_grad():
        full_blocks, full_hidden = lp.response_logit_blocks(model, input_ids, attention_mask, width, want_hidden=True)
        blocks, hidden = lp.response_logit_blocks(model, input_ids, attention_mask, width, index, want_hidden=True)
    full_logits, logits = torch.cat(full_blocks, 1), torch.cat(blocks, 1)  # [N, T, V] each
    assert len(full_blocks) == 1 and len(blocks) == 2  # the full forward, then the shared pass's two blocks
    assert hidden.shape == full_hidden.shape == (6, max(PROMPT_LENGTHS), model.config.hidden_size)
    real = attention_mask[:, : max(PROMPT_LENGTHS)].bool()  # pad columns hold whatever the model makes of them
    torch.testing.assert_close(hidden[real], full_hidden[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, full_logits, atol=1e-5, rtol=1e-5)


def test_rows_that_share_nothing_take_the_full_forward(llama_char_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora=False))
    input_ids, attention_mask, response_mask, _ = _grouped_batch(len(tokenizer), tokenizer.pad_token_id)
    shapes = _row_counts(model)
    with torch.no_grad():
        lp.sequence_logprobs(model, input_ids, attention_mask, response_mask, prompt_index=torch.arange(6))
    assert shapes == [tuple(input_ids.shape)]


def test_a_sliding_window_cache_falls_back_to_the_full_forward(tmp_path):
    # A sliding-window layer keeps only the window of its cache, so repeating it and appending responses is
    # not the full forward: such models take the full forward, decided at their first call.
    from transformers import AutoModelForCausalLM

    from ladkit.models.tiny import char_tokenizer, tiny_config

    tokenizer = char_tokenizer()
    config = tiny_config("qwen2", len(tokenizer), hidden=32, layers=2, heads=2, max_positions=64)
    config.use_sliding_window, config.sliding_window = True, 3
    config.layer_types = ["sliding_attention"] * 2
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    input_ids, attention_mask, response_mask, index = _grouped_batch(len(tokenizer), tokenizer.pad_token_id)
    shapes = _row_counts(model)
    with torch.no_grad():
        full, _ = lp.sequence_logprobs(model, input_ids, attention_mask, response_mask)
        first, _ = lp.sequence_logprobs(model, input_ids, attention_mask, response_mask, prompt_index=index)
        again, _ = lp.sequence_logprobs(model, input_ids, attention_mask, response_mask, prompt_index=index)
    assert model in lp._NO_SHARING
    assert shapes == [(6, 9), (3, 5), (6, 9), (6, 9)]  # the probe pass once, then full forwards only
    torch.testing.assert_close(first, full)
    torch.testing.assert_close(again, full)


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_row_chunks_do_not_change_token_logprobs(monkeypatch, rows):
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(5, 4, 7, generator=generator)  # [N, T, V]
    targets = torch.randint(0, 7, (5, 4), generator=generator)  # [N, T]
    expected = torch.log_softmax(logits.double(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T]
    monkeypatch.setattr(lp, "CHUNK_ELEMENTS", rows * 4 * 7)  # chunks of `rows` rows
    logprobs, entropy = lp.token_logprobs(logits, targets, with_entropy=True)
    assert logprobs.shape == entropy.shape == (5, 4)
    torch.testing.assert_close(logprobs.double(), expected, atol=1e-6, rtol=1e-6)


def test_response_positions_follow_the_mask_for_absolute_position_models():
    # GPT-2's learned positions would expose a response pass that numbered its columns from the padded width
    # (RoPE models are blind to such a shift): the shared pass must still equal the full forward.
    from transformers import GPT2Config, GPT2LMHeadModel

    from ladkit.models.tiny import char_tokenizer

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=32, bos_token_id=None, eos_token_id=None
    )
    model = GPT2LMHeadModel(config).eval()
    input_ids, attention_mask, response_mask, index = _grouped_batch(len(tokenizer), tokenizer.pad_token_id)
    shapes = _row_counts(model)
    with torch.no_grad():
        full, _ = lp.sequence_logprobs(model, input_ids, attention_mask, response_mask)
        shared, _ = lp.sequence_logprobs(model, input_ids, attention_mask, response_mask, prompt_index=index)
    assert shapes[1:] == [(3, 5), (6, 4)]  # the shared path ran
    torch.testing.assert_close(shared, full, atol=1e-5, rtol=1e-5)


def test_entropy_is_a_metric_without_gradient():
    # The trainer asks for entropies in the forward whose log-probs it trains on (the first mini-batch fills
    # pi_old from it): the entropy must not hold an [n, T, V] softmax in the autograd graph.
    logits = torch.randn(2, 3, 5, requires_grad=True)  # [N, T, V]
    logprobs, entropy = lp.token_logprobs(logits, torch.zeros(2, 3, dtype=torch.long), with_entropy=True)
    assert logprobs.requires_grad and not entropy.requires_grad
