"""The bandit dashboard without a notebook: live redraws, the final figure, the run folder, the controls."""

from __future__ import annotations

import json
import sys

import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from ladkit.bandit.shapes import make_advantages  # noqa: E402
from ladkit.errors import LadkitError  # noqa: E402
from ladkit.viz import widgets  # noqa: E402
from ladkit.viz.bandit_dashboard import BanditDashboard, LiveBanditFigure  # noqa: E402


@pytest.fixture
def redraws(monkeypatch):
    """Spy on every live redraw: (label, step, the policy trace's y right after the redraw, event probs)."""
    seen = []
    original = LiveBanditFigure.update

    def spy(self, event):
        original(self, event)
        bars = self.figure.data[self.traces[event.label].policy]
        seen.append((event.label, event.step, list(bars.y), event.probs.tolist()))

    monkeypatch.setattr(LiveBanditFigure, "update", spy)
    return seen


def test_figure_redraws_live_and_ends_at_the_final_policy(tmp_path, redraws):
    dash = BanditDashboard(num_arms=10, steps=100, callback_every=10)
    result = dash.run(run_dir=tmp_path / "run")

    # Callbacks at step 0, every 10 steps and the last: 11 per objective, each one redrawing the bars.
    assert [label for label, *_ in redraws] == ["lad:js"] * 11 + ["grpo"] * 11
    assert [step for _, step, *_ in redraws[:11]] == list(range(0, 101, 10))
    for _, _, bars, probs in redraws:
        assert bars == pytest.approx(probs, abs=1e-6)
    assert redraws[0][2] != redraws[10][2]  # the policy trace really moved during the run

    figure = dash.figure
    target = torch.softmax(2.0 * make_advantages("trimodal", 10), 0)  # [K] default 1/eta = 2
    for run in result.runs:
        ids = dash.live.traces[run.label]
        assert list(figure.data[ids.policy].y) == pytest.approx(run.probs.tolist(), abs=1e-6)
        assert list(figure.data[ids.target].y) == pytest.approx(target.tolist(), abs=1e-6)
        # Curves end on the full history (a row every log_every = 20 steps), as in the run folder.
        assert list(figure.data[ids.tv].x) == [0, 20, 40, 60, 80, 100]
        assert figure.data[ids.tv].y[-1] == pytest.approx(run.summary["bandit/tv_to_target"])

    assert dash.run_dir == tmp_path / "run"
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "summary.json", "bandit.html"):
        assert (dash.run_dir / name).is_file(), name
    summary = json.loads((dash.run_dir / "summary.json").read_text())
    assert set(summary["runs"]) == {"lad:js", "grpo"}
    assert json.loads((dash.run_dir / "meta.json").read_text())["status"] == "completed"


def test_controls_map_onto_the_config():
    dash = BanditDashboard(num_arms=12, steps=30, estimator="grpo", grpo_clip=0.2)
    dash.controls["pi_old"].value = "refresh"
    dash.controls["refresh_every"].value = 5
    dash.controls["objectives"].value = ("lad:tv", "flowrl")
    dash.controls["inv_eta"].value = 4.0
    config = dash.config(mode="sampled", group_size=4)
    assert config.refresh_every == 5
    assert config.objectives == ["lad:tv", "flowrl"]
    assert config.inverse_temperature == pytest.approx(4.0)
    assert (config.num_arms, config.steps, config.mode, config.group_size) == (12, 30, "sampled", 4)
    assert (config.estimator, config.grpo.epsilon_low, config.grpo.epsilon_high) == ("grpo", 0.2, 0.2)  # kept
    dash.controls["pi_old"].value = "fixed"
    assert dash.config().refresh_every is None


def test_sampled_refreshed_run_under_a_default_run_root(tmp_path, redraws):
    dash = BanditDashboard(run_root=tmp_path, num_arms=10, steps=40, callback_every=20, objectives=["lad:kl"])
    first = dash.run(mode="sampled", refresh_every=1)
    first_dir = dash.run_dir
    dash.run(mode="sampled", refresh_every=1)  # same config in the same second: a fresh folder, not a clash
    assert first_dir.parent == tmp_path and "refresh1" in first_dir.name
    assert dash.run_dir != first_dir and (dash.run_dir / "summary.json").is_file()
    assert first.config.mode == "sampled" and len(redraws) == 2 * 3
    assert dash.controls["pi_old"].value == "fixed"  # overrides are for one run only


def test_button_runs_the_controls_and_reports_bad_settings(tmp_path):
    dash = BanditDashboard(run_root=tmp_path, num_arms=10, steps=20, objectives=["grpo"])
    dash.run_button.click()
    assert dash.result is not None and dash.result.config.objectives == ["grpo"]
    assert dash.status.value.startswith("done:") and not dash.run_button.disabled

    dash.controls["objectives"].value = ()
    dash.run_button.click()  # a LadkitError becomes a status line, not an exception
    assert "objectives is empty" in dash.status.value

    dash.controls["objectives"].value = ("lad", "lad:js")  # 'lad' follows the divergence menu: js
    dash.run_button.click()
    assert "lad:js twice" in dash.status.value


def test_bad_settings_by_name_are_errors():
    with pytest.raises(LadkitError, match="unknown bandit setting.*num_armz"):
        BanditDashboard(num_armz=10)
    dash = BanditDashboard(num_arms=10, steps=10)
    with pytest.raises(LadkitError, match="inv_eta"):
        dash.run(inv_eta=-1.0)


def test_missing_widgets_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes `import ipywidgets` raise ImportError
    with pytest.raises(LadkitError, match=r"pip install 'ladkit\[notebooks\]'"):
        widgets.require_widgets()
