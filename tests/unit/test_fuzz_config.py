"""Property-based fuzzing of everything a user hands ladkit before a run starts: config dicts, `--set`
overrides, the `train` command line, and data-set rows.

The contract under test: malformed input is a one-line `LadkitError` (exit status 2 with "error: ..." on the
command line) or, for data rows, a row skipped and counted; never another exception. Every test draws
`FUZZ_EXAMPLES` cases, derandomized so CI sees the same cases on every run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ladkit.config import build
from ladkit.errors import LadkitError
from ladkit.tasks.datasets import DatasetTask
from ladkit.training.config import TrainConfig
from ladkit.training.resolve import resolve

FUZZ_EXAMPLES = 500
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _sections(cls: type, prefix: str = "") -> dict[str, type]:
    """Dotted name -> dataclass, for TrainConfig and every nested section."""
    out = {prefix.rstrip("."): cls}
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[spec.name]):
            out.update(_sections(hints[spec.name], f"{prefix}{spec.name}."))
    return out


SECTIONS = _sections(TrainConfig)
FIELD_NAMES = sorted({spec.name for cls in SECTIONS.values() for spec in dataclasses.fields(cls)})
DOTTED_KEYS = sorted(
    f"{section + '.' if section else ''}{spec.name}"
    for section, cls in SECTIONS.items()
    for spec in dataclasses.fields(cls)
)

# The values a config can be wrong with: wrong types, nulls, containers, huge / non-finite / negative numbers,
# empty and odd strings, and near-miss spellings of valid values.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2, 10**400, -(10**400), 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.5, 0.0, 1e308, 5e-324]),
    st.text(max_size=12),
    st.sampled_from(["", " ", "nan", "inf", "1e400", "lad", "grpo", "hf", "vllm", "all-linear", "kl", "a:b", "\n"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
key_names = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8), st.integers(), st.none())


@st.composite
def section_dicts(draw, cls: type, depth: int = 0) -> dict:
    """A mapping for `cls`: mostly its own keys with junk (or nested junk) values, sometimes unknown keys."""
    hints = typing.get_type_hints(cls)
    names = [spec.name for spec in dataclasses.fields(cls)]
    out: dict = {}
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        if dataclasses.is_dataclass(hints[name]) and depth < 2 and draw(st.booleans()):
            out[name] = draw(section_dicts(hints[name], depth + 1))
        else:
            out[name] = draw(junk)
    if draw(st.integers(0, 4)) == 0:
        out[draw(key_names)] = draw(st.one_of(junk, st.dictionaries(key_names, junk, max_size=2)))
    return out


def _one_line(err: BaseException) -> None:
    message = str(err)
    assert message and "\n" not in message and "\r" not in message, repr(message)


@FUZZ
@given(st.sampled_from(sorted(SECTIONS)).flatmap(lambda name: st.tuples(st.just(name), section_dicts(SECTIONS[name]))))
def test_random_config_dicts_give_only_one_line_ladkit_errors(case):
    """Any section (TrainConfig or a nested one) fed random keys and values: built, or a one-line LadkitError."""
    name, data = case
    try:
        build(SECTIONS[name], data)
    except LadkitError as err:
        _one_line(err)


@FUZZ
@given(st.one_of(junk, st.lists(junk, max_size=2)).filter(lambda v: v is not None))
def test_a_section_that_is_not_a_mapping_is_a_ladkit_error(value):
    """A section given as a scalar or list (null means "the defaults"); a dict here is a junk `lr` instead."""
    data = {"optim": value} if not isinstance(value, dict) else {"optim": {"lr": value}}
    with pytest.raises(LadkitError) as caught:
        build(TrainConfig, data)
    _one_line(caught.value)


yaml_values = st.one_of(
    st.sampled_from(
        [
            "",
            "null",
            "~",
            "[]",
            "{}",
            "[1, [2]]",
            "{a: {b: c}}",
            ".nan",
            ".inf",
            "-.inf",
            "-1",
            "0",
            "1e400",
            "9" * 5000,
            "[" * 3000,
            "&a [*a]",
            "!!python/object/apply:os.system ['true']",
            "!!binary xx",
            "2001-01-01",
            "!!set {a}",
            "'unterminated",
            "a: b: c",
            "\x00",
            "true",
            "yes",
            "0x10",
            "1_000",
            "grpo",
            "vllm",
        ]
    ),
    st.text(max_size=16),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats().map(repr),
)
set_keys = st.one_of(
    st.sampled_from(DOTTED_KEYS),
    st.sampled_from(DOTTED_KEYS).map(lambda k: k + ".x"),
    st.sampled_from(["", ".", "a..b", "task.", ".steps", " steps ", "lad.eta.x.y", "model.lora_rank.0"]),
    st.text(max_size=10),
)
overrides = st.lists(
    st.one_of(st.tuples(set_keys, yaml_values).map(lambda kv: f"{kv[0]}={kv[1]}"), st.text(max_size=12)),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(overrides)
def test_random_set_overrides_give_only_one_line_ladkit_errors(items):
    """`--set a.b=c` strings through the full resolution (default preset <- overrides): no other exception."""
    try:
        config = resolve(None, items, {})
    except LadkitError as err:
        _one_line(err)
    else:
        assert isinstance(config, TrainConfig)


@FUZZ
@given(items=overrides)
def test_cli_train_with_random_overrides_exits_cleanly(items, monkeypatch, tmp_path):
    """`ladkit train --set ...` through the console entry point: exit 0, or exit 2 with one 'error:' line."""
    from ladkit_cli import train as train_cmd
    from ladkit_cli.main import main

    started = []
    monkeypatch.setattr(train_cmd, "_run", lambda config, run_dir, resume, live: started.append(config))
    argv = ["ladkit", "train", "--no-live", "--run-dir", str(tmp_path / "run")]
    for item in items:
        argv += ["--set", item]
    monkeypatch.setattr(sys, "argv", argv)
    with CliRunner().isolation() as (_, stderr, _):
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        sys.stderr.flush()  # the isolated stream is buffered
        err = stderr.getvalue().decode()
    if code == 0:
        assert len(started) == 1 and isinstance(started[0], TrainConfig)
    else:
        assert code == 2 and not started, (code, err)
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), err


# ------------------------------------------------------------------------------------------------ data rows

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(["", "   ", "#### ", "#### 7", "\\boxed{", "\\boxed{3}", "\\fbox{}", "-", "1,000", "What is 2+2?"]),
    st.lists(st.fixed_dictionaries({"role": json_values, "content": json_values}), max_size=2),  # chat messages
)
data_rows = st.one_of(
    st.fixed_dictionaries({}, optional={"prompt": field_values, "answer": field_values, "other": json_values}),
    st.fixed_dictionaries({"prompt": field_values, "answer": field_values}),
    json_values,  # a line that is not a record at all
)


@FUZZ
@given(rows=st.lists(data_rows, min_size=1, max_size=8))
def test_random_data_rows_are_used_skipped_and_counted_or_refused(rows, tmp_path):
    """A local JSONL of junk rows: the task loads with every row accounted for, or refuses in one line."""
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    task = DatasetTask(str(path), prompt_style="chat", eval_size=0, scorer=object())
    try:
        examples = task.train_examples()
    except LadkitError as err:
        _one_line(err)
        refused = re.match(r"(\d+) of (\d+) rows of .* could not be used", str(err))
        if refused:  # the threshold: more than half the rows unusable
            skipped, total = map(int, refused.groups())
            assert total == len(rows) and skipped > 0.5 * total
        else:  # the only other refusal: no row has the field at all (a mapping typo)
            assert "not found" in str(err), str(err)
        return
    stats = task.stats["train"]
    assert stats["rows"] == len(rows)
    assert len(examples) + stats["skipped"] + stats["duplicates"] == len(rows)
    assert stats["skipped"] <= 0.5 * len(rows)
    for example in examples:
        assert example.answer and example.prompt


def test_max_skipped_fraction_refuses_mostly_unusable_data(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [{"prompt": "p1", "answer": "1"}, {"prompt": "p2", "answer": ""}, {"prompt": "", "answer": "3"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(LadkitError, match=r"^2 of 3 rows of .*d\.jsonl could not be used .*task\.dataset\.max_skipped"):
        DatasetTask(str(path), eval_size=0, scorer=object()).train_examples()
    task = DatasetTask(str(path), eval_size=0, scorer=object(), max_skipped_fraction=0.7)
    assert len(task.train_examples()) == 1 and task.skipped_rows == 2


def test_max_skipped_fraction_is_validated_and_reaches_the_task(tmp_path):
    with pytest.raises(LadkitError, match=r"^task\.dataset\.max_skipped_fraction must be in \[0, 1\], got 1\.5$"):
        build(TrainConfig, {"task": {"dataset": {"max_skipped_fraction": 1.5}}})
    from ladkit.tasks import make_task

    data_set = {"path": "x.jsonl", "max_skipped_fraction": 0.25}
    task_section = {"name": "dataset", "dataset": data_set, "reward_workers": 1}
    config = build(TrainConfig, {"task": task_section})
    task = make_task(config.task)
    try:
        assert task.max_skipped_fraction == 0.25
    finally:
        task.close()
