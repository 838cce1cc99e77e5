"""The vllm backend's life cycle and set-up errors (engine start, close, context length, missing vllm, make_backend)."""

from __future__ import annotations

import sys

import pytest
import torch
from rollout_helpers import require_vllm

from ladkit.errors import LadkitError, UnknownNameError
from ladkit.rollout import BACKENDS, SamplingConfig, make_backend
from ladkit.rollout.vllm import VLLM_MISSING, VLLMBackend, _vllm_lora_rank, import_vllm

SAMPLING = SamplingConfig(max_new_tokens=4, seed=41)
ENGINE = dict(dtype="float32", max_model_len=64, seed=0, enforce_eager=True)


def test_missing_vllm_is_a_one_line_error_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(LadkitError) as error:
        import_vllm()
    assert str(error.value) == VLLM_MISSING
    assert "install_vllm_cpu.sh" in VLLM_MISSING and "ladkit[vllm]" in VLLM_MISSING


def test_make_backend_names_and_errors(plain_model, tokenizer):
    assert BACKENDS.names() == ["hf", "vllm"]
    # One set of options for either backend: hf ignores the engine's.
    hf = make_backend("hf", plain_model, tokenizer, model_path="x", seed=1, max_model_len=None, dtype="auto")
    assert hf.name == "hf"
    with pytest.raises(UnknownNameError, match="hf, vllm"):
        make_backend("sglang", plain_model, tokenizer)
    with pytest.raises(LadkitError, match="model_path"):
        make_backend("vllm", plain_model, tokenizer)


def test_lora_rank_rounds_up_to_a_rank_vllm_accepts():
    assert [_vllm_lora_rank(r) for r in (1, 4, 8, 12, 64, 300)] == [1, 8, 8, 16, 64, 320]
    for bad in (0, 513):
        with pytest.raises(LadkitError, match="lora_rank"):
            _vllm_lora_rank(bad)


@pytest.mark.vllm
def test_close_releases_the_engine_so_another_can_start(tiny_eos_path, tokenizer, prompts):
    require_vllm()
    backend = make_backend("vllm", None, tokenizer, model_path=tiny_eos_path, **ENGINE)
    first = backend.generate(prompts, n=2, sampling=SAMPLING)
    backend.close()
    assert backend.llm is None
    with pytest.raises(LadkitError, match="after close"):
        backend.generate(prompts, n=1, sampling=SAMPLING)
    # vLLM keeps process-wide state (distributed groups); a clean close is what lets the next engine start.
    again = make_backend("vllm", None, tokenizer, model_path=tiny_eos_path, **ENGINE)
    try:
        second = again.generate(prompts, n=2, sampling=SAMPLING)
    finally:
        again.close()
    assert [[c.token_ids for c in g.completions] for g in second] == [
        [c.token_ids for c in g.completions] for g in first
    ]


class _OldEngine:
    """Stands in for a vllm.LLM whose workers have no reload_weights(weights_iterator=...)."""

    def __init__(self):
        self.calls = []

    def collective_rpc(self, method, args=(), kwargs=None):
        raise TypeError(f"{method}() got an unexpected keyword argument 'weights_iterator'")

    def apply_model(self, func):
        loaded = []
        func(type("EngineModel", (), {"load_weights": lambda _, weights: loaded.extend(weights)})())
        self.calls.append(("apply_model", [name for name, _ in loaded]))

    def reset_prefix_cache(self):
        self.calls.append(("reset_prefix_cache", None))


def test_full_sync_falls_back_to_load_weights_on_older_vllm():
    # vllm 0.32 (installed here) takes the reload_weights path, tested with a real engine in
    # test_rollout_contract.py; this checks the older-version branch without an engine.
    backend = object.__new__(VLLMBackend)  # no engine start: only _load_weights is exercised
    backend.llm = _OldEngine()
    model = torch.nn.Linear(2, 3)
    backend._load_weights(list(model.state_dict().items()))
    assert backend.llm.calls == [("apply_model", ["weight", "bias"]), ("reset_prefix_cache", None)]
