"""Tracked prompts in the trainer and `ladkit eval` on a real tiny run of the built-in model."""

import json

import pytest
from test_train_builtin import rows_of, small_config

from ladkit.errors import LadkitError
from ladkit.evaluation import evaluate_run
from ladkit.training.loop import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """2 steps of the built-in model with 2 tracked prompts; the callback keeps the rows it was given."""
    run_dir = tmp_path_factory.mktemp("tracked") / "run"
    seen = []
    config = small_config(steps=2, eval_every=0, checkpoint_every=1, tracked_prompts=2)
    train(config, run_dir, callbacks=[lambda step, row, ctx: seen.append(row)])
    return run_dir, seen


def test_tracked_records_in_file_and_callbacks_not_in_metrics(run):
    run_dir, seen = run
    records = [json.loads(line) for line in (run_dir / "tracked.jsonl").read_text().splitlines()]
    ids = [records[0]["example_id"], records[1]["example_id"]]
    assert ids[0] != ids[1]  # two different held-out prompts, recorded at steps 0 and 1
    assert [(r["step"], r["example_id"]) for r in records] == [(0, ids[0]), (0, ids[1]), (1, ids[0]), (1, ids[1])]
    g = 4
    for record in records:
        assert len(record["completions"]) == len(record["rewards"]) == len(record["advantages"]) == g
        for key in ("advantage_dist", "policy_dist", "sequence_dist"):
            assert len(record[key]) == g and sum(record[key]) == pytest.approx(1.0), key
            assert all(p >= 0 for p in record[key])
    assert seen[0]["tracked"][0]["completions"] == records[0]["completions"]
    for row in rows_of(run_dir):
        assert "tracked" not in row
        assert 0 < row.get("diversity/dist3", 0.5) <= 1 and 0 < row.get("diversity/dist4", 0.5) <= 1


def test_tracked_rollouts_do_not_change_training(run, tmp_path):
    run_dir, _ = run
    untracked = tmp_path / "untracked"
    train(small_config(steps=2, eval_every=0, checkpoint_every=1, tracked_prompts=0), untracked)
    assert not (untracked / "tracked.jsonl").exists()
    for a, b in zip(rows_of(run_dir), rows_of(untracked)):
        for key, value in a.items():
            if not key.startswith("perf/"):
                assert b[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_eval_of_the_run_appends_rows_with_sane_values(run):
    run_dir, _ = run
    row = evaluate_run(run_dir, ks=[1, 2], prompts=4, progress=False)
    again = evaluate_run(run_dir, ks=[1, 2], prompts=4, checkpoint=0, progress=False)
    rows = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 0] and rows[0] == row and rows[1] == again
    assert row["samples"] == 2 and row["prompts"] == 4
    for key in (
        "eval/pass@1",
        "eval/pass@2",
        "eval/avg@1",
        "eval/avg@2",
        "eval/maj@1",
        "eval/maj@2",
        "eval/dist3",
        "eval/dist4",
        "eval/self_bleu",
        "eval/reward_mean",
    ):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["eval/pass@2"] >= row["eval/pass@1"]  # pass@k grows with k
    assert row["eval/avg@2"] == pytest.approx(row["eval/pass@1"])  # with n = k = 2 both are c / n
    assert row["eval/maj@1"] == pytest.approx(row["eval/avg@1"])  # one vote: the first sample's correctness
    assert 0 <= row["eval/distinct_correct"] <= 2
    assert row["eval/dist3"] > 0  # character trigrams of real completions
    # per_prompt (what `ladkit compare` pairs): one record per prompt, whose counts give back the pass@k means
    from ladkit.metrics import pass_at_k

    records = row["per_prompt"]
    assert len(records) == 4 and len({r["example_id"] for r in records}) == 4
    assert all(r["n"] == 2 and 0 <= r["correct"] <= 2 for r in records)
    for k in (1, 2):
        assert sum(pass_at_k(2, r["correct"], k) for r in records) / 4 == pytest.approx(row[f"eval/pass@{k}"])


def test_eval_of_a_bare_adapter_writes_a_new_folder(run, tmp_path):
    run_dir, _ = run
    adapter = run_dir / "checkpoints/step_000001/policy"
    row = evaluate_run(adapter, ks=[1], samples=2, prompts=2, out=tmp_path / "out", progress=False)
    assert row["step"] is None and (tmp_path / "out/eval.jsonl").is_file()
    with pytest.raises(LadkitError, match="already holds an eval.jsonl"):
        evaluate_run(adapter, ks=[1], prompts=2, out=tmp_path / "out", progress=False)


def test_eval_errors(run, tmp_path):
    run_dir, _ = run
    with pytest.raises(LadkitError, match="no checkpoint for step 7"):
        evaluate_run(run_dir, ks=[1], checkpoint=7, progress=False)
    with pytest.raises(LadkitError, match="larger than --samples"):
        evaluate_run(run_dir, ks=[4], samples=2, progress=False)
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "empty_run/config.yaml").write_text((run_dir / "config.yaml").read_text())
    with pytest.raises(LadkitError, match="no complete checkpoint"):
        evaluate_run(tmp_path / "empty_run", ks=[1], progress=False)
