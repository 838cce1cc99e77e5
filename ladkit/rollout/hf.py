"""`hf` rollout backend: the training model itself samples (no copy, no weight sync), through transformers'
`generate` or, for eager decoding, ladkit's own loop making the same model calls.

Every prompt is repeated n times and the batch is left-padded, so prompts of different lengths share one
decoding batch. The sampling happens in our own logits processors at the end of generate()'s chain (the own
loop calls the same three in the same order):
1. temperature, top-k, top-p (transformers' own warpers, in vLLM's order);
2. a recorder keeps log softmax(scores)[chosen token]: the sampler's log-prob with [N, T] memory instead of
   the [N, T, V] of `output_scores` / `output_logits` (gigabytes for a 150k vocabulary);
3. a chooser draws each row's token from its own seeded generator (batch-independent samples, see base.py)
   and returns scores that are -inf except at that token, so generate()'s greedy step just reads it back.
   Each row's generator draws all its uniforms up front, and every token is chosen for all rows at once by
   inverse-CDF lookup: one op per token instead of a torch.multinomial call per row (on a GPU several kernel
   launches each: 128 rows made ~500 launches per token, more than a 0.5B model's own forward; on a CPU the
   calls cost 17% of the rollout). `batched_sampling=False` keeps the per-row multinomial: both draw exactly
   from softmax(scores), with different streams. scripts/gpu_check.sh times the two side by side.
Shared prompt pass: the n rows of a prompt start from one prefill. Each distinct prompt (but its last token) goes
through the model once, the key/value cache is repeated to its rows, and generate() continues from it (its
documented cache re-use), so the prefill costs B prompts, not B * n rows. Models whose cache cannot be
repeated (ladkit.models.logprobs.run_shared_prompt_pass) prefill every row, as before.
Decode modes (`decode`): "eager" (a dynamic cache, the shared prompt pass above, ladkit's own loop: the model
calls generate() makes, one per token on the chosen column, without generate()'s per-token bookkeeping; tokens
and log-probs bit-equal to generate()'s, tested), "static" (transformers' static key/value cache, preallocated
to prompt + max_new_tokens, so every decode step has the same shapes) and "compiled" (the static cache plus
generate()'s compiled step: torch.compile in "reduce-overhead" mode, i.e. CUDA graphs on a GPU, replaying one
graph per token instead of launching each kernel). Unset: compiled on a GPU, eager on a CPU (there the step is
bound by FLOPs, not launches). Static modes prefill every row (a static cache cannot be filled once per prompt
and repeated) and round the prompt width up to a multiple of STATIC_WIDTH_STEP, so steps with slightly
different prompt lengths reuse one cache shape and one graph.
The sampler is the same in every mode (it runs outside the model), so tokens and log-probs equal eager
decoding up to float rounding of the forward (a CPU test checks "static"; "compiled" is timed and compared by
scripts/gpu_check.sh on a GPU).
Generation runs in eval mode (no LoRA or attention dropout) under no_grad, and every module's train/eval
flag is restored afterwards. On a CPU a LoRA model samples with its adapter merged (`_merged_lora`,
`merge_lora`): new copies W + sBA stand in for the adapted weights during the rollout, one matmul per linear
instead of three; the base weights are never written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from weakref import WeakSet

import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from ladkit.errors import LadkitError
from ladkit.models.logprobs import position_ids_from_mask, run_shared_prompt_pass
from ladkit.rollout.base import (
    Completion,
    RolloutGroup,
    SamplingConfig,
    check_request,
    eos_ids,
    prompt_seeds,
    spread_seed,
    trim_at_eos,
)

_NO_SHARED_PROMPT_PASS: WeakSet = WeakSet()  # models whose cache cannot be repeated across rows
_NO_LOGITS_TO_KEEP: WeakSet = WeakSet()  # models whose forward takes no logits_to_keep
DECODE_MODES = ("eager", "static", "compiled")
STATIC_WIDTH_STEP = 32  # static decode: prompt widths rounded up to a multiple of this (one cache shape per bucket)


def default_decode(device: torch.device) -> str:
    """The decode mode when none is set: the compiled static-cache step on a GPU, eager elsewhere."""
    return "compiled" if device.type == "cuda" else "eager"


def default_merge_lora(device: torch.device) -> bool:
    """Sample with the LoRA adapter merged (`_merged_lora`) when none is said: on a CPU, where the adapter's
    two extra matmuls and peft's per-layer work cost the built-in 1M model ~20% of its decoding (measured; with a
    49k vocabulary on a 3M model no gain was measured: the vocabulary projection dominates); not on a GPU, where
    the merged copies would take as much memory as the adapted weights themselves during the rollout."""
    return device.type == "cpu"


class HFBackend:
    """Samples with `model.generate` (a plain transformers model or a peft model)."""

    name = "hf"

    def __init__(
        self,
        model,
        tokenizer,
        max_batch_size: int | None = None,
        batched_sampling: bool | None = None,
        decode: str | None = None,
        merge_lora: bool | None = None,
    ):
        if decode is not None and decode not in DECODE_MODES:
            raise LadkitError(f"hf decode must be one of {', '.join(DECODE_MODES)} or unset, got {decode!r}")
        self.decode = decode  # None: default_decode(the model's device)
        self.merge_lora = merge_lora  # None: on a CPU (default_merge_lora)
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size  # rows (prompt x sample) per generate call; None = all at once
        self.batched_sampling = batched_sampling  # seeded draws for all rows at once (None: yes)
        self.stop_ids = eos_ids(tokenizer, model)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop_ids)

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], n: int, sampling: SamplingConfig, seeds: Sequence[int] | None = None
    ) -> list[RolloutGroup]:
        prompts = check_request(prompt_ids, n, sampling)
        if self.model is None:
            raise LadkitError("hf backend: generate() after close(); build a new backend")
        per_prompt = prompt_seeds(len(prompts), sampling, seeds)
        rows = [p for p in prompts for _ in range(n)]  # prompt-major: row i*n + j is sample j of prompt i
        row_seeds = None if per_prompt is None else [spread_seed(s) + j for s in per_prompt for j in range(n)]
        step = self.max_batch_size or len(rows)
        completions = []
        merge = self.merge_lora if self.merge_lora is not None else default_merge_lora(self._device())
        with _sampling_mode(self.model), _merged_lora(self.model, merge):
            for start in range(0, len(rows), step):
                chunk_seeds = None if row_seeds is None else row_seeds[start : start + step]
                completions += self._sample(rows[start : start + step], chunk_seeds, sampling)
        return [RolloutGroup(prompt_ids=p, completions=completions[i * n : (i + 1) * n]) for i, p in enumerate(prompts)]

    def sync_weights(self, model) -> None:
        """Nothing to copy: generate() runs the training model, so it always sees the current weights."""
        self.model = model

    def sleep(self) -> None:
        """Nothing to free: generate() allocates its cache per call and the weights are the trainer's."""

    def close(self) -> None:
        self.model = None  # drop the reference only: the trainer owns the model

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def decode_mode(self) -> str:
        """ "eager", "static" or "compiled": as set, else by the model's device (default_decode)."""
        return self.decode or default_decode(self._device())

    def _sample(self, rows: list[list[int]], row_seeds: list[int] | None, sampling: SamplingConfig) -> list[Completion]:
        mode = self.decode_mode()
        if mode == "eager":
            generated, logprobs = self._decode_loop(rows, row_seeds, sampling)
        else:
            generated, logprobs = self._generate(rows, row_seeds, sampling, mode)
        return [self._completion(generated[r].tolist(), logprobs[r].tolist()) for r in range(len(rows))]

    def _decode_loop(
        self, rows: list[list[int]], row_seeds: list[int] | None, sampling: SamplingConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eager decoding in our own loop: ([R, T] tokens, [R, T] sampler log-probs).

        The same model calls generate() makes with a dynamic cache (the shared prompt pass, then one forward per
        token on the last chosen column with positions counted over real tokens and the last position's logits
        only), the same warpers and the same chooser, so the same tokens and log-probs; without generate()'s
        per-token machinery (its logits-processor and stopping-criteria lists, cache and kwargs bookkeeping), and
        with the scores soft-maxed once for the chooser and the recorder instead of a -inf-filled [R, V] copy for
        a greedy step to read back. Finished rows continue on the pad token, as in generate(), until
        every row has stopped or max_new_tokens is reached.
        """
        input_ids, attention_mask = _left_pad(rows, self.pad_id, self._device())  # [R, P] each
        chooser = _ChooseToken(row_seeds, input_ids.device, sampling.max_new_tokens, self.batched_sampling is not False)
        warpers = _warpers(sampling)
        cache = self._shared_prompt_pass(rows, input_ids, attention_mask).get("past_key_values")
        # With the prompt but its last column cached, the first forward reads that column; without, the whole prompt.
        step_ids = input_ids[:, -1:] if cache is not None else input_ids  # [R, 1] or [R, P]
        positions = position_ids_from_mask(attention_mask)[:, -step_ids.shape[1] :]  # [R, 1] or [R, P]
        stops = torch.tensor(sorted(self.stop_ids), device=input_ids.device)  # [S]
        unfinished = torch.ones(len(rows), dtype=torch.bool, device=input_ids.device)  # [R]
        tokens, logprobs = [], []
        for _ in range(sampling.max_new_tokens):
            out = self._forward(step_ids, attention_mask, positions, cache)
            cache = out.past_key_values
            scores = out.logits[:, -1, :].float()  # [R, V]
            for warper in warpers:
                scores = warper(input_ids, scores)
            probs = torch.softmax(scores, dim=-1)  # [R, V]: the chooser's, and the recorder's (as in generate())
            chosen = chooser.choose(probs)  # [R, 1]
            logprobs.append(probs.gather(-1, chosen).squeeze(-1).log())  # [R]
            chosen = torch.where(unfinished[:, None], chosen, self.pad_id)  # [R, 1]: finished rows take pad
            tokens.append(chosen.squeeze(-1))
            unfinished &= ~torch.isin(chosen.squeeze(-1), stops)
            if not unfinished.any():
                break
            step_ids = chosen
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(rows), 1)], dim=1)  # [R, P+t+1]
            positions = positions[:, -1:] + 1  # [R, 1]
        return torch.stack(tokens, dim=1).cpu(), torch.stack(logprobs, dim=1).cpu()

    def _forward(self, step_ids, attention_mask, positions, cache):
        """One decoding forward; logits of the last position only where the architecture takes logits_to_keep."""
        inputs = dict(input_ids=step_ids, attention_mask=attention_mask, position_ids=positions,
                      past_key_values=cache, use_cache=True)  # fmt: skip
        if self.model not in _NO_LOGITS_TO_KEEP:
            try:
                return self.model(**inputs, logits_to_keep=1)
            except TypeError:
                _NO_LOGITS_TO_KEEP.add(self.model)
        return self.model(**inputs)

    def _generate(
        self, rows: list[list[int]], row_seeds: list[int] | None, sampling: SamplingConfig, mode: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """transformers generate() with our sampler as its last logits processors: ([R, T] tokens, [R, T]
        sampler log-probs). The static and compiled modes run here; so can eager (the reference in tests)."""
        step = 1 if mode == "eager" else STATIC_WIDTH_STEP
        input_ids, attention_mask = _left_pad(rows, self.pad_id, self._device(), step)  # [R, P] each
        recorder = _ChosenLogprobs()
        chooser = _ChooseToken(row_seeds, input_ids.device, sampling.max_new_tokens, self.batched_sampling is not False)
        processors = [*_warpers(sampling), recorder, chooser]
        prompt_cache = self._shared_prompt_pass(rows, input_ids, attention_mask) if mode == "eager" else {}
        sequences = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=self._generation_config(sampling, mode),
            logits_processor=LogitsProcessorList(processors),
            # Each process's call stands alone (under FSDP the trainer gathers the weights first), so no
            # cross-process step sync, which transformers turns on for a sharded model: the main process samples
            # tracked prompts alone.
            synced_gpus=False,
            **prompt_cache,
        )
        generated = sequences[:, input_ids.shape[1] :]  # [R, T]
        return generated.cpu(), recorder.result(generated)  # [R, T] each

    def _shared_prompt_pass(self, rows: list[list[int]], input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        """{"past_key_values": the cache of every row's prompt but its last column, filled once per distinct
        prompt}, or {} where nothing is shared or the model's cache cannot be repeated."""
        distinct: dict[tuple[int, ...], int] = {}
        index = [distinct.setdefault(tuple(row), len(distinct)) for row in rows]
        prompt_index = torch.tensor(index, device=input_ids.device)  # [R]
        shared = run_shared_prompt_pass(
            self.model, input_ids[:, :-1], attention_mask[:, :-1], prompt_index, _NO_SHARED_PROMPT_PASS
        )
        return {} if shared is None else {"past_key_values": shared[0].past_key_values}

    def _completion(self, token_ids: list[int], logprobs: list[float]) -> Completion:
        # generate() keeps a finished row going with pad tokens until the longest row ends: cut after EOS.
        keep, reason = trim_at_eos(token_ids, self.stop_ids)
        text = self.tokenizer.decode(token_ids[:keep], skip_special_tokens=True)
        return Completion(token_ids=token_ids[:keep], text=text, logprobs=logprobs[:keep], finish_reason=reason)

    def _generation_config(self, sampling: SamplingConfig, mode: str = "eager") -> GenerationConfig:
        # Greedy mode: the token is already chosen by _ChooseToken, and generate() adds no sampling warpers of
        # its own, so a checkpoint's generation_config.json (an instruct model may ship temperature 0.7 or
        # top_k=20) cannot change what SamplingConfig says. Penalties act in any mode: switched off explicitly,
        # since generate() fills unset (None) fields from that file.
        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_new_tokens=sampling.max_new_tokens,
            min_new_tokens=0,
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.pad_id,
            use_cache=True,
            **_decode_options(mode, self._device().type),
        )


def _decode_options(mode: str, device_type: str = "cuda") -> dict:
    """GenerationConfig fields of a decode mode: none for eager; a static cache, compiled or not, otherwise.
    Compiled: CUDA graphs ("reduce-overhead") on a GPU; elsewhere plain inductor, which generate() runs only
    when told to (`_compile_all_devices`, transformers' flag for compiling on a CPU): "compiled" was asked for."""
    if mode == "eager":
        return {}
    if mode == "static":
        return {"cache_implementation": "static", "disable_compile": True}
    from transformers import CompileConfig

    compile_config = CompileConfig(mode="reduce-overhead" if device_type == "cuda" else "default")
    compile_config._compile_all_devices = device_type != "cuda" or None
    return {"cache_implementation": "static", "compile_config": compile_config, "disable_compile": False}


def _warpers(sampling: SamplingConfig) -> list[LogitsProcessor]:
    """Temperature, then top-k, then top-p: the order generate() itself uses, and vLLM's.

    Passed as custom processors: generate() runs them after its own logits processors (penalties, switched off
    in _generation_config) and, in greedy mode, adds no warpers after them, so the recorder and the chooser see
    the final scores.
    """
    warpers: list[LogitsProcessor] = []
    if sampling.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k > 0:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers


class _ChosenLogprobs(LogitsProcessor):
    """Records log softmax(scores)[chosen token] at each step, without changing the scores: the log of the chosen
    token's probability as the chooser drew it (one softmax pass over [R, V]; a log_softmax pass costs as much
    again, and the log of a float32 probability is as close to it as float32 log-probs get).

    At step t the processor sees the scores of token t but not yet its choice; the choice arrives as the last
    column of input_ids at step t + 1 (and for the final token, in the returned sequences).
    """

    def __init__(self):
        self.chosen: list[torch.Tensor] = []  # one [R] tensor per generated token
        self.pending: torch.Tensor | None = None  # [R, V] log-probs of the step whose token is not yet known

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.pending is not None:
            self.chosen.append(self.pending.gather(-1, input_ids[:, -1:]).squeeze(-1).log())  # [R]
        self.pending = torch.softmax(scores.float(), dim=-1)  # [R, V]
        return scores

    def result(self, generated: torch.Tensor) -> torch.Tensor:
        """[R, T] log-probs of the generated tokens ([R, T]); rows finished early hold junk after EOS."""
        self.chosen.append(self.pending.gather(-1, generated[:, -1:]).squeeze(-1).log())
        return torch.stack(self.chosen, dim=1).cpu()


class _ChooseToken(LogitsProcessor):
    """Draws each row's next token from softmax(scores), row r from its own seed when seeded (the global RNG
    otherwise), and returns 0 at that token and -inf elsewhere for generate()'s greedy step to pick.

    batched=False: row r calls torch.multinomial with its own generator at every token.
    batched=True: row r's generator draws its max_new_tokens uniforms once (float64, on the CPU), and each token
    is chosen for all rows in one inverse-CDF lookup (`inverse_cdf`). Either way a row's tokens depend on its
    seed and its own scores only, never on the other rows of the batch.
    """

    def __init__(self, row_seeds: list[int] | None, device: torch.device, max_new_tokens: int, batched: bool):
        self.generators = self.uniforms = None
        self.position = 0
        if row_seeds is None:
            return
        if batched:
            draws = [
                torch.rand(max_new_tokens, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                for s in row_seeds
            ]
            self.uniforms = torch.stack(draws).to(device)  # [R, T]
        else:
            self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in row_seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = self.choose(torch.softmax(scores.float(), dim=-1))  # [R, 1]
        return torch.full_like(scores, float("-inf")).scatter(-1, chosen, 0.0)  # [R, V]

    def choose(self, probs: torch.Tensor) -> torch.Tensor:
        """The next token of every row from its probabilities [R, V] -> [R, 1]."""
        if self.uniforms is not None:
            chosen = inverse_cdf(probs, self.uniforms[:, self.position])  # [R, 1]
            self.position += 1
        elif self.generators is None:
            chosen = torch.multinomial(probs, 1)  # [R, 1]
        else:
            draws = [torch.multinomial(probs[r], 1, generator=g) for r, g in enumerate(self.generators)]
            chosen = torch.stack(draws)  # [R, 1]
        return chosen


CDF_BLOCK = 1024
"""Vocabulary entries per block of the two-level inverse-CDF lookup (`inverse_cdf`) on a CPU."""


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """For each row, the first token whose cumulative probability exceeds u * total. [R, V], [R] -> [R, 1]

    The cumulative sums are in float64, so tail tokens keep their probability. A token of probability 0 (cut by
    top-k / top-p) is never chosen: its cumulative value equals its predecessor's, which is found first. Should
    rounding put the target at the very top (no index past it), the first token whose cumulative value reaches
    the total is taken: the last token of positive probability, unless the ones after it are too small to move a
    float64 sum near 1 (then the last that does). Found by binary searches, not a pass over [R, V].

    Vocabularies over `block` entries are searched in two levels, reading [R, V] once and writing nothing of
    that size: the masses of blocks of `block` tokens (float32 sums) and their float64 cumulative sum [R, V/block]
    find the block, then the float64 cumulative sum inside that block [R, block] the token, at the same relative
    position within the block (u's target minus the blocks before, over the block's mass). Each token is then
    drawn with its probability to float32's relative precision, tail tokens included; the float64 cumulative sum
    over all of [R, V] it replaces wrote and read 8 bytes per entry (docs/benchmarks.md: the decode it sped up).
    A draw within the block masses' float32 rounding (~1e-7 of the total) of a boundary between two tokens may
    fall on the other side than the flat search's: 8 of 80,000 draws on random 49k-vocabulary rows.
    `block` unset: CDF_BLOCK on a CPU; on a GPU the flat search, which launches fewer kernels (decoding on a GPU
    is launch-bound; not measured there).
    """
    rows, vocabulary = probs.shape
    if block is None:
        block = CDF_BLOCK if probs.device.type == "cpu" else vocabulary
    if vocabulary <= block:
        cdf = probs.double().cumsum(-1)  # [R, V]
        return _first_past(cdf, uniforms.double().unsqueeze(-1) * cdf[:, -1:])
    whole = vocabulary // block * block
    masses = probs[:, :whole].reshape(rows, -1, block).sum(-1)  # [R, K]: a view of contiguous rows, no copy
    if whole < vocabulary:
        masses = torch.cat([masses, probs[:, whole:].sum(-1, keepdim=True)], dim=1)  # [R, K + 1]
    block_cdf = masses.double().cumsum(-1)  # [R, K']
    target = uniforms.double().unsqueeze(-1) * block_cdf[:, -1:]  # [R, 1]
    chosen = _first_past(block_cdf, target)  # [R, 1]: the block holding the target
    before = torch.where(chosen > 0, block_cdf.gather(-1, (chosen - 1).clamp(min=0)), 0.0)  # [R, 1]
    mass = (block_cdf.gather(-1, chosen) - before).clamp(min=torch.finfo(torch.float64).tiny)  # [R, 1]
    columns = chosen * block + torch.arange(block, device=probs.device)  # [R, W]
    inside = probs.gather(-1, columns.clamp(max=vocabulary - 1)).double().masked_fill(columns >= vocabulary, 0.0)
    cdf = inside.cumsum(-1)  # [R, W]
    return chosen * block + _first_past(cdf, (target - before) / mass * cdf[:, -1:])


def _first_past(cdf: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The first index whose cdf [R, n] exceeds target [R, 1], else the first that reaches the row's total."""
    chosen = torch.searchsorted(cdf, target, right=True)  # [R, 1]: first cdf > target
    top = torch.searchsorted(cdf, cdf[:, -1:].contiguous())  # [R, 1]: first index with cdf >= total
    return torch.minimum(chosen, top)


def _left_pad(
    rows: list[list[int]], pad_id: int, device: torch.device, step: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad so every row's last prompt token sits in the last column, where generation continues; the
    width is rounded up to a multiple of `step` (static decode: fewer distinct cache shapes)."""
    width = -(-max(len(r) for r in rows) // step) * step
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [R, P]
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)  # [R, P]
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        attention_mask[i, width - len(row) :] = 1
    return input_ids.to(device), attention_mask.to(device)


@contextmanager
def _merged_lora(model, merge: bool = True) -> Iterator[bool]:
    """For the duration: each LoRA layer of a peft model runs as its base layer with weight W + s B A (a new
    tensor put in place of W; W itself is never written, so it comes back bit for bit) and the adapters are
    switched off, so sampling runs one matmul per adapted linear instead of three plus peft's dispatch. Yields
    whether it merged: not for a plain model, DoRA or modules_to_save adapters, or sharded (FSDP) weights.
    The tokens equal the unmerged ones up to float rounding of W x + s B (A x) against (W + s B A) x; a test
    checks them on the tiny model, as the static-cache test does for that mode."""
    from ladkit.models.loading import is_lora, merged_lora_layers

    if not merge or not is_lora(model):
        yield False
        return
    try:
        layers = merged_lora_layers(model)
    except LadkitError:  # DoRA or modules_to_save: sampled unmerged
        yield False
        return
    if not layers or any(hasattr(layer.get_base_layer().weight, "device_mesh") for layer, _ in layers.values()):
        yield False
        return
    swapped = []
    try:
        for layer, weight in layers.values():
            base = layer.get_base_layer()
            swapped.append((layer, layer._disable_adapters, base, base._parameters["weight"]))
            base._parameters["weight"] = torch.nn.Parameter(weight, requires_grad=False)
            # The flag peft's forward reads. Not peft's disable_adapter(): it walks the whole model for its status
            # and flips the adapters' requires_grad (9 ms a rollout for the built-in model, half of a decode).
            layer._disable_adapters = True
            # And the layer calls its base layer's forward straight away, past peft's dispatch (~13 us a call
            # under cProfile on this CPU, a few ms a decode for the built-in model); an instance attribute,
            # removed afterwards.
            layer.forward = base.forward
        yield True
    finally:
        for layer, disabled, base, weight in swapped:
            base._parameters["weight"] = weight
            layer._disable_adapters = disabled
            layer.__dict__.pop("forward", None)


@contextmanager
def _sampling_mode(model) -> Iterator[None]:
    """Eval mode and no_grad for the duration, then every module's own train/eval flag back as it was; no_grad
    alone where eval mode would change nothing (`train_mode_matters`), which spares three module walks."""
    from ladkit.models.loading import train_mode_matters

    if not train_mode_matters(model):
        with torch.no_grad():
            yield
        return
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in flags:
            module.training = training
