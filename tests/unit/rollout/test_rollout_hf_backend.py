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


def test_inverse_cdf_picks_the_first_token_past_the_target():
    from ladkit.rollout.hf import inverse_cdf

    # cdf = [0.5, 0.5, 0.75, 1.0]: u * 1.0 below 0.5 -> token 0; at 0.5 the zero-probability token 1 ties with
    # token 0's cdf and is skipped -> token 2; past 0.75 -> token 3; u = 1 (rounding at the top) -> token 3.
    probs = torch.tensor([[0.5, 0.0, 0.25, 0.25]]).repeat(6, 1)
    u = torch.tensor([0.0, 0.49, 0.5, 0.74, 0.76, 1.0], dtype=torch.float64)
    assert inverse_cdf(probs, u).flatten().tolist() == [0, 0, 2, 2, 3, 3]
    # trailing zero-probability tokens (top-k cut) are never returned, even for u = 1
    assert inverse_cdf(torch.tensor([[0.5, 0.5, 0.0, 0.0]]), torch.tensor([1.0], dtype=torch.float64)).item() == 1


@pytest.mark.parametrize("block", [2, 3, 1], ids=["two-blocks", "padded-tail", "one-token-blocks"])
def test_two_level_inverse_cdf_follows_the_same_rules(block):
    from ladkit.rollout.hf import inverse_cdf

    # The same distribution searched in blocks: block masses [0.5, 0.5] (block 2), [0.75, 0.25] (block 3, the
    # last block one token long), then the position inside the block. u = 0.51: block 2 -> second block at
    # (0.51 - 0.5) / 0.5 = 0.02 of its mass -> token 2; block 3 -> first block at 0.68 of 0.75 -> cdf 0.51
    # inside [0.5, 0.5, 0.75] -> token 2, past the zero-probability token 1. u = 1 -> the top rule at each level.
    probs = torch.tensor([[0.5, 0.0, 0.25, 0.25]]).repeat(6, 1)
    u = torch.tensor([0.0, 0.49, 0.51, 0.74, 0.76, 1.0], dtype=torch.float64)
    assert inverse_cdf(probs, u, block).flatten().tolist() == [0, 0, 2, 2, 3, 3]
    # trailing zero-probability tokens are never returned, even for u = 1: with block 2 the whole second block
    # is zero, with block 3 the one-token tail block
    top_cut = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    assert inverse_cdf(top_cut, torch.tensor([1.0], dtype=torch.float64), block).item() == 1


def test_two_level_inverse_cdf_matches_the_flat_search_on_a_large_vocabulary():
    from ladkit.rollout.hf import inverse_cdf

    # 300 rows of a 50,000-token vocabulary (not a multiple of the block), a third of them top-k cut to 40
    # tokens: the block search picks the flat float64 search's token, except for a draw that lies within the
    # float32 rounding of the block masses (~1e-7 of the total) of a boundary between two tokens: measured, 8 of
    # 80,000 draws on random 49k-vocabulary rows. Any draw that differs must be such a draw.
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 50_000, generator=generator) * 3
    cut = logits[:100].topk(40, dim=-1)
    logits[:100] = torch.full_like(logits[:100], float("-inf")).scatter(-1, cut.indices, cut.values)
    probs = torch.softmax(logits, dim=-1)
    u = torch.rand(300, generator=generator, dtype=torch.float64)
    flat = inverse_cdf(probs, u, block=50_000)
    cdf = probs.double().cumsum(-1)
    cdf = cdf / cdf[:, -1:]  # [R, V], normalised: u's own scale
    for block in (None, 777):
        blocked = inverse_cdf(probs, u, block)
        differ = (blocked != flat).flatten().nonzero().flatten().tolist()
        assert len(differ) <= 2, (block, differ)
        for r in differ:  # u within 1e-6 of the boundary between the two tokens
            boundary = cdf[r, min(flat[r, 0], blocked[r, 0]).item()]
            assert abs(u[r] - boundary) < 1e-6, (block, r)
        assert all(probs[r, blocked[r, 0]] > 0 for r in range(300))
    # a tail token keeps its probability: token 30,000 of a row set to 1e-9, inside a block of the usual mass.
    # The search is monotone in u, so the u that pick it form an interval; its ends by bisection (60 halvings
    # of [0, 1] in float64): its width is the token's share of the row's total to float32's relative precision
    row = probs[100].clone()
    row[30_000] = 1e-9

    def first_u_reaching(token: int) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):
            middle = (low + high) / 2
            picked = inverse_cdf(row.unsqueeze(0), torch.tensor([middle], dtype=torch.float64)).item()
            low, high = (middle, high) if picked < token else (low, middle)
        return high

    width = first_u_reaching(30_001) - first_u_reaching(30_000)
    assert width == pytest.approx(1e-9 / float(row.double().sum()), rel=1e-5)


@pytest.mark.parametrize("block", [4, 2, 3])
def test_inverse_cdf_of_evenly_spread_uniforms_reproduces_the_distribution(block):
    from ladkit.rollout.hf import inverse_cdf

    # u_i = (i + 0.5) / N lands in token k's interval exactly N * p_k times (p_k * N integral here), searched
    # flat (block 4) or in blocks (no u_i is within rounding of a boundary: they sit half a step away)
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    n = 10_000
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    counts = torch.bincount(inverse_cdf(probs.expand(n, 4), u, block).flatten(), minlength=4)
    assert counts.tolist() == [1000, 2000, 3000, 4000]


def test_batched_sampler_draws_from_the_model_distribution(plain_model, tokenizer):
    # One prompt, 4000 one-token samples with distinct seeds: the frequency of each token matches softmax(logits)
    # within 5 standard errors (deterministic: fixed seeds).
    prompt = tokenizer.encode("12+3=")
    with torch.no_grad():
        probs = torch.softmax(plain_model(torch.tensor([prompt])).logits[0, -1].float(), -1)  # [V]
    backend = HFBackend(plain_model, tokenizer, batched_sampling=True)
    n = 4000
    groups = backend.generate([prompt], n=n, sampling=SamplingConfig(max_new_tokens=1, seed=5))
    tokens = torch.tensor([c.token_ids[0] for c in groups[0].completions])
    freq = torch.bincount(tokens, minlength=len(probs)).double() / n
    stderr = (probs.double() * (1 - probs.double()) / n).sqrt()
    assert float(((freq - probs.double()).abs() - 5 * stderr).max()) < 1e-3


def test_one_prefill_per_prompt_gives_the_samples_of_a_full_prefill(plain_model, tokenizer, prompts):
    # The n rows of a prompt start from one prefill of its distinct prompt (all but the last token), whose
    # cache is repeated to them; prefilling every row gives the same tokens and the same log-probs up to
    # float rounding.
    from ladkit.rollout import hf

    shapes: list[tuple[int, int]] = []
    hook = plain_model.get_input_embeddings().register_forward_pre_hook(
        lambda _m, args: shapes.append(tuple(args[0].shape))
    )
    backend = HFBackend(plain_model, tokenizer)
    try:
        shared = backend.generate(prompts, n=4, sampling=SAMPLING)
        width = max(len(p) for p in prompts)
        assert shapes[:2] == [(len(prompts), width - 1), (4 * len(prompts), 1)]  # prefill, then the last column
        hf._NO_SHARED_PROMPT_PASS.add(plain_model)
        shapes.clear()
        full = backend.generate(prompts, n=4, sampling=SAMPLING)
        assert shapes[0] == (4 * len(prompts), width)
    finally:
        hf._NO_SHARED_PROMPT_PASS.discard(plain_model)
        hook.remove()
    assert samples(shared) == samples(full)
    for group_a, group_b in zip(shared, full):
        for a, b in zip(group_a.completions, group_b.completions):
            torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=1e-5)
