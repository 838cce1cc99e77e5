"""Checks of a run's prompts against its model, made before anything is written: one line per problem.

- chat prompts (`task.prompt_style=chat`) need a tokenizer with a chat template: without one, the messages would
  be flattened into "user: ..." text the model was never trained on, and its answers mean little.
- every prompt plus `rollout.max_new_tokens` must fit the model's context (`max_position_embeddings`): past it,
  positions the model has never seen (or, with learned position embeddings, an index error mid-run).
- before both, a data set drops its prompts over `task.dataset.max_prompt_tokens` tokens (`fit_prompts`).

`render_all` renders every prompt once (train and held-out) and returns the token ids by example id, so the
trainer's prompt cache is filled by the same pass that checks them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ladkit.errors import LadkitError


def require_chat_template(tokenizer, prompt_style: str, model_name: str) -> None:
    """A one-line error when chat prompts are asked of a tokenizer that has no chat template."""
    if prompt_style == "chat" and not getattr(tokenizer, "chat_template", None):
        raise LadkitError(
            f"task.prompt_style is chat but the tokenizer of model {model_name!r} has no chat template; use "
            "--set task.prompt_style=compact (plain-text prompts), or add a chat_template to its tokenizer_config.json"
        )


def context_length(model) -> int | None:
    """The longest sequence the model's positions cover (None when its config does not say)."""
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def fit_prompts(task, tokenizer) -> dict[str, list[int]]:
    """Let a task that bounds its prompts in tokens (a data set's `max_prompt_tokens`: `fit_prompts`) drop the
    longer ones, measured as the model sees them; returns the token ids rendered on the way, by example id."""
    from ladkit.models.loading import render_prompt

    rendered: dict[str, list[int]] = {}

    def tokens(example) -> int:
        if example.id not in rendered:
            rendered[example.id] = render_prompt(tokenizer, example.prompt)
        return len(rendered[example.id])

    fit = getattr(task, "fit_prompts", None)
    if fit is not None:
        fit(tokens)
    return rendered


def render_all(
    tokenizer, model, examples: Iterable, max_new_tokens: int, rendered: dict[str, list[int]] | None = None
) -> dict[str, list[int]]:
    """Token ids of every example's prompt by example id (`rendered`: ids already made, reused); a one-line error
    naming the first prompt that, with `max_new_tokens`, does not fit the model's context."""
    from ladkit.models.loading import render_prompt

    limit = context_length(model)
    known, rendered = rendered or {}, {}
    for example in examples:
        if example.id in rendered:
            continue
        ids = rendered[example.id] = known.get(example.id) or render_prompt(tokenizer, example.prompt)
        if limit is not None and len(ids) + max_new_tokens > limit:
            raise LadkitError(
                f"prompt {example.id!r} is {len(ids)} tokens and rollout.max_new_tokens is {max_new_tokens}: "
                f"{len(ids) + max_new_tokens} exceeds the model's context of {limit} tokens; lower "
                "rollout.max_new_tokens, drop the long prompts from the data, or use a model with a longer context"
            )
    return rendered


def check_inputs(config, task, tokenizer, model) -> dict[str, list[int]]:
    """Both checks for a TrainConfig-like `config` (task.prompt_style, rollout.max_new_tokens, model.name_or_path)
    over the task's training and held-out prompts; returns their token ids by example id."""
    require_chat_template(tokenizer, config.task.prompt_style, config.model.name_or_path)
    rendered = fit_prompts(task, tokenizer)  # a data set's max_prompt_tokens, in the model's tokens
    examples = [*task.train_examples(), *task.eval_examples()]
    return render_all(tokenizer, model, examples, config.rollout.max_new_tokens, rendered)


__all__ = ["check_inputs", "context_length", "fit_prompts", "render_all", "require_chat_template"]
