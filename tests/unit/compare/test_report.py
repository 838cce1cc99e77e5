"""The report's figures: curve panels keep the runs' own values in view however wide a t band over few seeds is."""

import json

import pytest

from ladkit.compare.analysis import compare_runs
from ladkit.compare.loading import load_runs
from ladkit.compare.report import curves_figure, pass_at_k_figure, value_range


def test_curve_panels_are_scaled_to_the_runs_not_to_the_band(make_run, tmp_path):
    # Two seeds per group: the t band is mean +- 12.7 * sd / sqrt(2), far outside the values (0.1 to 0.4).
    for seed, values in enumerate(([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])):
        make_run(f"grpo-s{seed}", "grpo", values, seed=seed)
        make_run(f"lad-s{seed}", "lad", [v + 0.05 for v in values], seed=seed)
    runs, notes = load_runs([tmp_path])
    figure = curves_figure(compare_runs(runs, metrics=["reward/mean"], notes=notes))
    # values 0.1 .. 0.45, 5% margin of the 0.35 span = 0.0175
    assert figure.layout.yaxis.range == pytest.approx((0.1 - 0.0175, 0.45 + 0.0175))
    band_low = min(v for trace in figure.data for v in trace.y)
    assert band_low < figure.layout.yaxis.range[0]  # the band itself is drawn, clipped at the panel's edge
    assert pass_at_k_figure(compare_runs(runs, metrics=["reward/mean"], notes=notes)).layout.yaxis.range == (
        -0.02,
        1.02,
    )


def test_value_range_of_a_flat_or_empty_series():
    assert value_range([]) is None
    assert value_range([2.0, 2.0]) == pytest.approx([1.9, 2.1])  # no spread: a margin of 5% of the value


def test_every_tracked_prompt_is_pictured_for_each_group_side_by_side(make_run, tmp_path):
    # p0 tracked by grpo-s0 and lad-s1 (lad-s0 tracked nothing), p1 by grpo-s0 only, p2..p5 by lad-s1: the
    # report takes the first 4 prompts seen, each followed by its picture in every group that tracked it.
    from ladkit.compare.report import report_figures, tracked_prompts

    tracked = {"grpo-s0": ["p0", "p1"], "lad-s0": [], "lad-s1": ["p2", "p0", "p3", "p4", "p5"]}
    for name, ids in tracked.items():
        folder = make_run(name, name.split("-")[0], [0.1, 0.2], seed=int(name[-1]))
        rows = [
            {
                "step": 0,
                "example_id": i,
                "prompt": i,
                "rewards": [1, 0],
                "advantage_dist": [0.7, 0.3],
                "policy_dist": [0.5, 0.5],
            }
            for i in ids
        ]
        (folder / "tracked.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs, notes = load_runs([tmp_path])
    comparison = compare_runs(runs, metrics=["reward/mean"], notes=notes)
    pairs = [(example_id, run.name) for example_id, run in tracked_prompts(comparison)]
    assert pairs == [("p0", "grpo-s0"), ("p0", "lad-s1"), ("p1", "grpo-s0"), ("p2", "lad-s1"), ("p3", "lad-s1")]
    titles = [figure.layout.title.text for figure in report_figures(comparison)[2:]]
    assert [title.split(" · ")[:2] for title in titles] == [[run, i] for i, run in pairs]


def _track(folder, ids: list[str], steps: int, prompt: str = "p") -> None:
    """tracked.jsonl as the trainer writes it: every tracked prompt once per step."""
    rows = [
        {
            "step": step,
            "example_id": i,
            "prompt": prompt,
            "rewards": [1, 0],
            "advantage_dist": [0.7, 0.3],
            "policy_dist": [0.5, 0.5],
        }
        for step in range(steps)
        for i in ids
    ]
    (folder / "tracked.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_each_tracked_prompt_is_drawn_once_per_group_however_many_steps(make_run, tmp_path, steps):
    # Two groups tracking the same 2 prompts (fewer than the 4 pictured) over `steps` steps: 2 prompts x 2
    # groups = 4 tracked figures after the curves and pass@k, each with one slider frame per step.
    from ladkit.compare.report import report_figures

    for name in ("grpo-s0", "lad-s0"):
        _track(make_run(name, name.split("-")[0], [0.1, 0.2]), ["p0", "p1"], steps)
    runs, notes = load_runs([tmp_path])
    figures = report_figures(compare_runs(runs, metrics=["reward/mean"], notes=notes))
    assert len(figures) == 2 + 4
    titles = [figure.layout.title.text.split(" · ")[:2] for figure in figures[2:]]
    assert titles == [["grpo-s0", "p0"], ["lad-s0", "p0"], ["grpo-s0", "p1"], ["lad-s0", "p1"]]
    assert [len(figure.frames) for figure in figures[2:]] == [steps] * 4


def test_tracked_titles_show_the_question_not_the_chat_template(make_run, tmp_path):
    from ladkit.compare.report import report_figures

    chat = (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nMake 24 from 3, 5, 7, 2.<|im_end|>\n<|im_start|>assistant\n"
    )
    _track(make_run("lad-s0", "lad", [0.1, 0.2]), ["p0"], 1, prompt=chat)
    runs, notes = load_runs([tmp_path])
    (figure,) = report_figures(compare_runs(runs, metrics=["reward/mean"], notes=notes))[2:]
    assert figure.layout.title.text.endswith("<br><sub>Make 24 from 3, 5, 7, 2.</sub>")


def test_tradeoff_figure_places_each_group_at_its_seed_mean(write_rows, tmp_path):
    """One point per group at the mean of its runs' latest held-out (dist-4, pass@1), with 95% t intervals:
    two seeds at pass@1 0.2 and 0.4 -> mean 0.3, half-width t(0.975, 1) * sd / sqrt(2) = 12.706 * 0.1 = 1.2706."""
    from ladkit.compare.report import report_figures, tradeoff_figure

    evals = {"grpo": [(0.60, 0.2), (0.62, 0.4)], "lad": [(0.70, 0.25), (0.70, 0.25)]}
    for group, points in evals.items():
        for seed, (dist4, pass1) in enumerate(points):
            rows = [
                {"step": 0, "reward/mean": 0.1, "eval/pass@1": 0.9, "eval/dist4": 0.1},  # earlier: not the latest
                {"step": 1, "reward/mean": 0.2},
                {"step": 2, "eval/pass@1": pass1, "eval/dist4": dist4},
            ]
            write_rows(f"{group}-s{seed}", group, rows, seed=seed)
    write_rows("flowrl-s0", "flowrl", [{"step": 0, "reward/mean": 0.3}])  # no eval: no point
    runs, notes = load_runs([tmp_path])
    comparison = compare_runs(runs, metrics=["reward/mean"], notes=notes)
    figure = tradeoff_figure(comparison)
    grpo, lad, flowrl = (next(g for g in comparison.groups if g.startswith(m)) for m in ("grpo", "lad", "flowrl"))
    means = {trace.name: (trace.x[0], trace.y[0]) for trace in figure.data if trace.showlegend is not False}
    assert means[grpo] == pytest.approx((0.61, 0.3)) and means[lad] == pytest.approx((0.70, 0.25))
    assert flowrl not in means
    grpo = next(trace for trace in figure.data if trace.name == grpo)
    assert grpo.error_y.array[0] == pytest.approx(12.7062 * 0.1, rel=1e-4)
    lad = next(trace for trace in figure.data if trace.name == lad)
    assert lad.error_y.array[0] == pytest.approx(0.0)  # equal seeds: a zero-width interval
    titles = [f.layout.title.text for f in report_figures(comparison)]
    assert titles[2].startswith("accuracy against diversity")  # after the curves and pass@k


def test_no_tradeoff_figure_without_held_out_diversity(make_run, tmp_path):
    from ladkit.compare.report import tradeoff_figure

    make_run("grpo-s0", "grpo", [0.1, 0.2])
    runs, notes = load_runs([tmp_path])
    assert tradeoff_figure(compare_runs(runs, metrics=["reward/mean"], notes=notes)) is None
