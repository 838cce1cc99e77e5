"""LoRA training: every backend samples from the adapter's current weights after sync_weights(peft_model).

hf shares the training model, so sync is a no-op that must stay correct; vllm saves the adapter and loads it
as a new LoRARequest per version. Each test leaves the adapter at B = 0 (the identity) as it found it.
"""

from __future__ import annotations

import pytest
from rollout_helpers import BACKEND_NAMES, LOGPROB_TOL, logprob_error, set_lora

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig

SAMPLING = SamplingConfig(max_new_tokens=8, temperature=0.7, seed=21)


@pytest.fixture
def restore_adapter(request, peft_model):
    """After the test: adapter back to B = 0, synced to the backend the test used."""
    yield
    backend = request.getfixturevalue("lora_backend" if "lora_backend" in request.fixturenames else "vllm_lora")
    set_lora(peft_model, None)
    backend.sync_weights(peft_model)


@pytest.mark.parametrize("lora_backend", BACKEND_NAMES, indirect=True)
def test_each_synced_adapter_version_is_the_one_sampled(lora_backend, peft_model, prompts, restore_adapter):
    tolerance = LOGPROB_TOL[lora_backend.name]
    groups = lora_backend.generate(prompts, n=3, sampling=SAMPLING)
    assert logprob_error(peft_model, groups, SAMPLING) < tolerance  # B = 0: the base model
    for version in (1, 2):  # two optimiser steps in a row: the second sync must replace the first adapter
        set_lora(peft_model, seed=version)
        lora_backend.sync_weights(peft_model)
        groups = lora_backend.generate(prompts, n=3, sampling=SAMPLING)
        assert logprob_error(peft_model, groups, SAMPLING) < tolerance
        with peft_model.disable_adapter():  # without the adapter the log-probs would be far off
            assert logprob_error(peft_model, groups, SAMPLING) > 1e-2


@pytest.mark.parametrize("lora_backend", BACKEND_NAMES, indirect=True)
def test_sampling_in_train_mode_uses_eval_mode_and_restores_it(lora_backend, peft_model, prompts, restore_adapter):
    # The trainer calls generate between optimiser steps with the model in train mode: LoRA dropout (0.2
    # here) must be off while sampling, and train mode back on afterwards.
    set_lora(peft_model, seed=3)
    lora_backend.sync_weights(peft_model)
    peft_model.train()
    try:
        groups = lora_backend.generate(prompts, n=3, sampling=SAMPLING)
        assert peft_model.training and all(m.training for m in peft_model.modules())
        assert logprob_error(peft_model, groups, SAMPLING) < LOGPROB_TOL[lora_backend.name]  # eval-mode reference
    finally:
        peft_model.eval()


@pytest.mark.vllm
def test_vllm_keeps_only_the_latest_adapter_on_disk(vllm_lora, peft_model, restore_adapter):
    for version in (4, 5):
        set_lora(peft_model, seed=version)
        vllm_lora.sync_weights(peft_model)
    folders = sorted(p.name for p in vllm_lora._adapter_dir.iterdir())
    assert folders == [f"v{vllm_lora._version}"]


@pytest.mark.vllm
def test_vllm_refuses_a_model_that_does_not_match_its_lora_setting(vllm_lora, plain_model):
    with pytest.raises(LadkitError, match="lora_rank is set"):
        vllm_lora.sync_weights(plain_model)
