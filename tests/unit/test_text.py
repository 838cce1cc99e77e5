"""Titles of tracked prompts: the user's question out of real rendered chat templates, else the raw text.

Each string below is what the model family's own chat template renders (add_generation_prompt=True) for a
short conversation; the ChatML one was rendered with SmolLM2-135M-Instruct's tokenizer and is also what
decoding its token ids gives back (the trainer records decoded ids).
"""

from __future__ import annotations

import pytest

from ladkit.text import prompt_title, question_of, shorten

QUESTION = "Using the numbers 3, 5, 7, 2, make 24. Answer with an expression."

RENDERED = {
    "chatml (SmolLM2, Qwen2.5)": (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    ),
    "llama 3.1": (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        "Today Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{QUESTION}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "gemma 2": f"<bos><start_of_turn>user\n{QUESTION}<end_of_turn>\n<start_of_turn>model\n",
    "phi-3": f"<|system|>\nYou are helpful.<|end|>\n<|user|>\n{QUESTION}<|end|>\n<|assistant|>\n",
    "zephyr": f"<|system|>\nYou are helpful.</s>\n<|user|>\n{QUESTION}</s>\n<|assistant|>\n",
    "granite 3": (
        "<|start_of_role|>system<|end_of_role|>You are Granite.<|end_of_text|>\n"
        f"<|start_of_role|>user<|end_of_role|>{QUESTION}<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>"
    ),
    "deepseek r1": f"<｜begin▁of▁sentence｜>You are helpful.<｜User｜>{QUESTION}<｜Assistant｜><think>\n",
    "mistral": f"<s>[INST] {QUESTION} [/INST]",
    "llama 2 with a system prompt": f"<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\n{QUESTION} [/INST]",
}


@pytest.mark.parametrize("template", list(RENDERED))
def test_the_question_is_found_in_every_common_template(template):
    assert question_of(RENDERED[template]) == QUESTION


def test_the_last_user_turn_wins_in_a_multi_turn_chat():
    # ChatML as SmolLM2's template renders system, user, assistant, user.
    chat = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        "Hello!<|im_end|>\n<|im_start|>user\nWhat is 7 * 8?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert question_of(chat) == "What is 7 * 8?"
    mistral = "<s>[INST] Hi [/INST]Hello!</s>[INST] What is 7 * 8? [/INST]"
    assert question_of(mistral) == "What is 7 * 8?"


def test_plain_prompts_and_message_lists():
    assert question_of("5,9,1,1->14:") == "5,9,1,1->14:"  # the built-in model's compact prompt: no template
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    assert question_of(messages) == QUESTION  # a raw prompt field holding chat messages
    assert question_of([{"role": "system", "content": "only a system turn"}]) == "only a system turn"
    assert question_of("<|im_start|>user\n<|im_end|>") == "<|im_start|>user\n<|im_end|>"  # empty turn: raw text


def test_titles_are_one_short_line():
    # 60 characters: the first 57 of the question, then "..."
    title = prompt_title(RENDERED["chatml (SmolLM2, Qwen2.5)"])
    assert title == QUESTION[:57] + "..." and len(title) == 60
    assert prompt_title(RENDERED["gemma 2"], width=200) == QUESTION
    assert shorten("a\n\n  b\tc", 10) == "a b c"
    assert prompt_title(RENDERED["llama 3.1"]) == prompt_title(RENDERED["phi-3"])  # the template is gone


def test_the_live_dashboard_titles_a_tracked_prompt_by_its_question():
    pytest.importorskip("ipywidgets")
    pytest.importorskip("anywidget")
    from ladkit.viz.llm_dashboard import LiveTrainFigures

    live = LiveTrainFigures(steps=4, max_tracked=1)
    record = {
        "step": 0,
        "example_id": 0,
        "prompt": RENDERED["chatml (SmolLM2, Qwen2.5)"],
        "completions": ["a", "b"],
        "rewards": [1.0, 0.0],
        "advantages": [0.7, -0.7],
        "advantage_dist": [0.6, 0.4],
        "policy_dist": [0.5, 0.5],
        "sequence_dist": [0.5, 0.5],
    }
    live.update({"step": 0, "reward/mean": 0.5, "tracked": [record]})
    # the dashboard's own 48-character titles: the first 45 characters of the question, then "..."
    assert live.tracked.layout.annotations[0].text == QUESTION[:45] + "..."
