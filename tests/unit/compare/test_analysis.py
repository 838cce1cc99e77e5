"""Grouping, alignment on common steps, final/best values and deltas, checked against hand-worked numbers."""

import json

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
    # grpo seeds: mean of the last 3 steps 0.3, 0.4, 0.5 -> 0.4; lad seeds 0.7, 0.8, 0.9 -> 0.8; delta 0.4.
    # Welch: each side var 0.01, se^2 = 0.01/3 + 0.01/3, se = 0.0816497, dof = 4, t(0.975, 4) = 2.776445,
    # half-width 0.226696. lad's best = mean of per-seed maxima (0.8, 0.9, 1.0) = 0.9.
    for seed, top in enumerate((0.4, 0.5, 0.6)):
        make_run(f"grpo-s{seed}", "grpo", [0.0, top - 0.2, top - 0.1, top], seed=seed)
    for seed, top in enumerate((0.8, 0.9, 1.0)):
        make_run(f"lad-s{seed}", "lad", [0.0, top - 0.2, top - 0.1, top], seed=seed)
    comparison = run_compare([tmp_path], metrics=["reward/mean"])
    assert list(comparison.groups) == ["grpo", "lad:js"] and comparison.baseline == "grpo"
    grpo, lad = comparison.result("grpo", "reward/mean"), comparison.result("lad:js", "reward/mean")
    assert grpo.final.mean == pytest.approx(0.4) and grpo.delta is None
    assert lad.final.mean == pytest.approx(0.8) and lad.best.mean == pytest.approx(0.9)
    assert lad.delta.mean == pytest.approx(0.4) and lad.delta.n == 3 and lad.verdict == "better"
    assert lad.delta.low == pytest.approx(0.4 - 0.226696, abs=1e-6)
    assert lad.delta.high == pytest.approx(0.4 + 0.226696, abs=1e-6)


def test_lower_is_better_and_explicit_baseline(make_run, tmp_path):
    # per-seed losses grpo 1.0, 1.2 and lad 2.0, 2.2: delta -1.0, se = sqrt(0.02/2 + 0.02/2) = 0.141421, dof 2,
    # t(0.975, 2) = 4.302653 -> CI [-1.608, -0.392]: excludes 0, and lower loss is better
    for name, objective, value in (("a", "grpo", 1.0), ("b", "grpo", 1.2), ("c", "lad", 2.0), ("d", "lad", 2.2)):
        make_run(name, objective, [value] * 3, key="loss/value")
    comparison = run_compare([tmp_path], metrics=["loss/value"], baseline="lad:js")
    grpo = comparison.result("grpo", "loss/value")
    assert grpo.delta.mean == pytest.approx(-1.0) and grpo.verdict == "better"
    assert grpo.delta.high == pytest.approx(-1.0 + 4.302653 * 0.141421, abs=1e-5)
    assert grpo.best.mean == pytest.approx(1.1)
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
    # one run a side: the difference is shown, but no interval and no better/worse
    assert lad.delta.mean == pytest.approx((0.0 + 0.5 + 0.6) / 3 - 0.1) and not lad.delta.has_interval
    assert lad.verdict == "1 seed"
    assert (
        comparison.notes[1].startswith("one run in grpo, lad:js: no interval over seeds and no verdict on the method")
        and len(comparison.notes) == 2
    )


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
        "few runs per group (lad:js 3): t intervals over so few seeds are wide, so 'unclear' often means too few "
        "seeds rather than no difference; 5 or more seeds per group narrow them"
    ]
    for seed in range(3, 5):
        make_run(f"lad-s{seed}", "lad", [0.3, 0.4])
    assert not any(n.startswith("few runs") for n in run_compare([tmp_path], metrics=["reward/mean"]).notes)
    only = run_compare([tmp_path / "lad-s0"], metrics=["reward/mean"]).notes
    assert not any(n.startswith("few runs") for n in only)


def test_one_run_a_side_pairs_pass_at_k_over_prompts(write_rows, tmp_path):
    # Two single runs that both scored held-out prompts p0..p3 (n = 2 samples each) at their final eval, step 3.
    # pass@1 per prompt = c / n: lad 1, 1, 1, 0.5 and grpo 0.5, 0.5, 0, 0 -> differences 0.5, 0.5, 1, 0.5:
    # mean 0.625, sd 0.25, se 0.125, t(0.975, 3) = 3.182446 -> [0.2272, 1.0228], "better (prompts)".
    # pass@2 per prompt = 1 - C(n - c, 2) / C(n, 2): lad 1, 1, 1, 1 and grpo 1, 1, 0, 0 -> differences 0, 0, 1, 1:
    # mean 0.5, sd 0.57735, se 0.288675 -> half-width 0.918693: [-0.4187, 1.4187], "unclear (prompts)".
    for name, objective, correct in (("grpo", "grpo", [1, 1, 0, 0]), ("lad", "lad", [2, 2, 2, 1])):
        pass1 = sum(c / 2 for c in correct) / 4
        rows = [{"step": 0, "reward/mean": 0.1}, {"step": 3, "eval/pass@1": pass1, "eval/pass@2": 0.0}]
        write_rows(name, objective, rows)
        prompts = [{"step": 3, "example_id": f"p{i}", "n": 2, "correct": c} for i, c in enumerate(correct)]
        prompts.append({"step": 0, "example_id": "p0", "n": 2, "correct": 0})  # an earlier eval: not paired
        (tmp_path / name / "eval_prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    comparison = run_compare([tmp_path], metrics=["eval/pass@1", "eval/pass@2", "reward/mean"])
    pass1 = comparison.result("lad:js", "eval/pass@1")
    assert pass1.delta.mean == pytest.approx(0.625) and pass1.delta.basis == "prompts" and pass1.delta.n == 1
    assert (pass1.delta.low, pass1.delta.high) == (pytest.approx(0.625 - 0.397806, abs=1e-6), pytest.approx(1.022806))
    assert pass1.verdict == "better (prompts)"
    pass2 = comparison.result("lad:js", "eval/pass@2")
    assert pass2.delta.mean == pytest.approx(0.5) and pass2.verdict == "unclear (prompts)"
    assert pass2.delta.high == pytest.approx(0.5 + 0.918693, abs=1e-6)
    assert comparison.result("lad:js", "reward/mean").verdict == "1 seed"  # a training curve: nothing to pair
    assert any(
        n.startswith("'(prompts)': one run a side, so eval/pass@1, eval/pass@2 are compared") for n in comparison.notes
    )


def _eval_row(step: int, correct: list[int], n: int, **extra) -> dict:
    """An eval.jsonl row as `ladkit eval` writes it: pass@k means and the per-prompt counts."""
    from ladkit.metrics import pass_at_k

    row = {"step": step, "checkpoint": f"checkpoints/step_{step:06d}", "samples": n, **extra}
    for k in (1, n):
        row[f"eval/pass@{k}"] = sum(pass_at_k(n, c, k) for c in correct) / len(correct)
    row["per_prompt"] = [{"example_id": f"p{i}", "n": n, "correct": c} for i, c in enumerate(correct)]
    return row


def test_ladkit_eval_results_join_the_default_metrics_and_pair_over_prompts(write_rows, tmp_path):
    # Both runs evaluated with `ladkit eval --k 1,4` (n = 4) at checkpoint 3, on prompts p0..p3. An older
    # evaluation of the same checkpoint (first row) is superseded by the later one.
    # pass@4 per prompt = 1 if any of 4 correct: lad 1, 1, 1, 1 and grpo 1, 0, 0, 1 -> differences 0, 1, 1, 0:
    # mean 0.5, sd 0.57735, se 0.288675, t(0.975, 3) = 3.182446 -> half-width 0.918693, "unclear (prompts)".
    # pass@1 = c / 4: lad 1, .75, .5, .25 and grpo .25, 0, 0, .25 -> differences .75, .75, .5, 0: mean 0.5,
    # sd 0.353553, se 0.176777 -> half-width 0.562582: [-0.0626, 1.0626], "unclear (prompts)".
    for name, objective, correct in (("grpo", "grpo", [1, 0, 0, 1]), ("lad", "lad", [4, 3, 2, 1])):
        write_rows(name, objective, [{"step": 0, "reward/mean": 0.1}, {"step": 3, "reward/mean": 0.2}])
        rows = [_eval_row(3, [0, 0, 0, 0], 4), _eval_row(3, correct, 4)]
        # records a hand-edited or foreign file might hold: skipped, not a traceback
        rows[1]["per_prompt"] += [{"n": 4, "correct": 1}, {"example_id": "x", "n": 4, "correct": 9}, "junk"]
        (tmp_path / name / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    comparison = run_compare([tmp_path / "grpo", tmp_path / "lad"])
    assert comparison.metrics[-2:] == ["ladkit_eval/pass@1", "ladkit_eval/pass@4"]
    pass4 = comparison.result("lad:js", "ladkit_eval/pass@4")
    assert pass4.final.mean == pytest.approx(1.0) and pass4.steps == [3]
    assert pass4.delta.basis == "prompts" and pass4.delta.mean == pytest.approx(0.5)
    assert pass4.delta.high == pytest.approx(0.5 + 0.918693, abs=1e-6) and pass4.verdict == "unclear (prompts)"
    pass1 = comparison.result("lad:js", "ladkit_eval/pass@1")
    assert pass1.delta.mean == pytest.approx(0.5) and pass1.delta.low == pytest.approx(0.5 - 0.562582, abs=1e-6)
    assert any("eval.jsonl's per_prompt for ladkit_eval/" in note for note in comparison.notes)


def test_ladkit_eval_results_over_seeds_take_welch_and_a_missing_run_is_named(write_rows, tmp_path):
    # Two seeds a side: pass@1 (n = 2) lad 0.75, 0.5 and grpo 0.25, 0.25 -> Welch: difference 0.375, se
    # sqrt(0.03125 / 2 + 0) = 0.125, df 1, t(0.975, 1) = 12.7062 -> [-1.213, 1.963]: "unclear".
    for seed, (lad, grpo) in enumerate((([2, 1], [1, 0]), ([1, 1], [0, 1]))):
        for objective, correct in (("grpo", grpo), ("lad", lad)):
            name = f"{objective}-s{seed}"
            write_rows(name, objective, [{"step": 5, "reward/mean": 0.1}], seed=seed)
            (tmp_path / name / "eval.jsonl").write_text(json.dumps(_eval_row(5, correct, 2)) + "\n")
    comparison = run_compare([tmp_path / "grpo-s0", tmp_path / "grpo-s1", tmp_path / "lad-s0", tmp_path / "lad-s1"])
    pass1 = comparison.result("lad:js", "ladkit_eval/pass@1")
    assert pass1.final.mean == pytest.approx(0.625) and pass1.delta.basis != "prompts"
    assert pass1.delta.mean == pytest.approx(0.375) and pass1.delta.high == pytest.approx(0.375 + 1.588275, abs=1e-5)
    assert pass1.verdict == "unclear"
    (tmp_path / "lad-s1" / "eval.jsonl").unlink()
    comparison = run_compare([tmp_path / "grpo-s0", tmp_path / "grpo-s1", tmp_path / "lad-s0", tmp_path / "lad-s1"])
    assert not any(m.startswith("ladkit_eval/") for m in comparison.metrics)
    missing = "ladkit eval results (eval.jsonl) in some runs but not in lad-s1"
    assert any(note.startswith(missing) for note in comparison.notes)


def test_ladkit_eval_settings_that_differ_between_runs_are_noted(write_rows, tmp_path):
    # pass@k over 2 samples of 4 prompts and over 4 samples of 2 prompts are not the same measurement.
    for name, objective, row in (
        ("grpo", "grpo", _eval_row(3, [1, 0, 1, 1], 2, prompts=4, temperature=1.0)),
        ("lad", "lad", _eval_row(3, [2, 1], 4, prompts=2, temperature=1.0)),
    ):
        write_rows(name, objective, [{"step": 3, "reward/mean": 0.1}])
        (tmp_path / name / "eval.jsonl").write_text(json.dumps(row) + "\n")
    notes = run_compare([tmp_path / "grpo", tmp_path / "lad"]).notes
    assert [n for n in notes if n.startswith("ladkit eval settings differ")] == [
        "ladkit eval settings differ between runs (grpo samples 2, prompts 4, temperature 1.0; lad samples 4, "
        "prompts 2, temperature 1.0): their ladkit_eval/ values are not measured alike; evaluate every run with "
        "the same --samples, --prompts and --temperature"
    ]


def test_paired_matches_runs_by_seed_whatever_their_order(make_run, tmp_path):
    # reward/mean final values (one step each): grpo seeds 0, 1, 2 -> 0.4, 0.5, 0.55; lad given in the order
    # seeds 2, 0, 1 -> 0.6, 0.5, 0.7 and seed 7 (no grpo partner, left out with a note). Matched by seed the
    # differences are 0.1, 0.2, 0.05: mean 0.116667, half-width 0.189729 (test_stats' hand-worked numbers).
    for seed, value in ((0, 0.4), (1, 0.5), (2, 0.55)):
        make_run(f"grpo-s{seed}", "grpo", [value], seed=seed)
    for seed, value in ((2, 0.6), (0, 0.5), (1, 0.7), (7, 0.9)):
        make_run(f"lad-s{seed}", "lad", [value], seed=seed)
    paths = [tmp_path / f"grpo-s{s}" for s in (0, 1, 2)] + [tmp_path / f"lad-s{s}" for s in (2, 0, 1, 7)]
    comparison = run_compare(paths, metrics=["reward/mean"], paired=True)
    delta = comparison.result("lad:js", "reward/mean").delta
    assert delta.basis == "paired seeds" and delta.n == 3 and delta.mean == pytest.approx(0.116667, abs=1e-6)
    assert delta.high == pytest.approx(0.116667 + 0.189729, abs=1e-6)
    assert "--paired: seeds 7 are in only one of lad:js and the baseline and take no part in its deltas" in (
        comparison.notes
    )
    unpaired = run_compare(paths, metrics=["reward/mean"]).result("lad:js", "reward/mean").delta
    assert unpaired.basis == "seeds" and unpaired.mean == pytest.approx(0.675 - 0.483333, abs=1e-6)  # 4 lad runs


def test_paired_falls_back_to_welch_with_a_note(make_run, tmp_path):
    make_run("grpo-a", "grpo", [0.4], seed=0)
    make_run("grpo-b", "grpo", [0.5], seed=1)
    make_run("lad-a", "lad", [0.6], seed=0)
    make_run("lad-b", "lad", [0.7], seed=5)  # only seed 0 is shared
    comparison = run_compare(
        [tmp_path / "grpo-a", tmp_path / "grpo-b", tmp_path / "lad-a", tmp_path / "lad-b"],
        metrics=["reward/mean"],
        paired=True,
    )
    assert comparison.result("lad:js", "reward/mean").delta.basis == "seeds"
    assert (
        "--paired: lad:js and the baseline share 1 seed(s); pairing needs 2 or more, so lad:js uses Welch's t"
        in comparison.notes
    )
    make_run("lad-c", "lad", [0.8], seed=0)  # seed 0 twice in lad:js: which run pairs with grpo-a?
    comparison = run_compare([tmp_path], metrics=["reward/mean"], paired=True)
    assert any(n.startswith("--paired: a seed appears twice in lad:js") for n in comparison.notes)
    from ladkit.compare.table import legend

    assert "Δ: paired t over runs matched by seed (--paired)" in legend(comparison)
