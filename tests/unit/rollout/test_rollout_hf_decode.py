"""The hf backend's decode modes: eager decoding in ladkit's own loop gives exactly the tokens and sampler
log-probs of transformers' generate() with the same sampler; a static key/value cache gives eager decoding's
tokens and log-probs under the same seeds; and the mode follows the device when unset.

The compiled step ("compiled": torch.compile's inductor on a CPU) is tested once, marked slow: compiling the
tiny model took 42 s on a busy 2-core machine (then 0.02 s a call against eager's 0.04 s). On a GPU
scripts/gpu_check.sh compares its tokens with eager's and times both (CUDA graphs).
"""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import LOGPROB_TOL, add_lora, load_model, logprob_error, samples, set_lora

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig, make_backend
from ladkit.rollout.hf import HFBackend, _decode_options, _left_pad, _sampling_mode, default_decode

SAMPLINGS = [
    SamplingConfig(max_new_tokens=7, temperature=0.7, seed=31),
    SamplingConfig(max_new_tokens=5, temperature=1.0, top_k=9, top_p=0.9, seed=4),
]


def cache_types(model) -> list[str]:
    """Record the class of the key/value cache each forward of `model`'s base receives (a forward pre-hook)."""
    seen: list[str] = []
    base = model.get_base_model() if hasattr(model, "get_base_model") else model

    def hook(module, args, kwargs):
        seen.append(type(kwargs.get("past_key_values")).__name__)

    base.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("sampling", [*SAMPLINGS, SamplingConfig(max_new_tokens=40, temperature=1.3, seed=8)])
@pytest.mark.parametrize("lora", [False, True])
def test_own_decode_loop_equals_generate(tiny_eos_path, tokenizer, prompts, sampling, lora, batched):
    """The loop makes the model calls generate() makes and samples with the same chooser: bit-equal tokens and
    log-probs, finished rows included (40 tokens at temperature 1.3: rows stop at different steps, so the pad
    continuation and the all-stopped exit both run; the tiny model samples EOS often)."""
    model = load_model(tiny_eos_path)
    if lora:
        model = add_lora(model)
        set_lora(model, seed=3)
    backend = HFBackend(model, tokenizer, decode="eager", batched_sampling=batched)
    rows = [p for p in prompts for _ in range(3)]
    seeds = [11 * i + 5 for i in range(len(rows))]
    with _sampling_mode(model):  # eval mode (LoRA dropout off) and no_grad, as generate() runs them
        mine_tokens, mine_logprobs = backend._decode_loop(rows, seeds, sampling)
        ref_tokens, ref_logprobs = backend._generate(rows, seeds, sampling, "eager")
    assert torch.equal(mine_tokens, ref_tokens)
    finished = torch.isin(mine_tokens, torch.tensor(sorted(backend.stop_ids))).any(1)
    if sampling.max_new_tokens == 40:
        assert finished.any() and mine_tokens.shape[1] <= 40  # some rows stopped early
    valid = torch.ones_like(mine_tokens, dtype=torch.bool)  # log-probs after a row's EOS are junk on both sides
    for r, row in enumerate(mine_tokens.tolist()):
        for t, token in enumerate(row):
            if token in backend.stop_ids:
                valid[r, t + 1 :] = False
                break
    assert torch.equal(mine_logprobs[valid], ref_logprobs[valid])


@pytest.mark.parametrize("sampling", SAMPLINGS)
@pytest.mark.parametrize("lora", [False, True])
def test_static_cache_decodes_the_eager_tokens_and_logprobs(tiny_eos_path, tokenizer, prompts, sampling, lora):
    model = load_model(tiny_eos_path)
    if lora:
        model = add_lora(model)
        set_lora(model, seed=3)
    eager = HFBackend(model, tokenizer, decode="eager").generate(prompts, n=3, sampling=sampling)
    seen = cache_types(model)
    static = HFBackend(model, tokenizer, decode="static").generate(prompts, n=3, sampling=sampling)
    assert set(seen) == {"StaticCache"}  # every forward of the static run used the preallocated cache
    assert samples(static) == samples(eager)
    for mine, theirs in zip(static, eager):
        for a, b in zip(mine.completions, theirs.completions):
            assert a.finish_reason == b.finish_reason
            torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=1e-5)
    assert logprob_error(model, static, sampling) < LOGPROB_TOL["hf"]  # and both are the teacher-forced ones


def test_static_prompts_are_padded_to_a_width_bucket(prompts):
    ids, mask = _left_pad(prompts, 0, torch.device("cpu"), step=32)
    assert ids.shape == mask.shape == (3, 32)  # longest prompt 23 tokens -> 32
    assert mask.sum(1).tolist() == [len(p) for p in prompts]  # the extra columns are padding
    assert _left_pad(prompts, 0, torch.device("cpu"))[0].shape == (3, max(len(p) for p in prompts))


def test_decode_mode_follows_the_device_and_bad_modes_are_one_line_errors(plain_model, tokenizer):
    assert default_decode(torch.device("cuda")) == "compiled" and default_decode(torch.device("cpu")) == "eager"
    assert HFBackend(plain_model, tokenizer).decode_mode() == "eager"  # the model is on the CPU
    assert make_backend("hf", plain_model, tokenizer, decode="static").decode_mode() == "static"
    assert _decode_options("eager") == {}
    assert _decode_options("static") == {"cache_implementation": "static", "disable_compile": True}
    on_gpu, on_cpu = _decode_options("compiled", "cuda")["compile_config"], _decode_options("compiled", "cpu")
    assert on_gpu.mode == "reduce-overhead" and not on_gpu._compile_all_devices  # CUDA graphs
    assert on_cpu["compile_config"]._compile_all_devices and on_cpu["cache_implementation"] == "static"
    with pytest.raises(LadkitError, match="decode must be one of eager, static, compiled"):
        HFBackend(plain_model, tokenizer, decode="fast")


@pytest.mark.slow
def test_compiled_decode_gives_the_eager_tokens_and_logprobs(plain_model, tokenizer, prompts):
    sampling = SAMPLINGS[0]
    eager = HFBackend(plain_model, tokenizer, decode="eager").generate(prompts, n=2, sampling=sampling)
    backend = HFBackend(plain_model, tokenizer, decode="compiled")
    for _ in range(2):  # the first call compiles, the second replays the compiled step
        compiled = backend.generate(prompts, n=2, sampling=sampling)
        assert samples(compiled) == samples(eager)
        for mine, theirs in zip(compiled, eager):
            for a, b in zip(mine.completions, theirs.completions):
                torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5, rtol=1e-5)
