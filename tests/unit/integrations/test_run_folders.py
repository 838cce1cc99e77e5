"""Engine logs -> ladkit run folders: verl's file-logger jsonl through the converter, TRL log rows through the
callback's renaming; `ladkit compare` reads the result (no engine needed: the log formats are written here as verl
0.9.1's FileLogger and TRL 1.16's log() write them)."""

from __future__ import annotations

import json

import pytest
import yaml

from ladkit.compare import compare_runs, load_runs
from ladkit.integrations.runfolder import TRL_KEYS, rename, verl_validation
from ladkit.integrations.verl import convert_log

VERL_CONFIG = {
    "data": {"train_batch_size": 512, "max_response_length": 8192, "seed": 1},
    "actor_rollout_ref": {
        "model": {"path": "Qwen/Qwen2.5-7B"},
        "rollout": {"n": 8, "temperature": 1.0},
        "actor": {"policy_loss": {"loss_mode": "lad"}, "loss_agg_mode": "seq-mean-token-mean", "optim": {"lr": 1e-6}},
    },
    "algorithm": {"adv_estimator": "grpo"},
}


def _verl_log(path, steps: int = 3):
    """verl's FileLogger lines: {"step": k, "data": {...}}; validation at step 0 (before training) and every 2."""
    lines = [{"step": 0, "data": {"val-core/math_dapo/acc/mean@4": 0.25, "val-core/math_dapo/acc/best@4/mean": 0.5}}]
    for k in range(1, steps + 1):
        data = {
            "critic/score/mean": 0.1 * k,
            "actor/entropy": 0.5,
            "response_length/mean": 100.0 + k,
            "actor/pg_loss": 0.3,
            "lad/weight_mean": 0.01 * k,
            "timing_s/step": 2.0,
        }
        if k % 2 == 0:
            data["val-core/math_dapo/acc/mean@4"] = 0.25 + 0.1 * k
        lines.append({"step": k, "data": data})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_verl_log_becomes_a_run_folder_with_ladkit_steps(tmp_path):
    run = convert_log(_verl_log(tmp_path / "lad.jsonl"), tmp_path / "verl-lad", VERL_CONFIG)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["engine"], config["objective"], config["group_size"], config["prompts_per_step"]) == (
        "verl", "lad", 8, 512,
    )  # fmt: skip
    assert config["lad"]["divergence"] == "js" and config["optim"]["lr"] == 1e-6
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # verl step k: the k-th update's training metrics -> ladkit step k - 1; validation after k updates -> step k
    # (verl step 3 has no validation, and no step 4 trains on after it: no ladkit step 3)
    assert [row["step"] for row in rows] == [0, 1, 2]
    assert rows[0]["eval/pass@1"] == 0.25 and rows[0]["eval/pass@4"] == 0.5 and rows[0]["reward/mean"] == 0.1
    assert rows[2]["eval/pass@1"] == pytest.approx(0.45) and rows[2]["reward/mean"] == pytest.approx(0.3)
    assert rows[1]["verl/actor/pg_loss"] == 0.3 and rows[1]["lad/weight_mean"] == 0.02  # kept, never renamed
    assert rows[1]["policy/entropy"] == 0.5 and rows[1]["completion/length_mean"] == 102.0


def test_validation_keys_per_data_source():
    one = verl_validation({"val-core/gsm8k/acc/mean@1": 0.5, "val-aux/gsm8k/reward/mean@1": 0.7})
    assert one == {"eval/pass@1": 0.5}
    two = verl_validation({"val-core/gsm8k/acc/mean@1": 0.5, "val-core/math/acc/best@8/mean": 0.9})
    assert two == {"eval/gsm8k/pass@1": 0.5, "eval/math/pass@8": 0.9}


def test_trl_log_row_renamed_only_where_the_quantity_is_ladkits():
    row = rename(
        {"reward": 0.5, "entropy": 0.7, "loss": 1.0, "kl/old_k1": 0.1, "lad/weight_mean": 0.2, "epoch": float("nan")},
        TRL_KEYS,
        "trl",
    )
    assert row == {
        "reward/mean": 0.5,
        "policy/entropy": 0.7,
        "trl/loss": 1.0,
        "trl/kl/old_k1": 0.1,
        "lad/weight_mean": 0.2,
    }


def test_compare_reads_a_verl_run_next_to_a_ladkit_run(tmp_path):
    verl_run = convert_log(_verl_log(tmp_path / "lad.jsonl"), tmp_path / "verl-lad", VERL_CONFIG)
    ours = tmp_path / "ladkit-lad"
    ours.mkdir()
    (ours / "config.yaml").write_text(yaml.safe_dump({"objective": "lad", "lad": {"divergence": "js"}, "seed": 1}))
    (ours / "meta.json").write_text(json.dumps({"status": "completed"}))
    (ours / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "reward/mean": 0.2}) + "\n" for s in range(3)))
    runs, notes = load_runs([ours, verl_run])
    comparison = compare_runs(runs, metrics=["reward/mean"], group_by="engine", notes=notes)
    assert list(comparison.groups) == ["engine=ladkit", "engine=verl"]  # a folder without `engine` is ladkit's
    (verl_line,) = [r for r in comparison.results if r.metric == "reward/mean" and r.group == "engine=verl"]
    # aligned on ladkit's steps; final = the mean over the last FINAL_WINDOW (3) steps: (0.1 + 0.2 + 0.3) / 3
    assert verl_line.steps == [0, 1, 2] and verl_line.final.mean == pytest.approx(0.2)
