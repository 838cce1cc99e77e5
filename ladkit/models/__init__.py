"""Models: loading Hugging Face causal LMs, LoRA adapters, and the tiny models ladkit builds itself.

    loading.py         ModelConfig, load_policy, reference_policy / require_reference, render_prompt
    logprobs.py        sequence_logprobs: float32 per-token log-probs (and entropy) of response tokens, one
                       prompt pass per group
    builtin.py         the built-in default policy ("builtin"): where its files are, its architecture
    warmstart.py       how the built-in policy is made: supervised warm start, sampled-accuracy check
    countdown_data.py  compact countdown problems, a brute-force solver and an exact checker for the warm start
    tiny.py            char tokenizer and tiny Llama / Qwen2 configs built locally (tests, builtin)

The names below are resolved lazily, so `from ladkit.models.loading import ModelConfig` (a config schema)
imports neither torch nor transformers.
"""

from importlib import import_module

_EXPORTS = {
    "ModelConfig": "loading",
    "load_policy": "loading",
    "reference_policy": "loading",
    "render_prompt": "loading",
    "require_reference": "loading",
    "sequence_logprobs": "logprobs",
    "builtin_model_path": "builtin",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ladkit.models' has no attribute {name!r}")
    return getattr(import_module(f"ladkit.models.{_EXPORTS[name]}"), name)
