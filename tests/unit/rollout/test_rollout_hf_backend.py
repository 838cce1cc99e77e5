"""What only the hf backend has to get right: it samples from the live training model in its process."""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import LOGPROB_TOL, load_model, logprob_error, samples

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig
from ladkit.rollout.hf import HFBackend

SAMPLING = SamplingConfig(max_new_tokens=6, temperature=0.7, seed=31)


def test_seeded_generate_leaves_the_global_rng_alone(plain_model, tokenizer, prompts):
    # A per-step seed must not reset the trainer's own random stream (dropout, shuffling).
    backend = HFBackend(plain_model, tokenizer)
    before = torch.get_rng_state()
    backend.generate(prompts, n=2, sampling=SAMPLING)
    assert torch.equal(torch.get_rng_state(), before)
    backend.generate(prompts, n=2, sampling=SamplingConfig(max_new_tokens=6))  # unseeded: uses the global RNG
    assert not torch.equal(torch.get_rng_state(), before)


def test_micro_batches_give_the_same_samples(plain_model, tokenizer, prompts):
    # Every row draws from its own seeded generator, so splitting the rows into micro-batches changes nothing.
    whole = HFBackend(plain_model, tokenizer).generate(prompts, n=3, sampling=SAMPLING)
    groups = HFBackend(plain_model, tokenizer, max_batch_size=2).generate(prompts, n=3, sampling=SAMPLING)
    assert samples(groups) == samples(whole)
    assert logprob_error(plain_model, groups, SAMPLING) < LOGPROB_TOL["hf"]


def test_checkpoint_generation_config_does_not_change_the_sampler(tiny_eos_path, tokenizer, prompts):
    # Instruct checkpoints ship top_k / repetition_penalty defaults; the rollout samples what SamplingConfig says.
    model = load_model(tiny_eos_path)
    model.generation_config.top_k = 1
    model.generation_config.repetition_penalty = 5.0
    groups = HFBackend(model, tokenizer).generate(prompts, n=4, sampling=SAMPLING)
    assert logprob_error(model, groups, SAMPLING) < LOGPROB_TOL["hf"]  # plain temperature-0.7 distribution
    assert len({tuple(t) for t in samples(groups)[0]}) > 1  # not greedy


def test_sync_weights_switches_to_the_given_model(plain_model, tiny_eos_path, tokenizer, prompts):
    other = load_model(tiny_eos_path)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    backend = HFBackend(plain_model, tokenizer)
    backend.sync_weights(other)
    groups = backend.generate(prompts, n=2, sampling=SAMPLING)
    assert logprob_error(other, groups, SAMPLING) < LOGPROB_TOL["hf"]


def test_close_drops_the_model(plain_model, tokenizer, prompts):
    backend = HFBackend(plain_model, tokenizer)
    backend.close()
    assert backend.model is None
    with pytest.raises(LadkitError, match="after close"):
        backend.generate(prompts, n=1, sampling=SAMPLING)
