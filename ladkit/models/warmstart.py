"""The warm start of the built-in policy: a short supervised pass, its sampled-accuracy check, and the build.

`build_builtin(out_dir, ...)` random-inits the tiny Llama of `ladkit.models.builtin`, trains it with a plain
torch loop (AdamW, cross-entropy on completion tokens only) on solved compact countdown problems, measures
sampled accuracy at temperature 1 on held-out problems, and writes an HF folder plus `recipe.json`.
The aim (docs/design.md 9) is a policy that is right now and then (~0.1-0.3 of samples), so the first RL
rollouts score above zero and RL has room to improve: it is deliberately trained for minutes, not to convergence.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ladkit.models import countdown_data as cd


@dataclass
class WarmStartConfig:
    """Everything that determines the built-in model (recorded in recipe.json)."""

    seed: int = 0
    """Seeds the model init, the problem generator and the batch order."""
    steps: int = 1200
    """Optimiser steps of the supervised pass."""
    batch_size: int = 64
    """Sequences per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay to 10%)."""
    warmup: int = 50
    """Warm-up steps."""
    train_problems: int = 4000
    """Problems drawn from reasoning-gym for training (held-out ones removed)."""
    eval_problems: int = 200
    """Held-out problems the sampled accuracy is measured on."""
    eval_samples: int = 8
    """Samples per held-out problem (temperature 1)."""


def _encode(tokenizer, problem: cd.Problem, completion: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + EOS, and labels with the prompt masked (-100: no loss there)."""
    prompt = tokenizer(cd.compact_prompt(problem.numbers, problem.target), add_special_tokens=False)["input_ids"]
    answer = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt + answer, [-100] * len(prompt) + answer


def make_batch(tokenizer, problems, rng: random.Random) -> dict[str, torch.Tensor]:
    """A right-padded training batch; each problem gets a freshly sampled solution (variety across epochs)."""
    pairs = [_encode(tokenizer, p, cd.sample_completion(p, rng)) for p in problems]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), tokenizer.pad_token_id)  # [N, L]
    labels = torch.full((len(pairs), width), -100)  # [N, L]
    for row, (ids, labs) in enumerate(pairs):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
    return {"input_ids": input_ids, "attention_mask": (input_ids != tokenizer.pad_token_id).long(), "labels": labels}


def _lr_factor(step: int, config: WarmStartConfig) -> float:
    """Linear warm-up then cosine decay to 10% of the peak."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.steps - config.warmup)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))


def train(model, tokenizer, problems: list[cd.Problem], config: WarmStartConfig, log=print) -> list[float]:
    """The supervised pass: AdamW on completion-token cross-entropy. Returns the loss per step."""
    rng = random.Random(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config))
    model.train()
    losses = []
    for step in range(config.steps):
        loss = model(**make_batch(tokenizer, rng.sample(problems, config.batch_size), rng)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 100 == 0 or step == config.steps - 1:
            log(f"step {step:5d}  loss {loss.item():.3f}")
    model.eval()
    return losses


@torch.no_grad()
def sample_completions(model, tokenizer, prompts: list[str], n: int, max_new_tokens: int = 32) -> list[list[str]]:
    """n samples per prompt at temperature 1 (HF generate, left-padded batch); seed torch before calling."""
    tokenizer.padding_side = "left"  # generation appends at the right edge, so prompts must end there
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(
        **batch,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        num_return_sequences=n,
        max_new_tokens=max_new_tokens,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    texts = tokenizer.batch_decode(out[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)  # [B*n]
    return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]


def score(problem: cd.Problem, completions: list[str]) -> list[float]:
    """Rewards of completions: the countdown task's own reward when it is installed, else our exact check."""
    try:
        from ladkit.tasks.countdown import extract_answer, score_expression
    except ImportError:
        return [float(cd.is_correct(text, problem.numbers, problem.target)) for text in completions]
    answers = [extract_answer(text, "compact") for text in completions]
    return [score_expression(answer, problem.numbers, problem.target).reward for answer in answers]


def evaluate(model, tokenizer, problems: list[cd.Problem], n: int, seed: int = 0, chunk: int = 32) -> dict:
    """Sampled accuracy (mean over all samples) and the fraction of problems with >=1 correct of n."""
    torch.manual_seed(seed)
    rewards = []  # [B][n]
    for start in range(0, len(problems), chunk):
        part = problems[start : start + chunk]
        prompts = [cd.compact_prompt(p.numbers, p.target) for p in part]
        for problem, texts in zip(part, sample_completions(model, tokenizer, prompts, n)):
            rewards.append(score(problem, texts))
    flat = [r for row in rewards for r in row]
    return {
        "sampled_accuracy": sum(flat) / len(flat),
        f"any_correct_of_{n}": sum(max(row) for row in rewards) / len(rewards),
        "problems": len(problems),
        "samples_per_problem": n,
    }


def held_out_problems(count: int) -> list[cd.Problem]:
    """The default countdown task's eval problems (so RL's eval set was never trained on), else our own split."""
    try:
        from ladkit.tasks.countdown import CountdownTask
    except ImportError:
        pool = cd.reasoning_gym_problems(count * 2, seed=1_000_000_007)
        return cd.split_problems(pool, set())[:count]
    examples = CountdownTask(prompt_style="compact", eval_size=count, train_size=0).eval_examples()
    return [cd.Problem(tuple(e.metadata["numbers"]), e.answer, e.metadata["solution"]) for e in examples]


def split(config: WarmStartConfig) -> tuple[list[cd.Problem], list[cd.Problem]]:
    """Training problems (reasoning-gym, `config.seed`) with every held-out problem removed, and the held-out ones."""
    held_out = held_out_problems(config.eval_problems)
    train_pool = cd.reasoning_gym_problems(config.train_problems, seed=config.seed)
    return cd.split_problems(train_pool, {p.key for p in held_out}), held_out


def build_builtin(out_dir: str | Path, config: WarmStartConfig | None = None, log=print, command: str = "") -> dict:
    """Build the built-in policy into `out_dir` (HF format + recipe.json). Returns the recipe.

    `command` is recorded in recipe.json as the way to rebuild (the script passes its own command line).
    """
    from ladkit.models.builtin import new_builtin_model

    config = config or WarmStartConfig()
    clock = {"start": time.perf_counter()}
    train_set, held_out = split(config)
    log(f"{len(train_set)} training problems, {len(held_out)} held out")
    clock["data"] = time.perf_counter()
    model, tokenizer = new_builtin_model(config.seed)
    losses = train(model, tokenizer, train_set, config, log)
    clock["train"] = time.perf_counter()
    metrics = evaluate(model, tokenizer, held_out, config.eval_samples, seed=config.seed)
    clock["eval"] = time.perf_counter()
    log(f"held-out: {json.dumps(metrics)}")
    recipe = _recipe(model, config, losses, metrics, clock, command or "ladkit.models.warmstart.build_builtin()")
    _save(model, tokenizer, Path(out_dir), recipe)
    return recipe


def _recipe(model, config: WarmStartConfig, losses: list[float], metrics: dict, clock: dict, command: str) -> dict:
    """What recipe.json records: how to rebuild, how long it took, and what the result measured."""
    seconds = {
        "data": clock["data"] - clock["start"],
        "train": clock["train"] - clock["data"],
        "eval": clock["eval"] - clock["train"],
        "wall": clock["eval"] - clock["start"],
    }
    return {
        "command": command,
        "seed": config.seed,
        "steps": config.steps,
        "config": asdict(config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
        "seconds": {name: round(value, 1) for name, value in seconds.items()},
        "wall_seconds": round(seconds["wall"], 1),
        "torch_threads": torch.get_num_threads(),
        "versions": _versions(),
        "eval": metrics,
        "format": "prompt '{n1},{n2},{n3},{n4}->{target}:' then the expression, then EOS",
    }


def _versions() -> dict[str, str]:
    """Library versions the model was built with (sampling results depend on them)."""
    import reasoning_gym
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "reasoning_gym": reasoning_gym.__version__,
    }


def portable_tokenizer_class(folder: Path) -> None:
    """Name the tokenizer class "PreTrainedTokenizerFast": transformers 5 writes "TokenizersBackend" (its alias
    of the same class), which transformers 4 and the vLLM builds pinned to it cannot resolve."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2) + "\n")


def _save(model, tokenizer, out_dir: Path, recipe: dict) -> None:
    """Write into a sibling temp folder, then rename: a reader never sees a half-written model."""
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(tmp)
    portable_tokenizer_class(tmp)
    (tmp / "recipe.json").write_text(json.dumps(recipe, indent=2) + "\n")
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
