"""The rollout contract (ladkit/rollout/base.py), checked the same way on every backend, plain model.

Each test runs on `hf` and on `vllm` (marked `vllm`, skipped when vllm cannot be imported). The reference
for log-probs is a teacher-forced forward pass of the HF model (rollout_helpers.teacher_forced).
"""

from __future__ import annotations

import math

import pytest
import torch
from rollout_helpers import BACKEND_NAMES, LOGPROB_TOL, logprob_error, samples

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig

pytestmark = pytest.mark.parametrize("plain_backend", BACKEND_NAMES, indirect=True)

SAMPLING = SamplingConfig(max_new_tokens=6, temperature=1.0, seed=11)


def test_one_group_per_prompt_with_n_completions(plain_backend, prompts, tokenizer):
    groups = plain_backend.generate(prompts, n=4, sampling=SAMPLING)
    assert [g.prompt_ids for g in groups] == prompts  # one group per prompt, in order
    for group in groups:
        assert len(group.completions) == 4
        for completion in group.completions:
            assert 1 <= len(completion.token_ids) <= SAMPLING.max_new_tokens
            assert len(completion.logprobs) == len(completion.token_ids)
            assert all(math.isfinite(lp) and lp <= 0 for lp in completion.logprobs)
            assert completion.text == tokenizer.decode(completion.token_ids, skip_special_tokens=True)


def test_finish_reason_stop_ends_at_eos_and_length_at_max_new_tokens(plain_backend, prompts, tokenizer):
    # The tiny model emits EOS ~25% of the time at each step: over 8 samples x 3 prompts of <= 6 tokens,
    # both endings occur (fixed seed, so this is deterministic, not flaky).
    groups = plain_backend.generate(prompts, n=8, sampling=SAMPLING)
    reasons = set()
    for completion in (c for g in groups for c in g.completions):
        eos_positions = [i for i, t in enumerate(completion.token_ids) if t == tokenizer.eos_token_id]
        if completion.finish_reason == "stop":
            assert eos_positions == [len(completion.token_ids) - 1]  # EOS kept, and nothing after it
        else:
            assert completion.finish_reason == "length"
            assert eos_positions == [] and len(completion.token_ids) == SAMPLING.max_new_tokens
        reasons.add(completion.finish_reason)
    assert reasons == {"stop", "length"}


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingConfig(max_new_tokens=8, temperature=1.0, seed=1),
        SamplingConfig(max_new_tokens=8, temperature=0.7, seed=2),
        SamplingConfig(max_new_tokens=8, temperature=0.7, top_k=20, top_p=0.9, seed=3),
    ],
    ids=["t1", "t0.7", "t0.7-topk20-topp0.9"],
)
def test_logprobs_match_teacher_forcing(plain_backend, plain_model, prompts, sampling):
    groups = plain_backend.generate(prompts, n=3, sampling=sampling)
    assert logprob_error(plain_model, groups, sampling) < LOGPROB_TOL[plain_backend.name]


def test_same_seed_same_samples_other_seed_other_samples(plain_backend, prompts):
    first = plain_backend.generate(prompts, n=3, sampling=SAMPLING)
    again = plain_backend.generate(prompts, n=3, sampling=SAMPLING)
    other = plain_backend.generate(prompts, n=3, sampling=SamplingConfig(max_new_tokens=6, seed=12))
    assert samples(first) == samples(again)
    assert [[c.logprobs for c in g.completions] for g in first] == [[c.logprobs for c in g.completions] for g in again]
    assert samples(first) != samples(other)


def test_per_prompt_seeds_make_samples_independent_of_the_batch(plain_backend, prompts):
    # The trainer's per-prompt seeds: a prompt's samples must not depend on what else is in the call.
    together = plain_backend.generate(prompts, n=3, sampling=SAMPLING, seeds=[70, 71, 72])
    alone = plain_backend.generate(prompts[1:2], n=3, sampling=SAMPLING, seeds=[71])
    assert samples(alone)[0] == samples(together)[1]
    with pytest.raises(LadkitError, match="one seed per prompt"):
        plain_backend.generate(prompts, n=3, sampling=SAMPLING, seeds=[70])


def test_groups_of_one_call_are_independent(plain_backend, prompts):
    # The same prompt twice in one call must not get the same random stream (vLLM seeds per request).
    groups = plain_backend.generate([prompts[0], prompts[0]], n=4, sampling=SAMPLING)
    assert samples(groups)[0] != samples(groups)[1]


def test_full_weight_sync_samples_from_the_new_weights(plain_backend, plain_model, prompts):
    sampling = SamplingConfig(max_new_tokens=8, temperature=0.7, seed=5)
    original = {name: tensor.clone() for name, tensor in plain_model.state_dict().items()}
    try:
        with torch.no_grad():  # an "optimiser step" large enough to move every log-prob
            for parameter in plain_model.parameters():
                parameter.add_(torch.randn_like(parameter) * 0.05)
        plain_backend.sync_weights(plain_model)
        groups = plain_backend.generate(prompts, n=3, sampling=sampling)
        assert logprob_error(plain_model, groups, sampling) < LOGPROB_TOL[plain_backend.name]
        stale = {k: v.clone() for k, v in plain_model.state_dict().items()}
        plain_model.load_state_dict(original)
        assert logprob_error(plain_model, groups, sampling) > 1e-2  # the old weights would not explain them
        plain_model.load_state_dict(stale)
    finally:
        plain_model.load_state_dict(original)
        plain_backend.sync_weights(plain_model)  # leave the module's engine as it was
    groups = plain_backend.generate(prompts, n=3, sampling=sampling)
    assert logprob_error(plain_model, groups, sampling) < LOGPROB_TOL[plain_backend.name]


@pytest.mark.parametrize(
    ("prompt_ids", "n", "sampling"),
    [
        ([[5, 6]], 0, SAMPLING),
        ([], 2, SAMPLING),
        ([[5, 6], []], 2, SAMPLING),
        ([[5, 6]], 2, SamplingConfig(max_new_tokens=0)),
        ([[5, 6]], 2, SamplingConfig(temperature=0.0)),
        ([[5, 6]], 2, SamplingConfig(top_p=0.0)),
        ([[5, 6]], 2, SamplingConfig(top_k=-1)),
    ],
    ids=["n0", "no-prompts", "empty-prompt", "no-new-tokens", "temperature0", "top_p0", "top_k-1"],
)
def test_bad_requests_are_one_line_errors(plain_backend, prompt_ids, n, sampling):
    with pytest.raises(LadkitError) as error:
        plain_backend.generate(prompt_ids, n=n, sampling=sampling)
    assert "\n" not in str(error.value)
