"""Bad input on the real-model path: one line naming the problem and the fix, and no run folder left behind.

Covers ladkit.models.inputs (chat template, context length) and, through `train()` and the CLI, the four
cases of issue 14: a folder that is not a model, chat prompts for a model without a chat template, a
tokenizer without an EOS token, a prompt longer than the model's context.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ladkit.config import build
from ladkit.errors import LadkitError
from ladkit.models.inputs import context_length, render_all, require_chat_template
from ladkit.models.loading import ModelConfig, load_policy, render_prompt
from ladkit.tasks.base import Example
from ladkit.training.config import TrainConfig

CHAT = [{"role": "user", "content": "the quick brown fox"}]


def test_chat_prompts_need_a_chat_template(make_bpe_tokenizer):
    tokenizer = make_bpe_tokenizer()
    require_chat_template(tokenizer, "chat", "m")  # has one: fine
    tokenizer.chat_template = None
    require_chat_template(tokenizer, "compact", "m")  # plain text needs none
    with pytest.raises(LadkitError) as error:
        require_chat_template(tokenizer, "chat", "m")
    assert str(error.value) == (
        "task.prompt_style is chat but the tokenizer of model 'm' has no chat template; use "
        "--set task.prompt_style=compact (plain-text prompts), or add a chat_template to its tokenizer_config.json"
    )


def test_render_all_renders_each_prompt_once_and_checks_the_context(llama_bpe_dir):
    model, tokenizer = load_policy(ModelConfig(name_or_path=str(llama_bpe_dir), lora=False))
    assert context_length(model) == 64  # the fixture's max_positions
    examples = [Example("a", CHAT), Example("b", "the lazy dog"), Example("a", CHAT)]
    rendered = render_all(tokenizer, model, examples, max_new_tokens=8)
    assert rendered == {"a": render_prompt(tokenizer, CHAT), "b": render_prompt(tokenizer, "the lazy dog")}
    longest = max(len(ids) for ids in rendered.values())
    render_all(tokenizer, model, examples, max_new_tokens=64 - longest)  # exactly fills the context: fine
    with pytest.raises(LadkitError) as error:
        render_all(tokenizer, model, examples, max_new_tokens=65 - longest)
    name = "a" if len(rendered["a"]) == longest else "b"
    assert str(error.value).startswith(
        f"prompt {name!r} is {longest} tokens and rollout.max_new_tokens is {65 - longest}: 65 exceeds the model's "
        "context of 64 tokens; lower rollout.max_new_tokens"
    )


def config_for(model_dir, **task) -> TrainConfig:
    return build(
        TrainConfig,
        {
            "model": {"name_or_path": str(model_dir)},
            "steps": 1,
            "prompts_per_step": 2,
            "group_size": 2,
            "mini_batches": 1,
            "eval_every": 0,
            "tracked_prompts": 0,
            "threads": 1,
            "task": {"name": "arithmetic", "train_size": 4, "eval_size": 2, **task},
        },
    )


@pytest.fixture
def no_template_dir(tmp_path_factory, make_bpe_tokenizer, save_tiny_model):
    """The tiny BPE Llama with its chat template removed (a base model's tokenizer)."""
    tokenizer = make_bpe_tokenizer()
    tokenizer.chat_template = None
    return save_tiny_model(tmp_path_factory.mktemp("no_template"), tokenizer, "llama")


@pytest.mark.parametrize(
    ("case", "task", "message"),
    [
        ("not_a_model", {}, "could not be loaded as a Hugging Face causal LM"),
        ("no_template", {"prompt_style": "chat"}, "task.prompt_style is chat but the tokenizer of model"),
        ("no_eos", {}, "has no EOS token, so no response could end"),
        # byte-level BPE with a 300-token vocabulary: a chat arithmetic prompt is well over the 64 positions
        ("too_long", {"prompt_style": "chat"}, "exceeds the model's context of 64 tokens"),
    ],
)
def test_bad_real_model_input_fails_before_writing_anything(request, tmp_path, case, task, message):
    from ladkit.training.loop import train

    folders = {"no_template": "no_template_dir", "no_eos": "llama_no_eos_dir", "too_long": "llama_bpe_dir"}
    model_dir = request.getfixturevalue(folders[case]) if case in folders else tmp_path / "notes"
    if case == "not_a_model":
        model_dir.mkdir()
        (model_dir / "notes.txt").write_text("not a model")
    run = tmp_path / "run"
    with pytest.raises(LadkitError) as error:
        train(config_for(model_dir, **task), run)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not run.exists()


def test_cli_says_it_in_one_line_and_leaves_no_run_folder(no_template_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--model", str(no_template_dir), "--set", "task.prompt_style=chat", "--steps", "1",
            "--threads", "1", "--no-live", "--run-dir", str(run)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = "from ladkit_cli.main import main; main()"
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: task.prompt_style is chat but the tokenizer of model {str(no_template_dir)!r} has no chat template; "
        "use --set task.prompt_style=compact (plain-text prompts), or add a chat_template to its tokenizer_config.json"
    ]
    assert out.stdout.startswith("using preset real-lm for a model that is not builtin: chat prompts")
    assert not run.exists()
