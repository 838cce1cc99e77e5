"""sequence_logprobs / token_logprobs against naive computations, on padded batches of both architectures."""

from __future__ import annotations

import math

import pytest
import torch

from ladkit.models.loading import ModelConfig, load_policy
from ladkit.models.logprobs import sequence_logprobs, token_logprobs

# (prompt, response) token-id lists of different lengths, so both paddings are exercised.
PROMPT_LENGTHS, RESPONSE_LENGTHS = (5, 2, 4), (3, 4, 1)


def _batch(vocab: int, pad: int, seed: int = 0):
    """Left-padded prompts + right-padded responses, the rollout layout. Returns the batch and the raw rows."""
    generator = torch.Generator().manual_seed(seed)
    rows = [
        (torch.randint(4, vocab, (p,), generator=generator), torch.randint(4, vocab, (r,), generator=generator))
        for p, r in zip(PROMPT_LENGTHS, RESPONSE_LENGTHS)
    ]
    P, T = max(PROMPT_LENGTHS), max(RESPONSE_LENGTHS)
    input_ids = torch.full((len(rows), P + T), pad)  # [N, P+T]
    attention_mask = torch.zeros(len(rows), P + T, dtype=torch.long)  # [N, P+T]
    response_mask = torch.zeros(len(rows), T, dtype=torch.bool)  # [N, T]
    for i, (prompt, response) in enumerate(rows):
        input_ids[i, P - len(prompt) : P] = prompt
        input_ids[i, P : P + len(response)] = response
        attention_mask[i, P - len(prompt) : P + len(response)] = 1
        response_mask[i, : len(response)] = True
    return input_ids, attention_mask, response_mask, rows


def _naive(model, prompt, response, temperature):
    """One unpadded sequence through the model, full log_softmax, read off the response tokens."""
    ids = torch.cat([prompt, response]).unsqueeze(0)  # [1, L]
    logits = model(input_ids=ids).logits[0].double() / temperature  # [L, V]
    logprobs = torch.log_softmax(logits, dim=-1)  # [L, V]
    positions = torch.arange(len(prompt) - 1, len(prompt) + len(response) - 1)  # predictors of the response
    picked = logprobs[positions, response]  # [R]
    entropy = -(logprobs[positions].exp() * logprobs[positions]).sum(-1)  # [R]
    return picked, entropy


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_equals_naive_per_sequence(model_dir, temperature):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), lora=False))
    input_ids, attention_mask, response_mask, rows = _batch(len(tokenizer), tokenizer.pad_token_id)
    with torch.no_grad():
        logprobs, entropy = sequence_logprobs(
            model, input_ids, attention_mask, response_mask, temperature, with_entropy=True
        )  # [N, T]
        for i, (prompt, response) in enumerate(rows):
            picked, expected_entropy = _naive(model, prompt, response, temperature)
            torch.testing.assert_close(logprobs[i, : len(response)].double(), picked, atol=2e-5, rtol=1e-5)
            torch.testing.assert_close(entropy[i, : len(response)].double(), expected_entropy, atol=2e-5, rtol=1e-5)
    assert logprobs.dtype == torch.float32
    assert (logprobs[~response_mask] == 0).all() and (entropy[~response_mask] == 0).all()


def test_finite_checks_and_gradients(llama_char_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora_rank=4))
    input_ids, attention_mask, response_mask, _ = _batch(len(tokenizer), tokenizer.pad_token_id, seed=1)
    logprobs, entropy = sequence_logprobs(model, input_ids, attention_mask, response_mask, with_entropy=True)
    real = logprobs[response_mask]
    assert torch.isfinite(logprobs).all() and (real < 0).all()
    vocab = model.get_input_embeddings().num_embeddings
    assert (entropy[response_mask] > 0).all() and (entropy <= math.log(vocab) + 1e-5).all()
    logprobs.sum().backward()  # gradients reach the adapter
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_higher_temperature_flattens(llama_char_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora=False))
    batch = _batch(len(tokenizer), tokenizer.pad_token_id)[:3]
    with torch.no_grad():
        _, cold = sequence_logprobs(model, *batch, temperature=0.5, with_entropy=True)  # [N, T]
        _, hot = sequence_logprobs(model, *batch, temperature=2.0, with_entropy=True)  # [N, T]
    assert (hot[batch[2]] > cold[batch[2]]).all()


def test_token_logprobs_match_log_softmax_in_any_dtype():
    generator = torch.Generator().manual_seed(0)
    logits = 4 * torch.randn(3, 5, 11, generator=generator)  # [N, T, V]
    targets = torch.randint(0, 11, (3, 5), generator=generator)  # [N, T]
    reference = torch.log_softmax(logits.double() / 0.8, -1)  # [N, T, V]
    expected = reference.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [N, T]
    expected_entropy = -(reference.exp() * reference).sum(-1)  # [N, T]
    logprobs, entropy = token_logprobs(logits, targets, 0.8, with_entropy=True)
    torch.testing.assert_close(logprobs.double(), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(entropy.double(), expected_entropy, atol=1e-5, rtol=1e-5)
    # bf16 logits: computed in fp32 from the rounded logits, so they match the rounded reference exactly-ish.
    rounded = logits.bfloat16()
    logprobs16, _ = token_logprobs(rounded, targets, 0.8)
    assert logprobs16.dtype == torch.float32
    expected16 = torch.log_softmax(rounded.double() / 0.8, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(logprobs16.double(), expected16, atol=1e-5, rtol=1e-5)
    assert token_logprobs(logits, targets)[1] is None


def test_probabilities_of_all_tokens_sum_to_one():
    # A hand check: with V = 2 and logits (0, log 3), p = (1/4, 3/4), so log-probs are log(1/4), log(3/4).
    logits = torch.tensor([[[0.0, math.log(3.0)]]]).expand(1, 2, 2)  # [N=1, T=2, V=2]
    logprobs, entropy = token_logprobs(logits, torch.tensor([[0, 1]]), with_entropy=True)
    torch.testing.assert_close(logprobs, torch.tensor([[math.log(0.25), math.log(0.75)]]))
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(entropy, torch.tensor([[h, h]]))


def test_rejects_a_batch_without_prompt_columns(llama_char_dir):
    model, _ = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora=False))
    ids = torch.ones(1, 3, dtype=torch.long)  # [N, L]
    with pytest.raises(ValueError, match="prompt"):
        sequence_logprobs(model, ids, torch.ones_like(ids), torch.ones(1, 3))


def test_positions_follow_the_mask_for_absolute_position_models(tmp_path):
    # RoPE models are blind to a constant position shift, so left padding cannot reveal wrong positions there;
    # GPT-2's learned absolute positions can: the padded batch must still match the unpadded sequences.
    from transformers import GPT2Config, GPT2LMHeadModel

    from ladkit.models.tiny import char_tokenizer

    tokenizer = char_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=32))
    model.eval()
    input_ids, attention_mask, response_mask, rows = _batch(len(tokenizer), tokenizer.pad_token_id)
    with torch.no_grad():
        logprobs, _ = sequence_logprobs(model, input_ids, attention_mask, response_mask)  # [N, T]
        for i, (prompt, response) in enumerate(rows):
            picked, _ = _naive(model, prompt, response, 1.0)
            torch.testing.assert_close(logprobs[i, : len(response)].double(), picked, atol=2e-5, rtol=1e-5)


def test_matches_the_sampling_logprobs_of_generate(model_dir):
    # The trainer's log-probs of a rollout must equal the rollout's own (ratio 1 before any update).
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(model_dir), lora=False))
    batch = tokenizer(["the quick", "a"], return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(
        **batch,
        do_sample=True,
        temperature=0.8,
        top_k=0,
        max_new_tokens=5,
        min_new_tokens=5,
        return_dict_in_generate=True,
        output_logits=True,
        pad_token_id=tokenizer.pad_token_id,
    )
    response = out.sequences[:, batch["input_ids"].shape[1] :]  # [N, T]
    step_logits = torch.stack(out.logits, dim=1).double() / 0.8  # [N, T, V]
    expected = torch.log_softmax(step_logits, -1).gather(-1, response.unsqueeze(-1)).squeeze(-1)  # [N, T]
    attention_mask = torch.cat([batch["attention_mask"], torch.ones_like(response)], dim=1)  # [N, P+T]
    with torch.no_grad():
        logprobs, _ = sequence_logprobs(model, out.sequences, attention_mask, torch.ones_like(response), 0.8)
    torch.testing.assert_close(logprobs.double(), expected, atol=1e-4, rtol=1e-4)


class CountOnly(torch.nn.Module):
    """A causal LM whose logits_to_keep is a count only (`logits[:, -n:]`, as some architectures implement it)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, logits_to_keep: int = 0, **inputs):
        out = self.model(**inputs)
        out.logits = out.logits[:, -logits_to_keep:]  # 0 keeps all; indices: TypeError (no slice bound)
        return out


class NoKeep(torch.nn.Module):
    """A causal LM without logits_to_keep."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, position_ids, use_cache):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)


@pytest.mark.parametrize("wrapper", [CountOnly, NoKeep])
def test_models_without_logits_to_keep_indices_get_the_same_logprobs_and_gradients(llama_char_dir, wrapper):
    # The trainer asks the lm_head for the T predicting columns only (logits_to_keep as indices); a model that
    # cannot take them falls back to the full logits, indexed: same values, same gradients, remembered.
    from ladkit.models import logprobs as lp

    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora_rank=4))
    input_ids, attention_mask, response_mask, _ = _batch(len(tokenizer), tokenizer.pad_token_id, seed=2)
    results = []
    for policy in (model, wrapper(model)):
        model.zero_grad()
        logprobs, _ = sequence_logprobs(policy, input_ids, attention_mask, response_mask)  # [N, T]
        logprobs.sum().backward()
        grads = [p.grad.clone() for n, p in model.named_parameters() if "lora_B" in n]
        results.append((logprobs.detach(), grads))
        assert (policy in lp._NO_LOGITS_TO_KEEP) == (policy is not model)
    torch.testing.assert_close(results[1][0], results[0][0])
    for fallback, direct in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(fallback, direct)


@pytest.mark.parametrize("wrapper", [None, CountOnly])
def test_the_hidden_states_path_runs_the_lm_head_on_the_response_columns_only(llama_char_dir, wrapper):
    # FlowRL's log Z head reads the last hidden states over the prompt columns; the same forward's logits are
    # needed at the T predicting columns only, so the lm_head sees [N, T, H] (a count-only model: all L columns,
    # indexed), and the values are the plain full forward's
    from ladkit.models.logprobs import response_logprobs_and_hidden

    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_char_dir), lora=False))
    input_ids, attention_mask, response_mask, _ = _batch(len(tokenizer), tokenizer.pad_token_id, seed=3)
    seen = []
    hook = model.lm_head.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    policy = model if wrapper is None else wrapper(model)
    with torch.no_grad():
        logprobs, _, hidden = response_logprobs_and_hidden(
            policy, input_ids, attention_mask, response_mask, want_hidden=True
        )  # [N, T], [N, P, H]
        hook.remove()
        reference, _ = sequence_logprobs(model, input_ids, attention_mask, response_mask)  # [N, T]
        full = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            output_hidden_states=True,
            position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
        )
    P, T = input_ids.shape[1] - response_mask.shape[1], response_mask.shape[1]
    # the count-only model fails on the indices after its forward, then runs the full one (and is remembered)
    assert seen == ([T] if wrapper is None else [P + T, P + T])
    torch.testing.assert_close(logprobs, reference)
    torch.testing.assert_close(hidden, full.hidden_states[-1][:, :P])
