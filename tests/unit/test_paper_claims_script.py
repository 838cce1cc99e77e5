"""benchmarks/paper_claims.py: how one run's summary values are read from its metrics rows, and how the seeds
of each group are aggregated into means, t CIs and Welch deltas against GRPO (hand-made rows, no training)."""

from __future__ import annotations

import json

import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def claims():
    return load_script("paper_claims")


def rows_of_a_run(steps: int = 20) -> list[dict]:
    """What the trainer writes: training rows 0..steps-1 (step 0 also holds the eval before training),
    then the final eval as a row of its own at step = steps."""
    rows = [{"step": s, "reward/mean": s / 100, "policy/entropy": 1.0 - s / 100} for s in range(steps)]
    rows[0].update({"eval/pass@1": 0.1, "eval/pass@8": 0.3})
    rows.append({"step": steps, "eval/pass@1": 0.25, "eval/pass@8": 0.5})
    return rows


def test_run_values_windows_and_evals(claims):
    values = claims.run_values(list(reversed(rows_of_a_run())))  # row order on disk does not matter
    assert values["reward_last10"] == pytest.approx(0.145)  # steps 10..19: mean of 0.10..0.19
    assert values["entropy_first10"] == pytest.approx(0.955)  # steps 0..9: 1 - 0.045
    assert values["entropy_last10"] == pytest.approx(0.855)
    assert (values["pass@1"], values["pass@8"]) == (0.25, 0.5)  # the row after the last update
    assert (values["pass@1_before"], values["pass@8_before"]) == (0.1, 0.3)
    assert "dist4" not in values  # never logged: left out, not zero


def test_run_values_single_eval_is_not_a_final_one(claims):
    rows = rows_of_a_run()[:-1]  # killed before its final eval: only the one before training exists
    values = claims.run_values(rows)
    assert "pass@1" not in values and values["pass@1_before"] == 0.1


def test_aggregate_means_deltas_and_missing_values(claims):
    groups = {
        "grpo": [{"pass@1": 0.2}, {"pass@1": 0.2}, {"pass@1": 0.2}],
        "lad-js": [{"pass@1": 0.3}, {"pass@1": 0.3}, {"pass@1": 0.3}],
        "flowrl": [{"pass@1": 0.1}, {"pass@1": 0.3}, {}],  # one seed lacks the value
    }
    out = claims.aggregate(groups)
    json.dumps(out, allow_nan=False)  # strict JSON throughout
    lad = out["lad-js"]["metrics"]["pass@1"]
    assert lad["value"] == {"mean": 0.3, "ci95": [0.3, 0.3], "n_seeds": 3}
    assert lad["delta_vs_grpo"]["mean"] == pytest.approx(0.1) and lad["delta_excludes_0"] is True
    flow = out["flowrl"]["metrics"]["pass@1"]
    assert flow["value"]["n_seeds"] == 2 and flow["per_seed"] == [0.1, 0.3, None]
    assert flow["delta_excludes_0"] is False  # seeds 0.1 and 0.3 around GRPO's 0.2: the CI straddles 0
    # the former percentile bootstrap, kept beside: three identical seeds give a point; two seeds stay in range
    assert lad["bootstrap_ci95"] == [0.3, 0.3] and 0.1 <= flow["bootstrap_ci95"][0] <= flow["bootstrap_ci95"][1] <= 0.3
    assert "delta_vs_grpo" not in out["grpo"]["metrics"]["pass@1"]
    assert out["grpo"]["metrics"]["dist4"]["value"] is None  # no group logged it


def test_aggregate_one_seed_gives_no_verdict(claims):
    out = claims.aggregate({"grpo": [{"pass@1": 0.2}], "lad-js": [{"pass@1": 0.5}]})
    lad = out["lad-js"]["metrics"]["pass@1"]
    assert lad["delta_vs_grpo"]["ci95"] == [0.3, 0.3]  # a point: one seed each
    assert lad["delta_excludes_0"] is None and lad["delta_bootstrap_ci95"] is None and lad["bootstrap_ci95"] is None


def test_pool_merges_grids_run_by_run(claims):
    # Two grids of 2 runs each: pooled, GRPO's pass@1 is the mean of all 4 runs (0.2, 0.2, 0.4, 0.4 -> 0.3) and
    # LAD-js's (0.5, 0.5, 0.3, None) is the mean of its 3 values, 13/30; a missing value stays null.
    first = {"main": claims.aggregate({"grpo": [{"pass@1": 0.2}] * 2, "lad-js": [{"pass@1": 0.5}] * 2})}
    second = {"main": claims.aggregate({"grpo": [{"pass@1": 0.4}] * 2, "lad-js": [{"pass@1": 0.3}, {}]})}
    out = claims.pool([first, second])
    json.dumps(out, allow_nan=False)
    grpo, lad = out["main"]["grpo"]["metrics"]["pass@1"], out["main"]["lad-js"]["metrics"]["pass@1"]
    assert grpo["per_seed"] == [0.2, 0.2, 0.4, 0.4] and grpo["value"]["mean"] == pytest.approx(0.3)
    assert lad["per_seed"] == [0.5, 0.5, 0.3, None] and lad["value"]["n_seeds"] == 3
    assert lad["value"]["mean"] == pytest.approx(13 / 30, abs=1e-4)
    assert lad["delta_vs_grpo"]["mean"] == pytest.approx(13 / 30 - 0.3, abs=1e-4)
    assert out["knobs"] == {}


def test_reaggregate_recomputes_intervals_in_place(claims, tmp_path, monkeypatch):
    # A record written by an older method (a made-up, too narrow interval) is re-summarised from its per-seed
    # values: GRPO 0.1, 0.2, 0.3 -> mean 0.2, sd 0.1, t(0.975, 2) * 0.1 / sqrt(3) = 0.2484.
    record = {"main": claims.aggregate({"grpo": [{"pass@1": v} for v in (0.1, 0.2, 0.3)]}), "wall_s": 5.0}
    record["main"]["grpo"]["metrics"]["pass@1"]["value"]["ci95"] = [0.19, 0.21]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    monkeypatch.setattr("sys.argv", ["paper_claims.py", "--reaggregate", str(path)])
    claims.main()
    again = json.loads(path.read_text())
    assert again["main"]["grpo"]["metrics"]["pass@1"]["value"]["ci95"] == [-0.0484, 0.4484]
    assert again["wall_s"] == 5.0 and "Welch" in again["value"] and again["reaggregated"]


def test_number_words(claims):
    cases = {0: "zero", 13: "thirteen", 40: "forty", 42: "forty-two", 100: "one hundred",
             342: "three hundred forty-two", 910: "nine hundred ten", 999: "nine hundred ninety-nine"}  # fmt: skip
    assert {n: claims.number_words(n) for n in cases} == cases


def test_real_grid_data_is_deterministic_and_disjoint(claims, tmp_path):
    train, held_out = claims.write_number_words(tmp_path / "a")
    again = claims.write_number_words(tmp_path / "b")
    assert [p.read_text() for p in (train, held_out)] == [p.read_text() for p in again]  # same files anywhere
    rows = {path.name: [json.loads(line) for line in path.read_text().splitlines()] for path in (train, held_out)}
    assert (len(rows["train.jsonl"]), len(rows["eval.jsonl"])) == (836, 64)
    answers = [{r["answer"] for r in part} for part in rows.values()]
    assert not answers[0] & answers[1] and len(answers[0] | answers[1]) == 900  # 100..999, each once
    row = rows["eval.jsonl"][0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    question = row["messages"][-1]["content"]
    assert question == f"Write {claims.number_words(int(row['answer']))} as a number."


def test_real_grid_commands(claims, tmp_path):
    grid = claims.GRIDS["real"]
    argv = claims.command(tmp_path / "kl-cov-s1", "kl-cov", 1, False, grid)
    assert argv[:3] == ["nice", "-n", "19"] and argv[argv.index("--objective") + 1] == "kl_cov"
    assert argv[argv.index("--model") + 1] == "smollm2-135m-instruct" and argv[argv.index("--seed") + 1] == "1"
    knob = claims.command(tmp_path / "x", "lad-js-inv_eta16", 0, False, grid)
    assert "lad.inv_eta=16" in knob and knob[knob.index("--divergence") + 1] == "js"
    assert set(grid["main"]) == {"grpo", "lad-js", "flowrl", "clip-cov", "kl-cov", "ent-adv"}
