"""The rollout contract every backend (hf, vllm) implements, and the records it returns.

    backend.generate(prompt_ids, n, sampling, seeds=None) -> list[RolloutGroup]   (one group per prompt, n each)
    backend.sync_weights(model)                                                   (after each optimiser step)
    backend.close()

Prompts arrive as token ids (the trainer renders and tokenizes them once, so both backends see the very
same tokens). `logprobs` are the sampler's log-probabilities of each generated token under the distribution
it was drawn from: softmax(logits / temperature), renormalised over the kept tokens when top_k / top_p
truncate it (with top_k = 0 and top_p = 1, the RL default, it is exactly softmax(logits / temperature)).
The trainer recomputes them and logs the gap as `rollout/logprob_diff`.

Seeds: with `seeds` (one per prompt) a prompt's samples depend only on its seed, its tokens, n and the
weights, never on the other prompts of the call, so batching, micro-batching and data-parallel sharding do
not change them (up to floating-point differences between batch shapes, which can flip a rare near-tie).
Sample j of a prompt with seed s is drawn from a stream seeded spread_seed(s) + j in both backends (vLLM's
own convention for the n samples of one request). Without `seeds`, SamplingConfig.seed seeds the call
(prompt i gets a seed derived from (seed, i)); with neither, the backend's own RNG is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ladkit.errors import LadkitError


@dataclass(frozen=True)
class SamplingConfig:
    """How to sample completions."""

    max_new_tokens: int = 32
    """Longest completion, in tokens (finish_reason 'length' when reached)."""
    temperature: float = 1.0
    """Softmax temperature (> 0)."""
    top_p: float = 1.0
    """Nucleus sampling mass (1 = off)."""
    top_k: int = 0
    """Keep the k most likely tokens (0 = off)."""
    seed: int | None = None
    """Seed for this call's sampling; the trainer passes a per-step seed so runs are reproducible."""


@dataclass
class Completion:
    """One sampled response."""

    token_ids: list[int]  # generated tokens, including the EOS token when the model stopped by itself
    text: str  # decoded, special tokens skipped
    logprobs: list[float]  # one per token in token_ids
    finish_reason: str  # "stop" (EOS or stop string) or "length"


@dataclass
class RolloutGroup:
    """The G completions of one prompt."""

    prompt_ids: list[int]
    completions: list[Completion] = field(default_factory=list)


class RolloutBackend(Protocol):
    name: str

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingConfig, seeds: Sequence[int] | None = None
    ) -> list[RolloutGroup]:
        """Sample `n` completions for each prompt (token ids, unpadded), one group per prompt, in order."""
        ...

    def sync_weights(self, model) -> None:
        """Make the next generate() sample from `model`'s current weights (LoRA adapter or full)."""
        ...

    def sleep(self) -> None:
        """Free what device memory the backend can until the next generate() or sync_weights() (the trainer
        calls it before its update; vllm puts its engine to sleep on a GPU); a no-op where nothing can be freed."""
        ...

    def close(self) -> None:
        """Release the backend's memory (engine, caches); the backend cannot generate afterwards."""
        ...


def check_request(prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingConfig) -> list[list[int]]:
    """Validate a generate() call the same way in every backend; returns the prompts as lists of ints."""
    if n < 1:
        raise LadkitError(f"rollout: n (samples per prompt) must be >= 1, got {n}")
    prompts = [list(map(int, p)) for p in prompt_ids]
    if not prompts:
        raise LadkitError("rollout: no prompts given; pass at least one tokenized prompt")
    empty = [i for i, p in enumerate(prompts) if not p]
    if empty:
        raise LadkitError(f"rollout: prompt(s) {empty[:5]} have no tokens; every prompt needs at least one token")
    check_sampling(sampling)
    return prompts


def check_sampling(sampling: SamplingConfig, where: str = "rollout: ") -> None:
    """Sampling settings every backend accepts (also checked when a training config is built)."""
    if sampling.max_new_tokens < 1:
        raise LadkitError(f"{where}max_new_tokens must be >= 1, got {sampling.max_new_tokens}")
    if not 0 < sampling.temperature < float("inf"):
        raise LadkitError(f"{where}temperature must be a finite number > 0, got {sampling.temperature}")
    if not 0 < sampling.top_p <= 1:
        raise LadkitError(f"{where}top_p must be in (0, 1], got {sampling.top_p}")
    if sampling.top_k < 0:
        raise LadkitError(f"{where}top_k must be >= 0 (0 = off), got {sampling.top_k}")


def prompt_seeds(count: int, sampling: SamplingConfig, seeds: Sequence[int] | None) -> list[int] | None:
    """One seed per prompt (see the module docstring), or None to use the backend's own RNG."""
    if seeds is not None:
        if len(seeds) != count:
            raise LadkitError(f"rollout: got {len(seeds)} seeds for {count} prompts; pass one seed per prompt")
        return [int(s) for s in seeds]
    if sampling.seed is None:
        return None
    return [sampling.seed * 1_000_003 + i for i in range(count)]


def spread_seed(seed: int) -> int:
    """Map a prompt's seed to the base of its n sample streams (base + j for sample j).

    Plain seeds are often consecutive (step * B + i); used directly, prompt i's sample 1 and prompt i+1's
    sample 0 would share a stream. A multiplicative hash (Knuth's golden-ratio constant) scatters them over
    [0, 2^62), where the n consecutive streams of two prompts practically never overlap.
    """
    return (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (2**62)


def eos_ids(tokenizer, model=None) -> set[int]:
    """Token ids that end a completion: the tokenizer's EOS plus any the model's generation config lists."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    generation_config = getattr(model, "generation_config", None)
    extra = getattr(generation_config, "eos_token_id", None)
    ids.update([extra] if isinstance(extra, int) else (extra or []))
    return ids


def trim_at_eos(token_ids: Sequence[int], stop_ids: set[int]) -> tuple[int, str]:
    """Length to keep (through the first EOS, inclusive) and the finish reason ('stop' or 'length')."""
    for i, token in enumerate(token_ids):
        if token in stop_ids:
            return i + 1, "stop"
    return len(token_ids), "length"
