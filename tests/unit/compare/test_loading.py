"""Reading run folders: torn and corrupt lines, partial runs, non-run folders and bandit folders."""

import json

from ladkit.compare.loading import load_runs, read_jsonl


def test_torn_last_line_and_corrupt_middle_line_are_skipped_with_notes(make_run):
    path = make_run("a", "lad", [0.1, 0.2, 0.3])
    text = (path / "metrics.jsonl").read_text().splitlines()
    (path / "metrics.jsonl").write_text("\n".join([text[0], "{oops", *text[1:], '{"step": 3, "rew']))
    rows, notes = read_jsonl(path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert notes == [
        "metrics.jsonl: line 2 is not a JSON row with a step; skipped",
        "metrics.jsonl: torn last line 5 skipped (a write was cut off)",
    ]


def test_parent_folder_expands_and_partial_runs_are_noted(make_run, tmp_path):
    make_run("grpo-s0", "grpo", [0.1, 0.2])
    make_run("lad-s0", "lad", [0.3], status="running")
    runs, notes = load_runs([tmp_path])
    assert [r.name for r in runs] == ["grpo-s0", "lad-s0"] and runs[1].status == "running"
    assert notes == ["lad-s0: status running: partly written, read up to step 0"]


def test_non_run_folder_missing_path_and_bandit_folder_are_skipped_with_reasons(make_run, tmp_path):
    good = make_run("good", "grpo", [0.5])
    empty = tmp_path / "empty"
    empty.mkdir()
    bandit = tmp_path / "bandit"
    bandit.mkdir()
    (bandit / "config.yaml").write_text("num_arms: 20\nobjectives: [lad, grpo]\n")
    (bandit / "metrics.jsonl").write_text(json.dumps({"step": 0, "bandit/entropy": 1.0}) + "\n")
    runs, notes = load_runs([good, empty, tmp_path / "nope", bandit])
    assert [r.name for r in runs] == ["good"]
    assert "empty: not a run folder" in notes[0] and "nope: does not exist" in notes[1]
    assert notes[2].startswith("bandit: a bandit run folder (config has num_arms), not an LLM training run")
