"""The LLM training dashboard without a notebook: redraws per callback, tracked bars, Stop, threads, controls.

The tracked-bar tests feed synthetic rows with "tracked" (so they hold whether or not the trainer logs tracked
prompts); the real-run, Stop and thread tests train the built-in model for a few steps (~5 s each), as
tests/integration/test_train_builtin.py does.
"""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from ladkit.errors import LadkitError  # noqa: E402
from ladkit.training import loop  # noqa: E402
from ladkit.viz.llm_dashboard import NO_TRACKED, LiveTrainFigures, TrainDashboard  # noqa: E402

# The built-in model on a tiny countdown split, as in the integration tests' small_config.
SMALL = ["task.train_size=64", "task.eval_size=8", "eval_samples=2", "checkpoint_every=2"]
SIZES = {"steps": 4, "prompts_per_step": 4, "group_size": 4, "eval_every": 2}


def tracked_prompt(step: int, example_id: int, g: int = 4) -> dict:
    """A tracked-prompt record as the trainer will log it, with distinct, checkable numbers."""
    return {
        "step": step,
        "example_id": example_id,
        "prompt": f"Use 3 5 7 to make {example_id}",
        "completions": [f"answer {i}" for i in range(g)],
        "rewards": [1.0, 0.0, 0.0, 1.0][:g],
        "advantages": [0.87, -0.87, -0.87, 0.87][:g],
        "advantage_dist": [0.4, 0.1, 0.1, 0.4][:g],
        "policy_dist": [0.3 + 0.01 * step, 0.2, 0.2, 0.3 - 0.01 * step][:g],
        "sequence_dist": [0.25, 0.05 * example_id, 0.5, 0.25 - 0.05 * example_id][:g],
    }


def row(step: int, tracked: list[dict] | None = None, **extra: float) -> dict:
    out = {
        "step": step,
        "reward/mean": 0.1 * step,
        "policy/entropy": 2.0 - 0.1 * step,
        "loss/value": -0.5 * step,
        "diversity/distinct_correct": float(step),
        **extra,
    }
    if tracked is not None:
        out["tracked"] = tracked
    return out


@pytest.fixture
def redraws(monkeypatch):
    """Spy on outermost batch_updates: one per figure message (the dashboard sends one per figure it redraws).

    Nested ones (trace.update opens its own inside ours) send nothing of their own, so they are not counted.
    """
    seen = []
    original = go.FigureWidget.batch_update

    def spy(self):
        if not self._in_batch_mode:
            seen.append(self)
        return original(self)

    monkeypatch.setattr(go.FigureWidget, "batch_update", spy)
    return seen


def test_tracked_bars_equal_the_injected_distributions(redraws):
    live = LiveTrainFigures(steps=10, max_tracked=3)
    assert live.note == NO_TRACKED and live.bars(0)["policy_dist"] == []
    live.update(row(0))  # no "tracked": curves only, the note stays
    assert live.note == NO_TRACKED and redraws == [live.curves]

    prompts = [tracked_prompt(1, 1), tracked_prompt(1, 2)]
    live.update(row(1, prompts))
    assert redraws == [live.curves, live.curves, live.tracked]
    for col, prompt in enumerate(prompts):
        bars = live.bars(col)
        for key in ("advantage_dist", "policy_dist", "sequence_dist"):
            assert bars[key] == pytest.approx(prompt[key]), (col, key)
        assert live.tracked.layout.annotations[col].text == prompt["prompt"]
    assert live.bars(1)["sequence_dist"] == pytest.approx([0.25, 0.1, 0.5, 0.15])
    assert live.bars(2)["policy_dist"] == []  # two prompts, three panels: the third stays empty
    assert live.note.startswith("step 1: 2 of 2 tracked prompts")
    hover = live.tracked.data[1].hovertext  # policy bars of prompt 1 carry completion, reward, advantage
    assert hover[0] == "answer 0<br>reward 1.000, advantage +0.870"

    live.update(row(2))  # a step without tracked prompts keeps the last bars
    assert live.bars(0)["policy_dist"] == pytest.approx([0.31, 0.2, 0.2, 0.29])
    live.update(row(3, [tracked_prompt(3, 7)]))
    assert live.bars(0)["policy_dist"] == pytest.approx([0.33, 0.2, 0.2, 0.27])
    assert live.bars(1)["policy_dist"] == []  # the second prompt is gone: its panel is cleared
    assert live.updates == 4


def test_curves_take_every_row_and_skip_missing_keys():
    live = LiveTrainFigures(steps=3)
    for step in range(3):
        live.update(row(step, **({"eval/pass@1": 0.25 * step} if step != 1 else {})))
    live.update({"step": 3, "eval/pass@1": 0.75})  # the trainer's final row: evaluation only
    by_name = {trace.name: trace for trace in live.curves.data}
    assert list(by_name["reward (train rollouts)"].x) == [0, 1, 2]
    assert list(by_name["entropy"].y) == pytest.approx([2.0, 1.9, 1.8])
    assert list(by_name["eval pass@1"].x) == [0, 2, 3]
    assert list(by_name["eval pass@1"].y) == pytest.approx([0.0, 0.5, 0.75])
    assert list(by_name["loss"].y) == pytest.approx([0.0, -0.5, -1.0])
    assert list(by_name["dist-4"].x) == []  # not logged yet
    live.update(row(4, **{"diversity/dist4": 0.6}))
    assert list(by_name["dist-4"].y) == pytest.approx([0.6])


def test_real_run_redraws_on_every_callback_and_records_the_run(tmp_path, redraws):
    dash = TrainDashboard(run_root=tmp_path / "runs", overrides=SMALL, **SIZES)
    real, injected, last_tracked = [], [], []

    def inject(step, row, ctx):
        """Trainer rows that carry "tracked" were drawn by the dashboard's callback; to the others (a trainer
        without tracked prompts, or the final evaluation row) a synthetic entry is drawn through `update`."""
        if "tracked" in row:
            real.append(row["step"])
            last_tracked[:] = row["tracked"]
        elif step < 4:
            injected.append(tracked_prompt(step, 5))
            dash.live.update({"step": step, "tracked": injected[-1:]})
            last_tracked[:] = injected[-1:]

    summary = dash.run(callbacks=[inject])
    run = dash.run_dir
    assert run.parent == tmp_path / "runs" and run.name.startswith("train-lad_js-countdown-s0-")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]  # 4 steps + the final evaluation
    assert sorted(real + [p["step"] for p in injected]) == [0, 1, 2, 3]  # every step brought tracked prompts
    # One curves message per trainer callback (5), one tracked message per real tracked row, and two
    # messages (curves + tracked) per injected row.
    assert dash.live.updates == 5 + len(injected)
    assert len(redraws) == 5 + len(real) + 2 * len(injected)
    reward = next(t for t in dash.live.curves.data if t.name == "reward (train rollouts)")
    assert list(reward.y) == pytest.approx([r["reward/mean"] for r in rows[:4]])
    evals = next(t for t in dash.live.curves.data if t.name == "eval pass@1")
    assert list(evals.x) == [0, 2, 4] and list(evals.y) == pytest.approx([rows[i]["eval/pass@1"] for i in (0, 2, 4)])
    for col, prompt in enumerate(last_tracked[:3]):  # the bars are the last tracked entry's distributions
        for key in ("advantage_dist", "policy_dist", "sequence_dist"):
            assert dash.live.bars(col)[key] == pytest.approx(prompt[key]), (col, key)
        assert sum(dash.live.bars(col)["advantage_dist"]) == pytest.approx(1.0, abs=1e-4)
    assert summary["status"] == "completed" and dash.progress.value == 4
    assert dash.status.value.startswith("completed: ") and not dash.start_button.disabled


def test_stop_ends_the_run_after_the_step_in_which_it_was_pressed(tmp_path, monkeypatch):
    dash = TrainDashboard(run_root=tmp_path / "runs", overrides=SMALL, **SIZES)
    original = loop.train_step

    def press_stop_during_step_1(ctx, step, *rest):  # a click that lands while step 1 is training
        if step == 1:
            dash.stop_button.click()
        return original(ctx, step, *rest)

    monkeypatch.setattr(loop, "train_step", press_stop_during_step_1)
    summary = dash.run(run_dir=tmp_path / "stopped")
    run = tmp_path / "stopped"
    assert summary["status"] == "stopped"
    assert json.loads((run / "meta.json").read_text())["status"] == "stopped"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]  # steps 0 and 1, then the final evaluation
    assert (run / "checkpoints/step_000001").is_dir()  # the step in which Stop was pressed is kept
    assert dash.status.value.startswith("stopped: ") and dash.progress.value == 2


def test_start_trains_in_a_thread_and_the_stop_button_stops_it(tmp_path, monkeypatch):
    dash = TrainDashboard(run_root=tmp_path / "runs", overrides=SMALL, **{**SIZES, "steps": 3})
    original, clicked = loop.train_step, []

    def press_stop_during_step_0(ctx, step, *rest):
        if step == 0:
            dash.stop_button.click()
            clicked.append(dash.stop_button.disabled)  # Stop disables itself: one press is enough
        return original(ctx, step, *rest)

    monkeypatch.setattr(loop, "train_step", press_stop_during_step_0)
    dash.start_button.click()  # the handler starts a daemon thread and returns at once
    assert dash.thread is not None and dash.start_button.disabled
    with pytest.raises(LadkitError, match="already in progress"):
        dash.start()
    dash.thread.join(timeout=120)
    assert not dash.thread.is_alive() and clicked == [True]
    assert dash.summary["status"] == "stopped" and dash.run_dir.parent == tmp_path / "runs"
    rows = [json.loads(line) for line in (dash.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]  # step 0, then the final evaluation
    assert not dash.start_button.disabled and dash.stop_button.disabled


def test_controls_build_the_config_and_reject_unknown_settings(tmp_path):
    dash = TrainDashboard(run_root=tmp_path, overrides=SMALL, objective="grpo", inv_eta=8.0, steps=7)
    config = dash.config()
    assert (config.objective, config.lad.inverse_temperature, config.steps, config.task.train_size) == (
        "grpo", 8.0, 7, 64)  # fmt: skip
    assert dash.config(objective="flowrl", divergence="kl").objective == "flowrl"
    assert dash.config(divergence="kl").lad.divergence == "kl"
    assert dash.default_run_dir(config).name.startswith("train-grpo-countdown-s0-")
    with pytest.raises(LadkitError, match="unknown dashboard setting.*valid settings: model, .*objective"):
        dash.config(stepz=3)
    with pytest.raises(LadkitError, match="group_size must be >= 2"):
        TrainDashboard(run_root=tmp_path, group_size=1)
    dash.controls["steps"].value = 11
    dash.controls["preset"].value = "gsm8k-qwen0.5b"  # a new preset resets the controls to its values
    assert (dash.controls["steps"].value, dash.controls["prompts_per_step"].value) == (200, 32)
