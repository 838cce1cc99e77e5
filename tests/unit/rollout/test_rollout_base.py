"""The backend-independent pieces of the contract (ladkit/rollout/base.py): checks, seeds, EOS trimming."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ladkit.errors import LadkitError
from ladkit.rollout.base import SamplingConfig, check_request, eos_ids, prompt_seeds, spread_seed, trim_at_eos


def test_check_request_returns_plain_int_lists():
    assert check_request(((5, 6), [7]), n=2, sampling=SamplingConfig()) == [[5, 6], [7]]


def test_trim_at_eos_keeps_the_eos_and_nothing_after():
    assert trim_at_eos([4, 9, 2, 0, 0], {2}) == (3, "stop")
    assert trim_at_eos([4, 9, 5], {2}) == (3, "length")
    assert trim_at_eos([2], {2}) == (1, "stop")


def test_eos_ids_merge_tokenizer_and_generation_config():
    tokenizer = SimpleNamespace(eos_token_id=2)
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 7]))
    assert eos_ids(tokenizer, model) == {2, 7}
    assert eos_ids(tokenizer) == {2}


def test_prompt_seeds_explicit_derived_or_none():
    assert prompt_seeds(2, SamplingConfig(seed=3), seeds=[10, 11]) == [10, 11]  # explicit seeds win
    assert prompt_seeds(2, SamplingConfig(seed=3), seeds=None) == [3_000_009, 3_000_010]
    assert prompt_seeds(2, SamplingConfig(), seeds=None) is None
    with pytest.raises(LadkitError, match="one seed per prompt"):
        prompt_seeds(3, SamplingConfig(), seeds=[1, 2])


def test_spread_seeds_keep_the_sample_streams_of_consecutive_prompt_seeds_apart():
    # Sample j of a prompt with seed s uses stream spread_seed(s) + j: with consecutive prompt seeds (the
    # trainer's step * B + i) and n samples each, all B * n streams must differ.
    batch, n = 64, 16
    streams = {spread_seed(seed) + j for seed in range(1000, 1000 + batch) for j in range(n)}
    assert len(streams) == batch * n
    assert all(0 <= spread_seed(s) < 2**62 for s in (-5, 0, 2**70))
