"""Code data sets: the presets (HumanEval, HumanEval+, MBPP, DeepCoder, the built-in set) and row conversion.

Owns turning one data-set row into (prompt text, tests, entry point, prefix). Tests use one schema for
every source: a list of `{"input": str, "output": str}` (stdin/stdout) or `{"assert": "assert f(1) == 2"}`.

    humaneval / humanevalplus  prompt (signature + docstring), test (`def check(candidate)`), entry_point:
                               one assert test, `check(<entry_point>)`; the prompt is also the program prefix,
                               so a completion that continues the function body still runs
    mbpp                       text, test_list (asserts), test_setup_code; the first assert goes in the prompt
                               (the function name is otherwise unknowable)
    deepcoder                  problem, tests: a JSON string of {input, output, testtype}; "functional" tests
                               call metadata.func_name (on `Solution()` when the program defines that class)
    code (local or hub)        `prompt_field` (default prompt) and `answer_field` (default tests), the tests
                               a list or a JSON string of the schema above; optional entry_point
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ladkit.shipped import shipped_path

BUILTIN_PATH = shipped_path("code", "builtin.jsonl")
_CALLED = re.compile(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True)
class CodePreset:
    """Where a code data set lives, its splits, and which row schema it has."""

    dataset: str
    config: str | None
    split: str
    schema: str  # humaneval, mbpp, deepcoder or generic
    eval_split: str | None = None
    eval_only: bool = False
    prompt_field: str = "prompt"
    tests_field: str = "tests"


CODE_PRESETS = {
    "humaneval": CodePreset("openai/openai_humaneval", None, "test", "humaneval", eval_only=True, tests_field="test"),
    "humanevalplus": CodePreset(
        "evalplus/humanevalplus", None, "test", "humaneval", eval_only=True, tests_field="test"
    ),
    "mbpp": CodePreset("google-research-datasets/mbpp", "full", "train", "mbpp", "test", False, "text", "test_list"),
    "deepcoder": CodePreset(
        "agentica-org/DeepCoder-Preview-Dataset", "lcbv5", "train", "deepcoder", "test", False, "problem", "tests"
    ),
    "code": CodePreset("", None, "train", "generic"),  # task.dataset names the source
    "code_builtin": CodePreset(str(BUILTIN_PATH), None, "train", "generic"),
}


@dataclass
class CodeRow:
    """One usable row: what the prompt says and how a program for it is checked."""

    prompt: str
    tests: list[dict]
    entry_point: str | None = None
    prefix: str = ""  # prepended to a completion that does not define entry_point itself (HumanEval)


def _json_list(value: Any) -> list | None:
    """A list, or a JSON string holding one (DeepCoder stores its tests as text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, list) else None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def humaneval_row(row: dict, prompt_field: str, tests_field: str) -> CodeRow | None:
    prompt, test, entry = row.get(prompt_field), _text(row.get(tests_field)), _text(row.get("entry_point"))
    if not _text(prompt) or not test or not entry:
        return None
    return CodeRow(prompt.strip(), [{"assert": f"{test}\n\ncheck({entry})"}], entry, prefix=prompt)


def mbpp_row(row: dict, prompt_field: str, tests_field: str) -> CodeRow | None:
    text, asserts = _text(row.get(prompt_field)), _json_list(row.get(tests_field))
    if not text or not asserts or not all(isinstance(a, str) and a.strip() for a in asserts):
        return None
    setup = (row.get("test_setup_code") or "").strip()
    tests = [{"assert": f"{setup}\n{a}" if setup else a} for a in asserts]
    called = _CALLED.search(asserts[0])
    prompt = f"{text}\nYour code should pass this test:\n{asserts[0]}"
    return CodeRow(prompt, tests, called.group(1) if called else None)


def _functional(test: dict, function: str) -> dict | None:
    """LiveCodeBench's functional test (one JSON argument per input line) as an assert."""
    try:
        args = [json.loads(line) for line in str(test["input"]).splitlines() if line.strip()]
        expected = json.loads(str(test["output"]))
    except (json.JSONDecodeError, KeyError):
        return None
    call = f"(Solution().{function} if 'Solution' in globals() else {function})"
    return {"assert": f"assert {call}(*{args!r}) == {expected!r}"}


def deepcoder_row(row: dict, prompt_field: str, tests_field: str) -> CodeRow | None:
    problem, tests = _text(row.get(prompt_field)), _json_list(row.get(tests_field))
    if not problem or not tests:
        return None
    metadata = row.get("metadata")
    metadata = json.loads(metadata) if isinstance(metadata, str) and metadata.startswith("{") else metadata or {}
    function = metadata.get("func_name") if isinstance(metadata, dict) else None
    converted = []
    for test in tests:
        if isinstance(test, dict) and test.get("testtype") == "functional":
            converted.append(_functional(test, function) if function else None)
        elif isinstance(test, dict):
            converted.append({"input": test.get("input"), "output": test.get("output")})
        else:
            converted.append(None)
    return None if None in converted else CodeRow(problem, converted, function)


def generic_row(row: dict, prompt_field: str, tests_field: str) -> CodeRow | None:
    prompt, tests = row.get(prompt_field), _json_list(row.get(tests_field))
    if not _text(prompt) or not tests:
        return None
    return CodeRow(prompt.strip(), tests, _text(row.get("entry_point")))


CONVERTERS = {"humaneval": humaneval_row, "mbpp": mbpp_row, "deepcoder": deepcoder_row, "generic": generic_row}
