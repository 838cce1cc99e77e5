"""benchmarks/run_all.py: the headline table read from results JSON, and the generated block of
docs/benchmarks.md rewritten in place without touching the hand-written text around it (no benchmark runs)."""

from __future__ import annotations

import json

import pytest
from benchmark_scripts import load_script


@pytest.fixture
def runner(tmp_path, monkeypatch):
    module = load_script("run_all")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(module, "DOCS", tmp_path / "benchmarks.md")
    (tmp_path / "results").mkdir()
    return module


def summary():
    machine = {"cpu": "Test CPU", "cores": 2, "gpu": None, "torch": "2.x", "commit": "abc1234"}
    return {"date": "2026-11-26", "machine": machine, "selection": "", "benchmarks": {}}


def test_headline_rows_come_from_the_results_files(runner):
    results = runner.RESULTS
    (results / "bandit_speed.json").write_text(json.dumps({"train_s_median": 2.4, "command_s_median": 4.9}))
    slopes = {"group_size": 0.75, "prompts_per_step": 0.89, "max_new_tokens": 0.65}
    (results / "scaling.json").write_text(json.dumps({"slopes": {k: {"step": v} for k, v in slopes.items()}}))
    (results / "sandbox_speed.json").write_text(json.dumps({"unexpected": 1}))  # another shape: pointed at, no crash
    table = runner.headline_table(results)
    assert "| `bandit_speed.json` | bandit default: training / whole command (s) | 2.40 / 4.90 | < 5 s |" in table
    assert "0.75 / 0.89 / 0.65" in table
    assert "`sandbox_speed.json` | (see the JSON) | unreadable headline: KeyError" in table
    assert "objective_cost" not in table  # no file, no row


def test_headline_shows_the_newest_gpu_records_only(runner):
    # GPU records are copied back per session (gpu_check_<card>[_date].json); the table shows the newest date's,
    # naming the card, the date and whether the trainer shared its prompt pass.
    def record(date, card, sharing, update):
        objective = {"step_time_s": 10.0, "update_time_s": update, "peak_gpu_memory_gib": 13.0, "mfu_update": 0.05}
        return json.dumps({"date": date, "card": card, "shared_prompt_pass": sharing, "objectives": {"lad": objective}})

    results = runner.RESULTS
    (results / "gpu_check_h100_2026-11-26.json").write_text(record("2026-11-26", "H100", False, 2.06))
    (results / "gpu_check_h100.json").write_text(record("2026-11-27", "H100", True, 4.01))
    (results / "gpu_check_h200.json").write_text(record("2026-11-27", "H200", False, 2.48))
    table = runner.headline_table(results)
    assert "| `gpu_check_h100.json` | GPU check lad on H100 (2026-11-27, shared prompt pass): " in table
    assert "| `gpu_check_h200.json` | GPU check lad on H200 (2026-11-27, full forwards): " in table
    assert "10.00 / 2.48, 13.0 GiB, MFU update 5.0%" in table
    assert "2026-11-26" not in table and "2.06" not in table


def test_docs_block_is_inserted_once_then_replaced_in_place(runner):
    docs = runner.DOCS
    docs.write_text("# Benchmarks\n\nIntro paragraph.\n\n## Section\n\nHand-written.\n")
    (runner.RESULTS / "bandit_speed.json").write_text(json.dumps({"train_s_median": 2.4, "command_s_median": 4.9}))
    runner.update_docs(summary())
    first = docs.read_text()
    assert first.startswith("# Benchmarks\n\n" + runner.START)  # after the title, before the rest
    assert first.count(runner.START) == first.count(runner.END) == 1
    assert first.endswith("Intro paragraph.\n\n## Section\n\nHand-written.\n")
    (runner.RESULTS / "bandit_speed.json").write_text(json.dumps({"train_s_median": 1.5, "command_s_median": 3.0}))
    runner.update_docs(summary())
    second = docs.read_text()
    assert second.count(runner.START) == 1 and "1.50 / 3.00" in second and "2.40 / 4.90" not in second
    assert second.endswith("Intro paragraph.\n\n## Section\n\nHand-written.\n")


def test_unknown_benchmark_names_are_one_line_errors(runner, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["run_all.py", "--only", "objective_cost,nope"])
    with pytest.raises(SystemExit) as stop:
        runner.main()
    assert "unknown benchmark(s) nope; valid: objective_cost" in str(stop.value)


def test_last_json_line_is_the_record(runner):
    assert runner._last_json('progress\n{"a": 1}\nnot json {\n') == {"a": 1}
    assert runner._last_json("nothing here\n") is None
