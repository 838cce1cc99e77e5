"""Bad input that is a file or a command line, not a config value: data-set files (JSONL, JSON, CSV, parquet
bytes), advantage tables, run folders read by `compare`, and the `compare` / `eval` command lines.

The contract under test (issue 20.3): malformed input is a one-line `LadkitError` (exit status 2 with one
"error: ..." line from the console entry point), never another exception, and nothing is written: a snapshot
of the folder tree before and after is equal. The first tests pin each case found by hand; the fuzz tests
below draw about 600 cases in all (derandomized, so every run sees the same ones) in a few seconds.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ladkit.bandit.shapes import parse_table
from ladkit.compare import compare_runs, load_runs
from ladkit.errors import LadkitError
from ladkit.tasks.datasets import DatasetTask


def fuzz(examples: int) -> settings:
    # function_scoped_fixture: each example works in its own temporary folder, not tmp_path.
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and "dir" for every folder) under root."""
    return {
        str(path.relative_to(root)): "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
    }


def one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def run_cli(argv: list[str]) -> tuple[int, str]:
    """The console entry point with argv: (exit status, stderr). A LadkitError is status 2 and one line."""
    from ladkit_cli.main import main

    saved = sys.argv
    sys.argv = ["ladkit", *argv]
    try:
        with CliRunner().isolation() as (_, stderr, _):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            sys.stderr.flush()  # the isolated stream is buffered
            return code, stderr.getvalue().decode()
    finally:
        sys.argv = saved


def assert_clean_error(code: int, err: str) -> str:
    """Exit 2 with exactly one "error: ..." line (Typer's own usage errors, also status 2, are allowed)."""
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    if lines and lines[0].startswith("error: "):
        assert len(lines) == 1, err
    else:
        assert "Usage:" in err, err  # click's usage error: a bad flag or type
    return err


# ------------------------------------------------------------------------------------------- the cases found


def _parquet_bytes() -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table({"prompt": ["What is 1+1?", "2+2?"], "answer": ["2", "4"]}), sink)
    return sink.getvalue()


BAD_FILES = {
    "binary.jsonl": b"\xff\xfe\x00\x01binary\n",
    "latin1.csv": "prompt,answer\nd\xe9j\xe0 vu,1\n".encode("latin-1"),
    "huge_field.csv": b"prompt,answer\n" + b"x" * 200_000 + b",1\n",  # over csv's field limit (131072)
    "junk.parquet": b"PAR1 this is not parquet",
    "truncated.parquet": _parquet_bytes()[:-20],
    "bigint.jsonl": b'{"prompt": "p", "answer": ' + b"9" * 5000 + b"}\n",
    "bigint.json": b'[{"prompt": "p", "answer": ' + b"9" * 5000 + b"}]",
    "deep.json": b"[" * 100_000 + b"]" * 100_000,
    "latin1.json": '[{"prompt": "caf\xe9", "answer": "1"}]'.encode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_an_unreadable_data_file_is_one_line(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(BAD_FILES[name])
    before = snapshot(tmp_path)
    with pytest.raises(LadkitError) as caught:
        DatasetTask(str(path), eval_size=0, scorer=object()).train_examples()
    message = one_line(caught.value)
    assert message.startswith(str(path)), message  # names the file
    assert snapshot(tmp_path) == before


def test_data_file_errors_name_the_fix(tmp_path):
    cases = {"binary.jsonl": "byte 0 is not UTF-8", "latin1.csv": "save it as UTF-8 text", "junk.parquet": "parquet"}
    for name, expected in cases.items():
        (tmp_path / name).write_bytes(BAD_FILES[name])
        with pytest.raises(LadkitError, match=expected):
            DatasetTask(str(tmp_path / name), eval_size=0, scorer=object()).train_examples()


def test_a_non_utf8_advantage_table_is_one_line(tmp_path):
    path = tmp_path / "table.txt"
    path.write_bytes(b"0.1, 0.5\xff, 1")
    with pytest.raises(LadkitError, match=r"byte 8 is not UTF-8"):
        parse_table(str(path))
    code, err = run_cli(["bandit", "--shape", "table", "--table", str(path), "--steps", "1", "--no-live"])
    assert "byte 8 is not UTF-8" in assert_clean_error(code, err)


def _write_run(folder: Path, rows: list, objective: str = "lad", **config) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({"objective": objective, "seed": 0, **config}))
    (folder / "meta.json").write_text(json.dumps({"status": "completed"}))
    # json.dumps writes NaN for float('nan'), as Python's json (and so a hand-edited file) may
    (folder / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def test_compare_skips_a_nan_step_and_says_so(tmp_path):
    rows = [{"step": 0, "reward/mean": 0.1}, {"step": math.nan, "reward/mean": 5.0}, {"step": 1, "reward/mean": 0.3}]
    _write_run(tmp_path / "a", rows)
    runs, notes = load_runs([tmp_path / "a"])
    assert [row["step"] for row in runs[0].rows] == [0, 1]  # the NaN step is not a step
    assert "a: metrics.jsonl: line 2 is not a JSON row with a step; skipped" in notes
    comparison = compare_runs(runs, metrics=["reward/mean"], notes=notes)
    # final value: mean of the last FINAL_WINDOW=3 aligned steps, here both steps: (0.1 + 0.3) / 2
    assert comparison.result("lad", "reward/mean").final.mean == pytest.approx(0.2)


def test_compare_with_only_nan_steps_or_a_huge_value_is_clean(tmp_path):
    _write_run(tmp_path / "nan", [{"step": math.nan, "reward/mean": 1.0}, {"step": math.inf, "reward/mean": 1.0}])
    code, err = run_cli(["compare", str(tmp_path / "nan")])
    assert "no usable run to compare" in assert_clean_error(code, err)
    # 10**400 is valid JSON but too large for a float (numpy's isfinite raised): not a value, not a traceback
    _write_run(tmp_path / "big", [{"step": 0, "reward/mean": 10**400}, {"step": 1, "reward/mean": 0.5}])
    runs, notes = load_runs([tmp_path / "big"])
    comparison = compare_runs(runs, metrics=["reward/mean"], notes=notes)
    assert comparison.result("lad", "reward/mean").final.mean == 0.5


def test_compare_group_by_an_unknown_key_names_the_keys(tmp_path):
    _write_run(tmp_path / "runs" / "a", [{"step": 0, "reward/mean": 1.0}], lad={"inv_eta": 2})
    before = snapshot(tmp_path)
    code, err = run_cli(["compare", str(tmp_path / "runs"), "--group-by", "no.such.key"])
    message = assert_clean_error(code, err)
    assert "--group-by 'no.such.key' is not a key of any run's config.yaml" in message
    assert "lad.inv_eta, objective, seed" in message  # the dotted keys the runs do have
    assert snapshot(tmp_path) == before
    # a key that some run has still groups (runs without it form their own "key=None" group)
    runs, _ = load_runs([tmp_path / "runs"])
    assert list(compare_runs(runs, metrics=["reward/mean"], group_by="lad.inv_eta").groups) == ["lad.inv_eta=2"]


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_compare_out_that_cannot_be_a_file_is_refused_before_anything(where, tmp_path):
    _write_run(tmp_path / "runs" / "a", [{"step": 0, "reward/mean": 1.0}])
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    out = tmp_path / "folder" if where == "folder" else tmp_path / "file" / "sub" / "report.html"
    before = snapshot(tmp_path)
    code, err = run_cli(["compare", str(tmp_path / "runs"), "--out", str(out)])
    message = assert_clean_error(code, err)
    assert ("is a folder; give a file path" if where == "folder" else "is a file, not a folder") in message
    assert snapshot(tmp_path) == before


def test_compare_out_into_a_missing_folder_makes_it(tmp_path):
    from ladkit.compare.report import write_report

    _write_run(tmp_path / "runs" / "a", [{"step": 0, "reward/mean": 1.0}])
    runs, notes = load_runs([tmp_path / "runs"])
    out = write_report(compare_runs(runs, metrics=["reward/mean"], notes=notes), tmp_path / "new" / "deep" / "r.html")
    assert out.is_file() and out.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.html"]  # the temporary file was renamed away


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--prompts", "-3", "--prompts must be >= 1, got -3"),
        ("--prompts", "0", "--prompts must be >= 1, got 0"),
        ("--samples", "0", "--samples must be >= 1, got 0"),
        ("--checkpoint", "-1", "--checkpoint is a step (>= 0), got -1"),
        ("--temperature", "0", "--temperature must be a finite number > 0, got 0.0"),
        ("--temperature", "nan", "--temperature must be a finite number > 0, got nan"),
        ("--threads", "0", "--threads must be >= 1, got 0"),
    ],
)
def test_eval_counts_are_checked_before_anything_loads(flag, value, expected, tmp_path, monkeypatch):
    import ladkit.evaluation

    monkeypatch.setattr(ladkit.evaluation, "evaluate_run", lambda *a, **k: pytest.fail("evaluate_run was reached"))
    code, err = run_cli(["eval", str(tmp_path), flag, value])
    assert expected in assert_clean_error(code, err)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------- fuzzing

# Text a careless user or a torn write produces: odd Unicode, control characters, very long strings.
junk_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "\ufeff", "\ud7ff", "NaN", "-Infinity", "1e999", "#### 3", "\\boxed{"]),
    st.integers(min_value=10_000, max_value=200_000).map(lambda n: "x" * n),  # huge strings
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), junk_text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(junk_text, inner, max_size=3)),
    max_leaves=6,
)


def _jsonl(rows: list) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _csv(rows: list) -> bytes:
    lines = ["prompt,answer"] + [",".join(str(value).replace("\n", " ") for value in row) for row in rows]
    return "\n".join(lines).encode("utf-8", errors="surrogatepass")


def _parquet(rows: list) -> bytes:
    sink = io.BytesIO()
    table = pa.table({"prompt": [str(r[0]) for r in rows], "answer": [str(r[1]) for r in rows]})
    pq.write_table(table, sink)
    return sink.getvalue()


def _mutate(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    """Truncate at `cut` (a fraction of the length, in thousandths) and overwrite a few bytes: a torn or rotted
    file."""
    data = bytearray(data[: max(1, len(data) * cut // 1000)])
    for position, byte in flips if data else []:
        data[position % len(data)] = byte
    return bytes(data)


record = st.fixed_dictionaries({"prompt": json_values, "answer": json_values})
pairs = st.lists(st.tuples(junk_text, junk_text), min_size=1, max_size=5)
data_files = st.one_of(
    st.tuples(st.just(".jsonl"), st.lists(st.one_of(record, json_values), min_size=1, max_size=5).map(_jsonl)),
    st.tuples(st.just(".json"), st.lists(record, min_size=1, max_size=5).map(lambda r: json.dumps(r).encode())),
    st.tuples(st.just(".csv"), pairs.map(_csv)),
    st.tuples(st.just(".parquet"), pairs.map(_parquet)),
    st.tuples(st.sampled_from([".jsonl", ".json", ".csv", ".parquet"]), st.binary(max_size=200)),
)
damage = st.tuples(
    st.integers(min_value=1, max_value=1000),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=3),
)


@fuzz(200)
@given(file=data_files, damaged=st.booleans(), how=damage)
def test_fuzzed_data_files_load_or_refuse_in_one_line_and_write_nothing(file, damaged, how):
    suffix, data = file
    data = _mutate(data, *how) if damaged else data
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"rows{suffix}"
        path.write_bytes(data)
        before = snapshot(Path(folder))
        try:
            task = DatasetTask(str(path), eval_split=0.5, scorer=object(), max_skipped_fraction=1.0)
            examples = [*task.train_examples(), *task.eval_examples()]
            assert all(example.prompt and example.answer for example in examples)
        except LadkitError as error:
            one_line(error)
        assert snapshot(Path(folder)) == before


table_specs = st.one_of(
    st.lists(st.one_of(st.floats(), st.integers(), junk_text), max_size=6).map(lambda v: json.dumps(v).encode()),
    st.lists(st.floats(), max_size=6).map(lambda v: ", ".join(map(str, v)).encode()),
    st.binary(max_size=100),
)


@fuzz(100)
@given(data=table_specs, suffix=st.sampled_from([".json", ".txt", ".csv"]))
def test_fuzzed_advantage_table_files_parse_or_refuse_in_one_line(data, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"table{suffix}"
        path.write_bytes(data)
        try:
            values = parse_table(str(path))
            assert len(values) >= 2 and bool(values.isfinite().all())
        except LadkitError as error:
            one_line(error)


def _good_run_files() -> dict[str, bytes]:
    rows = [{"step": step, "reward/mean": 0.1 * step, "eval/pass@1": 0.5} for step in range(4)]
    return {
        "config.yaml": yaml.safe_dump({"objective": "lad", "lad": {"divergence": "js"}, "seed": 0}).encode(),
        "meta.json": json.dumps({"status": "completed"}).encode(),
        "metrics.jsonl": _jsonl(rows),
        "eval.jsonl": _jsonl([{"step": 3, "eval/pass@1": 0.5, "per_prompt": [{"example_id": "a", "n": 1}]}]),
        "eval_prompts.jsonl": _jsonl([{"step": 3, "example_id": "a", "n": 4, "correct": 2}]),
        "tracked.jsonl": _jsonl([{"step": 3, "example_id": "a", "completions": ["x"]}]),
    }


run_file_contents = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.one_of(json_values, st.fixed_dictionaries({"step": json_values, "reward/mean": json_values})), max_size=4
    ).map(_jsonl),
    json_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True).encode("utf-8", errors="surrogatepass")),
)


@fuzz(150)
@given(
    broken=st.dictionaries(st.sampled_from(sorted(_good_run_files())), run_file_contents, min_size=1, max_size=3),
    how=damage,
    group_by=st.sampled_from(["label", "objective", "seed", "lad.divergence", "no.such.key"]),
)
def test_fuzzed_run_folders_compare_or_refuse_in_one_line_and_write_nothing(broken, how, group_by):
    """Two runs, one of them with damaged files: compare reads what it can, notes the rest, or says why not."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, files in (("good", {}), ("bad", broken)):
            (root / name).mkdir()
            for file, data in {**_good_run_files(), **files}.items():
                (root / name / file).write_bytes(_mutate(data, *how) if file in files else data)
        before = snapshot(root)
        try:
            runs, notes = load_runs([root])
            comparison = compare_runs(runs, group_by=group_by, notes=notes)
            assert comparison.groups and all(one_line(ValueError(note)) for note in comparison.notes)
        except LadkitError as error:
            one_line(error)
        assert snapshot(root) == before


compare_flags = st.lists(
    st.one_of(
        st.tuples(st.just("--group-by"), st.one_of(junk_text.filter(lambda t: len(t) < 100), st.just("seed"))),
        st.tuples(
            st.just("-m"),
            st.one_of(st.sampled_from(["reward/mean", "eval/pass@1", "ladkit_eval/pass@4"]), st.text(max_size=10)),
        ),
        st.tuples(st.just("--baseline"), st.one_of(st.just("lad:js"), st.text(max_size=6))),
        st.tuples(st.just("--out"), st.sampled_from(["folder", "file/x.html", "file/x/y.html"])),
        st.tuples(st.just("--paired")),
    ),
    max_size=4,
)


@fuzz(60)
@given(flags=compare_flags)
def test_fuzzed_compare_command_lines_exit_cleanly_and_write_nothing(flags):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "folder").mkdir()
        (root / "file").write_text("x")
        for name, data in _good_run_files().items():
            (root / "runs" / "a").mkdir(parents=True, exist_ok=True)
            (root / "runs" / "a" / name).write_bytes(data)
        argv = ["compare", str(root / "runs")]
        for flag in flags:
            argv += [flag[0]] + ([str(root / flag[1]) if flag[0] == "--out" else flag[1]] if len(flag) > 1 else [])
        before = snapshot(root)
        code, err = run_cli(argv)
        if code != 0:
            assert_clean_error(code, err)
        # no --out ever names a writable file here, so nothing may be written even on success
        assert snapshot(root) == before


eval_flags = st.lists(
    st.tuples(
        st.sampled_from(["--prompts", "--samples", "--checkpoint", "--threads", "--temperature", "--k", "--seed"]),
        st.one_of(st.integers(-(2**40), 2**40).map(str), st.floats().map(str), junk_text.filter(lambda t: len(t) < 50)),
    ),
    max_size=4,
)


@fuzz(100)
@given(flags=eval_flags, target=st.sampled_from(["missing", "empty", "junk_config"]))
def test_fuzzed_eval_command_lines_exit_cleanly_before_any_model_loads(flags, target, monkeypatch):
    import ladkit.models.loading

    monkeypatch.setattr(ladkit.models.loading, "load_policy", lambda *a, **k: pytest.fail("a model was loaded"))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "empty").mkdir()
        (root / "junk_config").mkdir()
        (root / "junk_config" / "config.yaml").write_bytes(b"\xff: [")
        argv = ["eval", str(root / target), *[part for flag in flags for part in flag]]
        before = snapshot(root)
        code, err = run_cli(argv)
        assert_clean_error(code, err)  # no target here is evaluable, so every case is an error
        assert snapshot(root) == before
