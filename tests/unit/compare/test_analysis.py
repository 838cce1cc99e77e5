"""Grouping, alignment on common steps, final/best values and deltas, checked against hand-worked numbers."""

import pytest

from ladkit.compare.analysis import compare_runs, label_of
from ladkit.compare.loading import load_runs
from ladkit.errors import LadkitError


def run_compare(paths, **kwargs):
    runs, notes = load_runs(paths)
    return compare_runs(runs, notes=notes, **kwargs)


def test_labels_from_config():
    lad = {"objective": "lad", "lad": {"divergence": "kl", "inv_eta": 2.0}}
    assert label_of(lad) == "lad:kl" and label_of({"objective": "grpo", "lad": {"divergence": "js"}}) == "grpo"
    assert label_of(lad, "objective") == "lad" and label_of(lad, "divergence") == "kl"
    assert label_of(lad, "lad.inv_eta") == "lad.inv_eta=2.0"


def test_final_best_and_delta_by_hand(make_run, tmp_path):
    # grpo seeds: last 3 steps (1, 2, 3) average (0.2+0.3+0.4)/3 = 0.3 and (0.4+0.5+0.6)/3 = 0.5 -> 0.4
    make_run("grpo-s0", "grpo", [0.0, 0.2, 0.3, 0.4], seed=0)
    make_run("grpo-s1", "grpo", [0.0, 0.4, 0.5, 0.6], seed=1)
    # lad seeds: 0.7 and 0.9 -> 0.8, so delta = 0.8 - 0.4 = 0.4; best = max per seed (0.8, 1.0) -> 0.9
    make_run("lad-s0", "lad", [0.0, 0.6, 0.7, 0.8], seed=0)
    make_run("lad-s1", "lad", [0.0, 0.8, 0.9, 1.0], seed=1)
    comparison = run_compare([tmp_path], metrics=["reward/mean"])
    assert list(comparison.groups) == ["grpo", "lad:js"] and comparison.baseline == "grpo"
    grpo, lad = comparison.result("grpo", "reward/mean"), comparison.result("lad:js", "reward/mean")
    assert grpo.final.mean == pytest.approx(0.4) and grpo.delta is None
    assert lad.final.mean == pytest.approx(0.8) and lad.best.mean == pytest.approx(0.9)
    assert lad.delta.mean == pytest.approx(0.4) and lad.delta.excludes_zero and lad.verdict == "better"
    # every bootstrap replicate lies between the extreme seed/step combinations: 0.6-0.5 and 1.0-0.2
    assert 0.1 <= lad.delta.low < 0.4 < lad.delta.high <= 0.8


def test_lower_is_better_and_explicit_baseline(make_run, tmp_path):
    make_run("a", "grpo", [1.0, 1.0, 1.0], key="loss/value")
    make_run("b", "lad", [2.0, 2.0, 2.0], key="loss/value")
    comparison = run_compare([tmp_path], metrics=["loss/value"], baseline="lad:js")
    grpo = comparison.result("grpo", "loss/value")
    assert grpo.delta.mean == pytest.approx(-1.0) and grpo.verdict == "better"
    assert grpo.best.mean == 1.0
    with pytest.raises(LadkitError, match="baseline group 'flowrl' not among the groups: grpo, lad:js"):
        run_compare([tmp_path], metrics=["loss/value"], baseline="flowrl")


def test_different_lengths_align_on_common_steps(make_run, tmp_path):
    make_run("short", "grpo", [0.0, 0.1, 0.2])
    make_run("long", "lad", [0.0, 0.5, 0.6, 0.9, 0.9])  # steps 3-4 have no rival: not counted
    comparison = run_compare([tmp_path / "short", tmp_path / "long"], metrics=["reward/mean"])
    lad = comparison.result("lad:js", "reward/mean")
    assert lad.steps == [0, 1, 2] and lad.final.mean == pytest.approx((0.0 + 0.5 + 0.6) / 3)
    assert comparison.notes[0] == (
        "runs differ in length (last step: short 2, long 4); metrics are compared on common steps (<= 2)"
    )
    assert comparison.notes[1].startswith("few runs per group (grpo 1, lad:js 1)") and len(comparison.notes) == 2


def test_missing_metric_is_a_note_and_nothing_usable_is_an_error(make_run, tmp_path):
    make_run("a", "grpo", [0.1, 0.2])
    make_run("b", "lad", [0.3, 0.4])
    comparison = run_compare([tmp_path], metrics=["reward/mean", "x/y"])
    assert comparison.result("lad:js", "reward/mean").final.mean == pytest.approx(0.35)
    assert comparison.result("grpo", "x/y").final is None and comparison.notes[0] == "x/y: missing in a, b"
    make_run("c", "lad", [0.3, 0.4], key="policy/entropy")  # shares no metric with a and b
    with pytest.raises(LadkitError, match="the runs share none of the metrics reward/mean, policy/entropy"):
        run_compare([tmp_path], metrics=["reward/mean", "policy/entropy"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LadkitError, match=r"no usable run to compare \(.*empty: not a run folder"):
        run_compare([tmp_path / "empty"])


def test_few_runs_per_group_is_a_note(make_run, tmp_path):
    # 3 seeds against 5: only the 3-seed group is named; 5 on both sides and a single group give no note.
    for seed in range(5):
        make_run(f"grpo-s{seed}", "grpo", [0.1, 0.2 + seed / 100])
    for seed in range(3):
        make_run(f"lad-s{seed}", "lad", [0.3, 0.4 + seed / 100])
    notes = run_compare([tmp_path], metrics=["reward/mean"]).notes
    assert [n for n in notes if n.startswith("few runs")] == [
        "few runs per group (lad:js 3): intervals over so few seeds understate the run-to-run spread, so read "
        "better/worse as tentative; 5 or more seeds per group make them trustworthy"
    ]
    for seed in range(3, 5):
        make_run(f"lad-s{seed}", "lad", [0.3, 0.4])
    assert not any(n.startswith("few runs") for n in run_compare([tmp_path], metrics=["reward/mean"]).notes)
    only = run_compare([tmp_path / "lad-s0"], metrics=["reward/mean"]).notes
    assert not any(n.startswith("few runs") for n in only)
