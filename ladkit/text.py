"""Prompt text for people: the user's question out of a rendered chat prompt, shortened to a title.

The trainer records a tracked prompt as its decoded token ids, so a chat model's record starts with the
template ("<|im_start|>system\\nYou are a ..."), the same for every prompt. `question_of` finds the last user
turn of the common templates (ChatML, Llama 3, Gemma, Phi-3/Zephyr, Granite, DeepSeek, Mistral/Llama 2
[INST]) and falls back to the whole text; `prompt_title` makes it one short line. Used by the compare
report and the LLM dashboard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


def _turn(start: str, *ends: str) -> re.Pattern:
    """A user turn: its start marker, its text (as short as possible), then the first end marker or the end."""
    return re.compile(re.escape(start) + r"(.*?)(?:" + "|".join(map(re.escape, ends)) + r"|$)", re.S)


# The user turns of each template family, as rendered by its chat template.
USER_TURNS = [
    _turn("<|im_start|>user", "<|im_end|>", "<|im_start|>"),  # ChatML: Qwen, SmolLM, ...
    _turn("<|start_header_id|>user<|end_header_id|>", "<|eot_id|>", "<|start_header_id|>"),  # Llama 3
    _turn("<start_of_turn>user", "<end_of_turn>", "<start_of_turn>"),  # Gemma
    _turn("<|user|>", "<|end|>", "</s>", "<|assistant|>", "<|system|>"),  # Phi-3, Zephyr
    _turn("<|start_of_role|>user<|end_of_role|>", "<|end_of_text|>", "<|start_of_role|>"),  # Granite
    _turn("<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"),  # DeepSeek V3 / R1
    _turn("[INST]", "[/INST]"),  # Mistral, Llama 2
]
LLAMA2_SYSTEM = re.compile(r"<<SYS>>.*?<</SYS>>", re.S)  # Llama 2 puts the system prompt inside the first [INST]


def question_of(prompt: Any) -> str:
    """The user's question: the last user message of a message list, the last user turn of a rendered chat
    template, or the text itself when it is neither."""
    if isinstance(prompt, Sequence) and not isinstance(prompt, str):
        return _last_user_message(prompt)
    text = str(prompt)
    for pattern in USER_TURNS:
        turns = [turn.strip() for turn in pattern.findall(text)]
        turns = [LLAMA2_SYSTEM.sub("", turn).strip() for turn in turns]
        if turns and turns[-1]:
            return turns[-1]
    return text.strip()


def _last_user_message(messages: Sequence[Any]) -> str:
    """Content of the last {"role": "user"} message; all messages' text when none is a user's."""
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
    if users:
        return str(users[-1].get("content", "")).strip()
    return " ".join(str(m.get("content", m) if isinstance(m, Mapping) else m) for m in messages).strip()


def shorten(text: str, width: int = 60) -> str:
    """One line of at most `width` characters: whitespace runs become one space, an ellipsis marks a cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def prompt_title(prompt: Any, width: int = 60) -> str:
    """The question of a prompt (see question_of) on one line of at most `width` characters."""
    return shorten(question_of(prompt), width)
