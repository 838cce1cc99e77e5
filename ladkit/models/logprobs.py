"""Per-token log-probabilities (and entropies) of response tokens under a causal LM: what objectives consume.

Batches are laid out the way rollouts produce them and TRL's GRPO does: each row is prompt then response,
prompts left-padded and responses right-padded, so the response occupies the last T columns of `input_ids`
and `response_mask` [N, T] marks its real tokens. Log-probs are computed in float32 whatever the model
dtype (docs/design.md 8.1: "in fp32"), a chunk of rows or positions at a time, recomputed in backward, so no
float32 [N, T, V] copy is ever held (token_logprobs); the model-dtype logits [N, T, V] themselves are the lm_head's.

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

import torch

CHUNK_ELEMENTS = 2**24  # fp32 logits elements per chunk in token_logprobs (64 MiB; at least one position)
_NO_SHARING: weakref.WeakSet = weakref.WeakSet()  # models whose cache cannot be repeated across rows


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, as HF `generate` and vLLM assign them (left padding aside)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [N, L]


def response_forward(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    width: int,
    prompt_index: torch.Tensor | None = None,
    prefix_model=None,
    want_hidden: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits [N, T, V] at the `width` positions that predict the last `width` tokens, and with `want_hidden`
    the last layer's hidden states over the prompt columns [N, P, H]).

    prompt_index [N]: rows with equal values share their prompt columns, which then go through the model once
    (module docstring). prefix_model: the module that runs that prompt pass (default `model`); under DDP the
    trainer passes the unwrapped model there, so the DDP wrapper sees exactly one forward per backward.
    """
    if prompt_index is not None:
        shared = _shared_prompt_forward(
            model, prefix_model or model, input_ids, attention_mask, width, prompt_index, want_hidden
        )
        if shared is not None:
            return shared
    inputs = dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
        use_cache=False,
    )
    if want_hidden:
        out = model(**inputs, output_hidden_states=True)
        return out.logits[:, -(width + 1) : -1], out.hidden_states[-1][:, : input_ids.shape[1] - width]
    try:
        # logits_to_keep = width + 1: the last position's logits predict past the sequence and are dropped.
        logits = model(**inputs, logits_to_keep=width + 1).logits  # [N, T+1, V]
    except TypeError:  # an architecture without logits_to_keep: full logits, then slice
        logits = model(**inputs).logits  # [N, L, V]
    return logits[:, -(width + 1) : -1], None  # [N, T, V]


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
    response = model(
        input_ids=input_ids[:, prompt_width:],
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask)[:, prompt_width:],
        past_key_values=prompt.past_key_values,
        use_cache=True,
    )
    # Response token 0 is predicted by the last prompt column; token t > 0 by response column t - 1.
    logits = torch.cat([prompt.logits[:, -1:][inverse], response.logits[:, :-1]], dim=1)  # [N, T, V]
    hidden = prompt.hidden_states[-1][inverse] if want_hidden else None  # [N, P, H]
    return logits, hidden


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
    fit in CHUNK_ELEMENTS, else a slice of one row's positions), and under autograd each chunk runs inside
    activation checkpointing, so what backward keeps is the model-dtype logits slice (a view, no copy) and
    the float32 chunk is recomputed there: no float32 [N, T, V] is ever held, with or without gradient.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rows, columns = chunk_shape(*logits.shape)
    checkpointed = torch.is_grad_enabled() and logits.requires_grad
    logprob_rows, entropy_rows = [], []
    for row_logits, row_targets in zip(logits.split(rows), targets.split(rows)):
        parts = [
            _chunk(chunk_logits, chunk_targets, temperature, with_entropy, entropy_grad, checkpointed)
            for chunk_logits, chunk_targets in zip(row_logits.split(columns, 1), row_targets.split(columns, 1))
        ]  # [(n, t), (n, t) or None]
        logprob_rows.append(torch.cat([logprob for logprob, _ in parts], 1))  # [n, T]
        if with_entropy:
            entropy_rows.append(torch.cat([entropy for _, entropy in parts], 1))  # [n, T]
    entropy = torch.cat(entropy_rows) if with_entropy else None  # [N, T]
    return torch.cat(logprob_rows), entropy  # [N, T]


def chunk_shape(rows: int, width: int, vocabulary: int) -> tuple[int, int]:
    """(rows, positions) of one float32 chunk of [rows, width, vocabulary] logits: as many whole rows as fit in
    CHUNK_ELEMENTS, else one row and as many positions as fit (at least one)."""
    whole_rows = CHUNK_ELEMENTS // max(1, width * vocabulary)
    if whole_rows >= 1:
        return min(rows, whole_rows), max(1, width)
    return 1, max(1, CHUNK_ELEMENTS // max(1, vocabulary))


def _chunk(logits, targets, temperature, with_entropy, entropy_grad, checkpointed):
    """_chunk_stats on one chunk, inside activation checkpointing when gradients flow (token_logprobs)."""
    if not checkpointed:
        return _chunk_stats(logits, targets, temperature, with_entropy, entropy_grad)
    from torch.utils.checkpoint import checkpoint

    return checkpoint(_chunk_stats, logits, targets, temperature, with_entropy, entropy_grad, use_reentrant=False)


def _chunk_stats(logits, targets, temperature: float, with_entropy: bool, entropy_grad: bool):
    """Log-probs of `targets` and (optionally) entropies, float32 [n, t], from one chunk of logits [n, t, V]."""
    scaled = logits.float() / temperature  # [n, t, V]
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
    with equal values share their prompt) and prefix_model: see response_forward.
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
    logits, hidden = response_forward(
        model, input_ids, attention_mask, width, prompt_index, prefix_model, want_hidden
    )  # [N, T, V], [N, P, H] or None
    logprobs, entropy = token_logprobs(logits, input_ids[:, -width:], temperature, with_entropy, entropy_grad)  # [N, T]
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
