"""Per-token log-probabilities (and entropies) of response tokens under a causal LM: what objectives consume.

Batches are laid out the way rollouts produce them and TRL's GRPO does: each row is prompt then response,
prompts left-padded and responses right-padded, so the response occupies the last T columns of `input_ids`
and `response_mask` [N, T] marks its real tokens. Log-probs are computed in float32 whatever the model
dtype (docs/design.md 8.1: "in fp32"), a chunk of rows or positions at a time, with the gradient written
out (or the chunk recomputed in backward), so no float32 [N, T, V] copy is ever held (token_logprobs); the
model-dtype logits [N, T, V] themselves are the lm_head's.

Shared prompt pass. A group's G rows repeat one prompt. Given `prompt_index` (rows with equal values have equal
prompt columns), each distinct prompt goes through the model once, its key/value cache is repeated to the
rows (an indexing op, so gradients flow back into the prompt pass), and only the response columns go through
the model again. The maths is the full forward's; only float rounding differs (other matmul shapes). With
G = 8 and prompts as long as responses this skips ~45% of the positions. It needs a cache of plain full-
attention layers (transformers' DynamicLayer: Llama, Qwen2/3, Mistral, ...); other models (sliding-window,
linear-attention or static caches, or no cache at all) take the full forward, decided once per model. The
trainer passes `prompt_index` only where its `shared_prompt_pass` setting says so (by default on a CPU: on a
GPU the second pass costs more kernel launches than the positions it saves, docs/benchmarks.md).
"""

from __future__ import annotations

import weakref
from typing import Any

import torch

CHUNK_ELEMENTS = 2**24  # fp32 logits elements per chunk in token_logprobs (64 MiB; at least one position)
_NO_SHARING: weakref.WeakSet = weakref.WeakSet()  # models whose cache cannot be repeated across rows
_NO_LOGITS_TO_KEEP: weakref.WeakSet = weakref.WeakSet()  # models whose forward takes no logits_to_keep indices


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, as HF `generate` and vLLM assign them (left padding aside)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [N, L]


def response_logit_blocks(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    width: int,
    prompt_index: torch.Tensor | None = None,
    prefix_model=None,
    want_hidden: bool = False,
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """The logits at the `width` positions that predict the last `width` tokens, as consecutive column blocks
    [N, t_i, V] (sum of t_i = width; concatenated, [N, T, V]), and with `want_hidden` the last layer's hidden
    states over the prompt columns [N, P, H] (else None).

    Each block is the very tensor the lm_head returned or a row-gather of it: no [N, T, V] copy is made, and
    none in backward (a slice or a concatenation of the logits would each add one). The shared prompt pass
    gives two blocks (the last prompt column's logits, then the response's); the full forward one.
    prompt_index [N]: rows with equal values share their prompt columns, which then go through the model once
    (module docstring). prefix_model: the module that runs that prompt pass (default `model`); under DDP the
    trainer passes the unwrapped model there, so the DDP wrapper sees exactly one forward per backward."""
    if prompt_index is not None:
        shared = _shared_prompt_forward(
            model, prefix_model or model, input_ids, attention_mask, width, prompt_index, want_hidden
        )
        if shared is not None:
            return shared
    length = input_ids.shape[1]
    inputs = dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
    )
    # The positions L-T-1 .. L-2 predict the last T tokens (the last position predicts past the sequence).
    columns = torch.arange(length - width - 1, length - 1, device=input_ids.device)
    if want_hidden:
        logits, out = _logits_at(model, inputs, columns, output_hidden_states=True)
        return [logits], out.hidden_states[-1][:, : length - width]
    return [_logits_at(model, inputs, columns)[0]], None


def _logits_at(model, inputs: dict, columns: torch.Tensor, **options) -> tuple[torch.Tensor, Any]:
    """The model's logits at `columns` [t] only, [N, t, V], and its whole output (hidden states with
    output_hidden_states=True in `options`): through `logits_to_keep` given as indices where the architecture
    takes them (the lm_head then runs on those columns alone), else the full logits indexed."""
    if model not in _NO_LOGITS_TO_KEEP:
        try:
            out = model(**inputs, **options, logits_to_keep=columns)
        except (TypeError, RuntimeError):  # no logits_to_keep, or a count only (`-n:` or `n > 0` fails on
            _NO_LOGITS_TO_KEEP.add(model)  # indices); a real error recurs in the full forward below
        else:
            if out.logits.shape[1] == len(columns):
                return out.logits, out
            _NO_LOGITS_TO_KEEP.add(model)
    out = model(**inputs, **options)
    return out.logits[:, columns], out


def _shared_prompt_forward(model, prefix_model, input_ids, attention_mask, width, prompt_index, want_hidden):
    """The prompt pass over distinct prompts, then the response pass on the repeated cache; None where the
    rows share nothing or the model's cache cannot be repeated (the caller then runs the full forward)."""
    prompt_width = input_ids.shape[1] - width
    shared = run_shared_prompt_pass(
        prefix_model,
        input_ids[:, :prompt_width],
        attention_mask[:, :prompt_width],
        prompt_index,
        _NO_SHARING,
        want_hidden,
    )
    if shared is None:
        return None
    prompt, inverse = shared
    response_inputs = dict(
        input_ids=input_ids[:, prompt_width:],
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask)[:, prompt_width:],
        past_key_values=prompt.past_key_values,
        use_cache=True,
    )
    # Response token 0 is predicted by the last prompt column; token t > 0 by response column t - 1.
    # (With width 1 the response block is empty; the pass still runs: under DDP it is the wrapper's forward.)
    columns = torch.arange(width - 1, device=input_ids.device)
    blocks = [prompt.logits[:, -1:][inverse], _logits_at(model, response_inputs, columns)[0]]  # [N,1,V], [N,T-1,V]
    hidden = prompt.hidden_states[-1][inverse] if want_hidden else None  # [N, P, H]
    return blocks, hidden


def run_shared_prompt_pass(model, input_ids, attention_mask, prefix_index, unsupported, want_hidden: bool = False):
    """One forward over each distinct prefix, its key/value cache repeated to every row.

    input_ids, attention_mask [N, P] (left-padded prefixes); prefix_index [N]: rows with equal values hold
    equal prefixes. Returns (output over the distinct prefixes with the last column's logits, its
    past_key_values repeated to the N rows; inverse [N], each row's distinct prefix), or None where the rows
    share nothing or the cache cannot be repeated (`repeatable_cache`). A model that fails is added to
    `unsupported` (a WeakSet) and never tried again. The repeat is an indexing op, so gradients flow back.
    """
    if model in unsupported or input_ids.shape[1] == 0:
        return None
    distinct, inverse = torch.unique(prefix_index, return_inverse=True)  # [U], [N]
    if len(distinct) == len(prefix_index):
        return None  # one row per prefix: nothing to share
    rows = torch.arange(len(prefix_index), device=inverse.device)  # [N]
    first = torch.full_like(distinct, len(prefix_index)).scatter_reduce(0, inverse, rows, reduce="amin")  # [U]
    mask = attention_mask[first]  # [U, P]
    try:
        out = model(
            input_ids=input_ids[first],
            attention_mask=mask,
            position_ids=position_ids_from_mask(mask),
            use_cache=True,
            logits_to_keep=1,
            output_hidden_states=want_hidden,
        )
    except TypeError:  # an architecture without logits_to_keep
        out = None
    cache = getattr(out, "past_key_values", None)
    if not repeatable_cache(cache):
        unsupported.add(model)
        return None
    cache.batch_select_indices(inverse)  # [U, ...] -> [N, ...] per layer
    return out, inverse


def repeatable_cache(cache) -> bool:
    """True for a cache of plain full-attention layers (rows can be gathered and the response appended)."""
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # an older transformers without per-layer caches
        return False
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def token_logprobs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(logits / temperature) at `targets`, and optionally the entropy of each token distribution.

    logits [N, T, V] (any float dtype), targets [N, T] -> float32 [N, T] (and [N, T] or None). The entropy
    carries no gradient unless `entropy_grad` (an objective that differentiates it).
    Large vocabularies: the float32 copy exists one chunk at a time (`chunk_shape`: whole rows while they
    fit in CHUNK_ELEMENTS, else a slice of one row's positions), so no float32 [N, T, V] is ever held:
    - without entropy gradient (every objective but an entropy bonus): `_PickedLogprob`, whose backward is
      written out, d log p(y) / dz = (onehot(y) - softmax(z)) / temperature, computed in place in the
      gradient buffer chunk by chunk; it keeps the logits (the lm_head's output, no copy) and the [N, T] log
      normalisers;
    - with it: autograd through each chunk inside activation checkpointing (the float32 chunk is recomputed
      in backward).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not (entropy_grad and with_entropy):
        return _PickedLogprob.apply(logits, targets, float(temperature), with_entropy)
    rows, columns = chunk_shape(*logits.shape)
    checkpointed = torch.is_grad_enabled() and logits.requires_grad
    logprob_rows, entropy_rows = [], []
    for row_logits, row_targets in zip(logits.split(rows), targets.split(rows)):
        parts = [
            _chunk(chunk_logits, chunk_targets, temperature, with_entropy, entropy_grad, checkpointed)
            for chunk_logits, chunk_targets in zip(row_logits.split(columns, 1), row_targets.split(columns, 1))
        ]  # [(n, t), (n, t)]
        logprob_rows.append(torch.cat([logprob for logprob, _ in parts], 1))  # [n, T]
        entropy_rows.append(torch.cat([entropy for _, entropy in parts], 1))  # [n, T]
    return torch.cat(logprob_rows), torch.cat(entropy_rows)  # [N, T]


def chunk_shape(rows: int, width: int, vocabulary: int) -> tuple[int, int]:
    """(rows, positions) of one float32 chunk of [rows, width, vocabulary] logits: as many whole rows as fit in
    CHUNK_ELEMENTS, else one row and as many positions as fit (at least one)."""
    whole_rows = CHUNK_ELEMENTS // max(1, width * vocabulary)
    if whole_rows >= 1:
        return min(rows, whole_rows), max(1, width)
    return 1, max(1, CHUNK_ELEMENTS // max(1, vocabulary))


def _chunks(rows: int, width: int, vocabulary: int):
    """(row slice, column slice) of each chunk of [rows, width, vocabulary] logits, in order (chunk_shape)."""
    step_rows, step_columns = chunk_shape(rows, width, vocabulary)
    for start in range(0, rows, step_rows):
        for column in range(0, width, step_columns):
            yield slice(start, start + step_rows), slice(column, column + step_columns)


class _PickedLogprob(torch.autograd.Function):
    """token_logprobs without entropy gradient, chunk by chunk, with its backward written out.

    forward: z = logits / temperature in float32 one chunk at a time; log Z = m + log sum exp(z - m) with m
    the row max; log p(y) = z_y - log Z; the entropy (no gradient) H = log Z - sum_v p_v z_v from the same
    exp(z - m) buffer. Saves the logits (no copy) and log Z [N, T].
    backward: dL/dz_v = g (onehot(y)_v - exp(z_v - log Z)), then / temperature for dL/dlogits; built in place
    in the gradient's chunk (a float32 scratch chunk for lower-precision logits): sub, exp, mul, scatter-add.
    Against autograd through logsumexp this skips the recomputed forward, the per-op temporaries and the
    concatenation of the chunks' gradients: with a 49k vocabulary most of the update's time on a CPU
    (docs/benchmarks.md, "ladkit GRPO against TRL's GRPOTrainer").
    """

    @staticmethod
    def forward(ctx, logits, targets, temperature: float, with_entropy: bool):
        rows, width, vocabulary = logits.shape
        logprobs = torch.empty(rows, width, dtype=torch.float32, device=logits.device)  # [N, T]
        log_normaliser = torch.empty_like(logprobs)  # [N, T]
        entropy = torch.empty_like(logprobs) if with_entropy else None
        for r, c in _chunks(rows, width, vocabulary):
            scaled = _scaled(logits[r, c], temperature)  # [n, t, V] float32
            top = scaled.amax(-1, keepdim=True)  # [n, t, 1]
            weights = torch.sub(scaled, top).exp_()  # exp(z - m) [n, t, V]
            total = weights.sum(-1)  # [n, t]
            log_z = top.squeeze(-1) + total.log()  # [n, t]
            log_normaliser[r, c] = log_z
            logprobs[r, c] = scaled.gather(-1, targets[r, c].unsqueeze(-1)).squeeze(-1) - log_z
            if with_entropy:
                entropy[r, c] = log_z - weights.mul_(scaled).sum(-1) / total
        ctx.save_for_backward(logits, targets, log_normaliser)
        ctx.temperature = temperature
        if entropy is not None:
            ctx.mark_non_differentiable(entropy)
        return logprobs, entropy

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_logprobs, _grad_entropy):
        logits, targets, log_normaliser = ctx.saved_tensors
        if grad_logprobs is None or not ctx.needs_input_grad[0]:
            return None, None, None, None
        temperature = ctx.temperature
        grad = torch.empty_like(logits)  # [N, T, V]
        in_place = logits.dtype == torch.float32
        for r, c in _chunks(*logits.shape):
            upstream = grad_logprobs[r, c].float().unsqueeze(-1)  # [n, t, 1]
            out = grad[r, c] if in_place else torch.empty(logits[r, c].shape, dtype=torch.float32, device=logits.device)
            if temperature == 1.0:
                torch.sub(logits[r, c].float(), log_normaliser[r, c].unsqueeze(-1), out=out)
            else:
                torch.div(logits[r, c].float(), temperature, out=out).sub_(log_normaliser[r, c].unsqueeze(-1))
            out.exp_().mul_(-upstream)  # -g softmax(z)
            out.scatter_add_(-1, targets[r, c].unsqueeze(-1), upstream)  # + g onehot(y)
            if temperature != 1.0:
                out.div_(temperature)
            if not in_place:
                grad[r, c] = out
        return grad, None, None, None


def _scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / temperature in float32 (the logits themselves, no copy, for float32 at temperature 1)."""
    logits = logits.float()
    return logits if temperature == 1.0 else logits / temperature


def _chunk(logits, targets, temperature, with_entropy, entropy_grad, checkpointed):
    """_chunk_stats on one chunk, inside activation checkpointing when gradients flow (token_logprobs)."""
    if not checkpointed:
        return _chunk_stats(logits, targets, temperature, with_entropy, entropy_grad)
    from torch.utils.checkpoint import checkpoint

    return checkpoint(_chunk_stats, logits, targets, temperature, with_entropy, entropy_grad, use_reentrant=False)


def _chunk_stats(logits, targets, temperature: float, with_entropy: bool, entropy_grad: bool):
    """Log-probs of `targets` and (optionally) entropies, float32 [n, t], from one chunk of logits [n, t, V]
    by autograd-traced ops (the path with entropy gradient, and the reference in tests)."""
    scaled = _scaled(logits, temperature)  # [n, t, V]
    log_normaliser = torch.logsumexp(scaled, dim=-1)  # [n, t]
    picked = scaled.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [n, t]
    entropy = None
    if with_entropy:  # by default no gradient
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            # H = log Z - E_p[z]: one softmax, no log_softmax tensor kept.
            entropy = log_normaliser - (torch.softmax(scaled, dim=-1) * scaled).sum(-1)  # [n, t]
    return picked - log_normaliser, entropy  # [n, t]


def sequence_logprobs(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
    prompt_index: torch.Tensor | None = None,
    prefix_model=None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs [N, T] (float32) of the response tokens, and their token entropies when asked.

    input_ids, attention_mask: [N, L], prompt then response, the response in the last T columns.
    response_mask: [N, T], 1 on real response tokens. Masked entries of both outputs are 0.
    `temperature` must be the sampling temperature so the log-probs match the rollout's. Gradients flow
    unless the caller wraps this in `torch.no_grad()` (old and reference log-probs). prompt_index [N] (rows
    with equal values share their prompt) and prefix_model: see response_logit_blocks.
    """
    logprobs, entropy, _ = response_logprobs_and_hidden(
        model, input_ids, attention_mask, response_mask, temperature, with_entropy, prompt_index, prefix_model
    )
    return logprobs, entropy


def response_logprobs_and_hidden(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
    prompt_index: torch.Tensor | None = None,
    prefix_model=None,
    want_hidden: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """sequence_logprobs, plus with `want_hidden` the last layer's hidden states over the prompt columns
    [N, P, H] (the input of the trainer's heads, e.g. FlowRL's log Z; None otherwise). `entropy_grad`: the
    entropies carry gradient (token_logprobs)."""
    width = response_mask.shape[1]
    check_layout(input_ids, width)
    blocks, hidden = response_logit_blocks(
        model, input_ids, attention_mask, width, prompt_index, prefix_model, want_hidden
    )  # [[N, t_i, V]], [N, P, H] or None
    targets = input_ids[:, -width:].split([block.shape[1] for block in blocks], dim=1)  # [[N, t_i]]
    parts = [token_logprobs(b, t, temperature, with_entropy, entropy_grad) for b, t in zip(blocks, targets)]
    logprobs = torch.cat([logprob for logprob, _ in parts], dim=1)  # [N, T]
    entropy = torch.cat([entropy for _, entropy in parts], dim=1) if with_entropy else None  # [N, T]
    return mask_response(logprobs, response_mask), mask_response(entropy, response_mask), hidden


def check_layout(input_ids: torch.Tensor, width: int) -> None:
    """The response must be the last `width` columns, after at least one prompt column."""
    if input_ids.shape[1] <= width:
        raise ValueError(
            f"input_ids has {input_ids.shape[1]} columns; it needs the prompt before the {width} response ones"
        )


def mask_response(values: torch.Tensor | None, response_mask: torch.Tensor) -> torch.Tensor | None:
    """Zero outside the response mask ([N, T]; None passes through)."""
    if values is None:
        return None
    # where, not multiply: a padded position may hold -inf (a masked vocabulary entry) and -inf * 0 is nan.
    return torch.where(response_mask.bool(), values, torch.zeros_like(values))
