"""The merged LoRA sync to vLLM (rollout.vllm_lora_sync=merged): the adapter merged into the base weights and
loaded in place, so the engine samples from the adapter's current weights without LoRA kernels. Its own
module: one vLLM engine per module (see conftest). Each test leaves the adapter at B = 0 as it found it."""

from __future__ import annotations

import pytest
from rollout_helpers import LOGPROB_TOL, logprob_error, set_lora

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig

pytestmark = pytest.mark.vllm
SAMPLING = SamplingConfig(max_new_tokens=8, temperature=0.7, seed=21)


@pytest.fixture
def restore_adapter(vllm_merged, peft_model):
    yield
    set_lora(peft_model, None)
    vllm_merged.sync_weights(peft_model)


def test_each_merged_version_is_the_one_sampled(vllm_merged, peft_model, prompts, restore_adapter):
    assert vllm_merged.lora_sync == "merged" and vllm_merged._adapter_dir is None  # no adapter files, no kernels
    assert logprob_error(peft_model, vllm_merged.generate(prompts, n=3, sampling=SAMPLING), SAMPLING) < 1e-3
    for version in (1, 2):  # the second sync must replace the first merge, not add to it
        set_lora(peft_model, seed=version)
        vllm_merged.sync_weights(peft_model)
        groups = vllm_merged.generate(prompts, n=3, sampling=SAMPLING)
        assert logprob_error(peft_model, groups, SAMPLING) < LOGPROB_TOL["vllm"]
        with peft_model.disable_adapter():  # the base weights alone would be far off
            assert logprob_error(peft_model, groups, SAMPLING) > 1e-2


def test_an_unknown_sync_mode_is_one_line(tiny_eos_path, tokenizer):
    from ladkit.rollout.vllm import VLLMBackend

    with pytest.raises(LadkitError, match="lora_sync must be one of adapter, merged, got 'both'"):
        VLLMBackend(tiny_eos_path, tokenizer, lora_rank=8, lora_sync="both")
