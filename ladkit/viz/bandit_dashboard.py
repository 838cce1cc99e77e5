"""The bandit's notebook dashboard: ipywidgets controls, a live plotly figure, a recorded run folder.

This module owns the notebook side of the bandit experiment (docs/design.md 7) and nothing of its maths:

- `BanditDashboard`: controls that map one to one onto `BanditConfig` fields (objectives, divergence,
  1/eta, K, shape, pi_old fixed or refreshed every N steps, steps, exact/sampled, G, lr, seed), a Run
  button, a status line and a progress bar. `run(**overrides)` runs the current settings from code, which
  is how a headless notebook draws its figures.
- `LiveBanditFigure`: a `go.FigureWidget` redrawn from `run_bandit`'s callback every N steps: the target
  softmax(A/eta) over each objective's current policy, and TV-to-target / entropy curves over steps.

Training and recording are `ladkit.bandit.session.run_and_record` (config.yaml, metrics.jsonl,
summary.json, bandit.html), exactly what `ladkit bandit` runs, so the notebook cannot drift from the CLI.
ipywidgets and anywidget (plotly's FigureWidget) come with the extra: pip install 'ladkit[notebooks]'.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ladkit.bandit.config import SHORT_NAMES, BanditConfig, label, nested_settings, resolve_bandit
from ladkit.bandit.experiment import BanditProgress, BanditResult, bandit_target, format_summary
from ladkit.bandit.figure import COLOURS, TARGET_COLOUR, describe
from ladkit.bandit.session import default_run_dir, run_and_record
from ladkit.bandit.shapes import SHAPES
from ladkit.config import build, merge, to_dict
from ladkit.errors import LadkitError
from ladkit.objectives import DIVERGENCES, OBJECTIVES
from ladkit.viz.widgets import WidgetDashboard, require_widgets

CONFIG_FIELDS = {f.name for f in fields(BanditConfig)} | set(SHORT_NAMES) | {"grpo_clip"}


def check_fields(settings: dict[str, Any]) -> None:
    """Settings passed by name must be BanditConfig fields or the CLI's short names (divergence, eta, inv_eta,
    grpo_clip); a typo is an error, not a silent default."""
    unknown = sorted(set(settings) - CONFIG_FIELDS)
    if unknown:
        valid = ", ".join(sorted(CONFIG_FIELDS))
        raise LadkitError(f"unknown bandit setting(s) {', '.join(unknown)}; valid settings: {valid}")


def objective_choices() -> list[str]:
    """Every registered objective; LAD also once per divergence ('lad' alone follows the divergence menu)."""
    choices = []
    for name in OBJECTIVES.names():
        choices.append(name)
        if name == "lad":
            choices += [f"lad:{divergence}" for divergence in DIVERGENCES.names()]
    return choices


@dataclass
class TraceIds:
    """Where one objective lives in the figure: indices into `figure.data`."""

    policy: int  # bar chart of its current distribution over arms
    target: int  # the target softmax(A/eta) drawn over those bars
    tv: int  # TV-to-target curve
    entropy: int  # entropy curve


class LiveBanditFigure:
    """A FigureWidget for one run: distribution panels (one per objective) over TV and entropy curves."""

    def __init__(self, config: BanditConfig):
        self.labels = [label(spec, config.lad.divergence) for spec in config.objectives]
        _, self.target = bandit_target(config)  # [K] P_A (docs/design.md 2.1)
        self.cols = max(len(self.labels), 2)
        self.traces: dict[str, TraceIds] = {}
        self.curves = {name: {"step": [], "tv": [], "entropy": []} for name in self.labels}
        self.updates = 0  # redraws so far (one per callback)
        figure = self._grid()
        for i, name in enumerate(self.labels):
            self.traces[name] = self._add_objective(figure, i, name, config.num_arms)
        self._style(figure, config)
        self.figure = go.FigureWidget(figure)

    def _grid(self) -> go.Figure:
        """Row 1: one panel per objective. Row 2: TV to target (left half), entropy (right half)."""
        cols, half = self.cols, self.cols // 2
        return make_subplots(
            rows=2,
            cols=cols,
            specs=[
                [{}] * cols,
                [{"colspan": half}, *[None] * (half - 1), {"colspan": cols - half}, *[None] * (cols - half - 1)],
            ],
            subplot_titles=[*self.labels, *[""] * (cols - len(self.labels)), "TV to target", "entropy (nats)"],
            vertical_spacing=0.16,
        )

    def _add_objective(self, figure: go.Figure, i: int, name: str, num_arms: int) -> TraceIds:
        """Policy bars and the target line in panel i + 1, and the objective's two curves in row 2."""
        colour, arms = COLOURS[i % len(COLOURS)], list(range(num_arms))
        first = len(figure.data)
        uniform = [1.0 / num_arms] * num_arms  # every run starts from the uniform policy
        figure.add_bar(x=arms, y=uniform, name=f"{name} policy", marker_color=colour, row=1, col=i + 1)
        figure.add_scatter(
            x=arms,
            y=self.target.tolist(),
            mode="lines",
            name="target softmax(A/eta)",
            line={"color": TARGET_COLOUR, "width": 2},
            legendgroup="target",
            showlegend=i == 0,
            row=1,
            col=i + 1,
        )
        for col in (1, self.cols // 2 + 1):  # TV, then entropy
            figure.add_scatter(
                x=[], y=[], mode="lines", name=name, line={"color": colour}, showlegend=False, row=2, col=col
            )
        return TraceIds(policy=first, target=first + 1, tv=first + 2, entropy=first + 3)

    def _style(self, figure: go.Figure, config: BanditConfig) -> None:
        figure.update_layout(title=describe(config), height=620, bargap=0.05, template="plotly_white")
        figure.update_xaxes(title_text="arm", row=1)
        figure.update_xaxes(title_text="step", range=[0, config.steps], row=2)
        figure.update_yaxes(title_text="probability", row=1, col=1)
        figure.update_yaxes(range=[0, 1], row=2, col=1)  # TV lies in [0, 1]

    def update(self, event: BanditProgress) -> None:
        """Redraw one objective from a progress event: its bars now, one more point on each curve."""
        curves = self.curves[event.label]
        curves["step"].append(event.step)
        curves["tv"].append(event.metrics["bandit/tv_to_target"])
        curves["entropy"].append(event.metrics["bandit/entropy"])
        self._draw(event.label, event.probs.tolist(), curves["step"], curves["tv"], curves["entropy"])
        self.updates += 1

    def finish(self, result: BanditResult) -> None:
        """Final state: bars at each final policy, curves from the full history (every log_every steps)."""
        for run in result.runs:
            history = run.history
            steps = [row["step"] for row in history]
            tv = [row["bandit/tv_to_target"] for row in history]
            entropy = [row["bandit/entropy"] for row in history]
            self._draw(run.label, run.probs.tolist(), steps, tv, entropy)
            with self.figure.batch_update():
                self.figure.data[self.traces[run.label].target].y = result.target.tolist()  # the run's own

    def _draw(self, name: str, probs: list[float], steps: list, tv: list, entropy: list) -> None:
        ids, data = self.traces[name], self.figure.data
        with self.figure.batch_update():  # one message to the browser, not five
            data[ids.policy].y = probs
            data[ids.tv].x, data[ids.tv].y = steps, tv
            data[ids.entropy].x, data[ids.entropy].y = steps, entropy


class BanditDashboard(WidgetDashboard):
    """Controls + Run button + live figure for the bandit; `run(**overrides)` does the same from code.

    `defaults` are BanditConfig fields that set the controls' starting values (validated like any config).
    Every run is recorded by `run_and_record` into `run_dir`, or a fresh folder under `run_root`.
    """

    def __init__(self, run_root: str | Path = "runs", callback_every: int = 50, **defaults: Any):
        self._ipw = require_widgets()
        check_fields(defaults)
        start = resolve_bandit(None, [], defaults)  # bad values fail here, before any widget
        self.hidden = to_dict(start)  # settings without a control (estimator, grpo, table, ...) keep these
        self.run_root = Path(run_root)
        self.controls = make_controls(self._ipw, start, callback_every)
        self.live = LiveBanditFigure(self.config())
        self.result: BanditResult | None = None
        self.run_dir: Path | None = None
        self.run_button = self._ipw.Button(description="Run", button_style="primary", icon="play")
        self.run_button.on_click(self._on_click)
        self.status = self._ipw.HTML(value="ready: choose settings and press Run")
        self.progress = self._ipw.IntProgress(value=0, min=0, max=1, description="progress")
        self.output = self._ipw.Output()  # tracebacks from button clicks land here, not in the log
        self._box = self._ipw.VBox([self._controls_box(), self.live.figure, self.output])

    @property
    def figure(self) -> go.FigureWidget:
        """The figure of the latest run (a new one per run: the panel grid follows the objectives)."""
        return self.live.figure

    def _controls_box(self) -> Any:
        w, c = self._ipw, self.controls
        column = lambda *names: w.VBox([c[name] for name in names])
        return w.VBox(
            [
                w.HBox(
                    [
                        column("objectives", "divergence", "inv_eta"),
                        column("num_arms", "shape", "pi_old", "refresh_every"),
                        column("steps", "mode", "group_size", "lr", "seed", "callback_every"),
                    ]
                ),
                w.HBox([self.run_button, self.progress, self.status]),
            ]
        )

    def config(self, **overrides: Any) -> BanditConfig:
        """The BanditConfig the controls describe, with `overrides` (BanditConfig fields) on top."""
        check_fields(overrides)
        return build(BanditConfig, merge(self.hidden, nested_settings({**config_values(self.controls), **overrides})))

    def run(
        self, run_dir: str | Path | None = None, show: bool = False, callback_every: int | None = None, **overrides: Any
    ) -> BanditResult:
        """Run the current settings (plus `overrides`, for this run only; the controls keep their values).

        The figure redraws every `callback_every` steps; `show=True` also displays it in the calling cell.
        """
        config = self.config(**overrides)
        every = callback_every or self.controls["callback_every"].value
        self._new_figure(config, show)
        path = Path(run_dir) if run_dir is not None else default_run_dir(config, self.run_root)
        self.result, self.run_dir = run_and_record(config, path, callback=self._on_progress, callback_every=every)
        self.live.finish(self.result)
        self.progress.value = self.progress.max
        self.status.value = f"done: {self.run_dir}<br>" + format_summary(self.result).replace("\n", "<br>")
        return self.result

    def _new_figure(self, config: BanditConfig, show: bool) -> None:
        """A fresh figure for this run's objectives, swapped into the dashboard (and shown here if asked)."""
        self.live = LiveBanditFigure(config)
        children = list(self._box.children)
        children[1] = self.live.figure
        self._box.children = tuple(children)
        self.progress.value, self.progress.max = 0, config.steps * len(self.live.labels)
        if show:
            from IPython.display import display

            display(self.live.figure)

    def _on_progress(self, event: BanditProgress) -> None:
        self.live.update(event)
        done = self.live.labels.index(event.label) * event.steps + event.step
        self.progress.value = min(done, self.progress.max)
        tv, ent = event.metrics["bandit/tv_to_target"], event.metrics["bandit/entropy"]
        self.status.value = f"{event.label}: step {event.step}/{event.steps}, TV to target {tv:.3f}, entropy {ent:.3f}"

    def _on_click(self, _button: Any) -> None:
        """Button handler: bad settings become a one-line status, anything else a traceback in `output`."""
        self.run_button.disabled = True
        self.output.clear_output()
        with self.output:  # inside IPython, Output shows and swallows what escapes; LadkitError must not
            try:
                self.run()
            except LadkitError as err:
                self.status.value = f"<b>error:</b> {html.escape(str(err))}"
            finally:
                self.run_button.disabled = False


def make_controls(widgets: Any, start: BanditConfig, callback_every: int) -> dict[str, Any]:
    """One widget per BanditConfig field the dashboard exposes, starting from `start`."""
    wide = {"description_width": "initial"}
    shapes = SHAPES.names() + (["table"] if start.shape == "table" else [])  # a table comes from code only
    return {
        "objectives": widgets.SelectMultiple(
            options=objective_choices(), value=tuple(start.objectives), rows=7, description="objectives", style=wide
        ),
        "divergence": widgets.Dropdown(
            options=DIVERGENCES.names(), value=start.lad.divergence, description="divergence"
        ),
        "inv_eta": log_slider(widgets, start.inverse_temperature, -1.0, 1.5, 0.01, "1/eta"),
        "num_arms": widgets.IntSlider(value=start.num_arms, min=2, max=max(200, start.num_arms), description="K arms"),
        "shape": widgets.Dropdown(options=shapes, value=start.shape, description="advantage"),
        "pi_old": widgets.Dropdown(
            options=[("fixed (uniform start)", "fixed"), ("refreshed every N steps", "refresh")],
            value="fixed" if start.refresh_every is None else "refresh",
            description="pi_old",
        ),
        "refresh_every": widgets.BoundedIntText(value=start.refresh_every or 1, min=1, max=10**6, description="N"),
        "steps": widgets.BoundedIntText(value=start.steps, min=1, max=10**6, description="steps"),
        "mode": widgets.ToggleButtons(options=["exact", "sampled"], value=start.mode, description="mode"),
        "group_size": widgets.IntSlider(value=start.group_size, min=2, max=64, description="G (sampled)"),
        "lr": log_slider(widgets, start.lr, -4.0, -1.0, 0.1, "Adam lr"),
        "seed": widgets.IntText(value=start.seed, description="seed"),
        "callback_every": widgets.BoundedIntText(value=callback_every, min=1, max=10**6, description="redraw every"),
    }


def config_values(controls: dict[str, Any]) -> dict[str, Any]:
    """BanditConfig fields read off the controls (1/eta is the temperature knob, so eta stays unset)."""
    refresh = controls["pi_old"].value == "refresh"
    return {
        "objectives": list(controls["objectives"].value),
        "divergence": controls["divergence"].value,
        "eta": None,
        "inv_eta": controls["inv_eta"].value,
        "num_arms": controls["num_arms"].value,
        "shape": controls["shape"].value,
        "refresh_every": controls["refresh_every"].value if refresh else None,
        "steps": controls["steps"].value,
        "mode": controls["mode"].value,
        "group_size": controls["group_size"].value,
        "lr": controls["lr"].value,
        "seed": controls["seed"].value,
    }


def log_slider(widgets: Any, value: float, low: float, high: float, step: float, description: str) -> Any:
    """A base-10 FloatLogSlider over [10**low, 10**high], widened so that `value` is never clamped."""
    exponent = math.log10(value)
    low, high = min(low, math.floor(exponent)), max(high, math.ceil(exponent))
    return widgets.FloatLogSlider(value=value, base=10, min=low, max=high, step=step, description=description)
