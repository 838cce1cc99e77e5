"""The LLM trainer's notebook dashboard: ipywidgets controls, Start/Stop, live plotly figures, a run folder.

This module owns the notebook side of `ladkit.training.loop.train` and nothing of its maths:

- `TrainDashboard`: controls for the settings one changes between runs (`ladkit.viz.train_controls`: preset,
  model path or hub id, dtype, rollout backend, task, prompt style, objective, divergence, 1/eta, lr, new
  tokens, steps, B prompts per step, G samples per prompt, eval cadence, seed), a Start button that trains in a
  background thread (the notebook stays responsive), a Stop button (the dashboard's callback raises
  `StopTraining` at the end of the step in which it was pressed: that step is logged and checkpointed and
  the run is marked "stopped"), a status line and a progress bar. `run(**settings)` trains synchronously,
  which is how a headless notebook or a test draws the figures.
- `LiveTrainFigures`: two `go.FigureWidget`s redrawn from the trainer's callback after every step:
  `tracked` (for each tracked prompt, bars over its G samples: the advantage-induced softmax(A/eta), the
  policy-induced pi_theta/pi_old normalised over the group, and the normalised sequence probabilities) and
  `curves` (reward and eval pass@1, entropy, diversity, loss over steps).

Config resolution is `ladkit.training.resolve.resolve` (preset <- `a.b=c` overrides <- the controls), and the
run folder is the trainer's own, so the notebook cannot drift from `ladkit train`.
ipywidgets and anywidget (plotly's FigureWidget) come with the extra: pip install 'ladkit[notebooks]'.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ladkit.errors import LadkitError
from ladkit.runs import run_name, unique_path
from ladkit.text import question_of
from ladkit.training.config import TrainConfig
from ladkit.training.loop import Callback, StopTraining, train
from ladkit.training.resolve import BUILTIN_PRESET, REAL_LM_PRESET, has_chat_template, resolve
from ladkit.viz.train_controls import (
    COLUMNS,
    check_controls,
    control_values,
    control_values_of,
    flags_of,
    make_controls,
    task_overrides,
)
from ladkit.viz.widgets import WidgetDashboard, require_widgets

# (metric key, legend name, panel row, panel col, plotly mode) of every curve in the `curves` figure.
CURVES = [
    ("reward/mean", "reward (train rollouts)", 1, 1, "lines+markers"),
    ("eval/pass@1", "eval pass@1", 1, 1, "markers"),
    ("policy/entropy", "entropy", 1, 2, "lines+markers"),
    ("diversity/distinct_correct", "distinct correct", 2, 1, "lines+markers"),
    ("diversity/dist4", "dist-4", 2, 1, "lines+markers"),
    ("loss/value", "loss", 2, 2, "lines+markers"),
]
# (row["tracked"] key, legend name, colour) of the three bar traces of each tracked prompt.
DISTRIBUTIONS = [
    ("advantage_dist", "advantage-induced softmax(A/eta)", "#222222"),
    ("policy_dist", "policy-induced pi_theta/pi_old", "#1f77b4"),
    ("sequence_dist", "sequence probability", "#ff7f0e"),
]
NO_TRACKED = "tracked prompts: none yet (the metrics rows carry no 'tracked' entry)"


def shorten(text: str, width: int = 48) -> str:
    """One line of at most `width` characters (prompt text as a subplot title)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


class LiveTrainFigures:
    """The two live figures of one run; `update(row)` redraws both from one metrics row."""

    def __init__(self, steps: int, max_tracked: int = 3):
        self.max_tracked = max_tracked
        self.curves_data: dict[str, tuple[list, list]] = {key: ([], []) for key, *_ in CURVES}
        self.updates = 0  # callbacks drawn so far (one per metrics row)
        self.tracked_seen = False
        self.tracked = go.FigureWidget(self._tracked_grid())
        self.curves = go.FigureWidget(self._curves_grid(steps))

    @property
    def note(self) -> str:
        """The tracked panel's title: the note while no row has carried tracked prompts."""
        return self.tracked.layout.title.text

    def _tracked_grid(self) -> go.Figure:
        """One panel per tracked prompt, three bar traces each (empty until a row brings `tracked`)."""
        figure = make_subplots(rows=1, cols=self.max_tracked, subplot_titles=[" "] * self.max_tracked)
        for col in range(1, self.max_tracked + 1):
            for key, name, colour in DISTRIBUTIONS:
                figure.add_bar(
                    x=[], y=[], name=name, marker_color=colour, legendgroup=key, showlegend=col == 1, row=1, col=col
                )
        figure.update_layout(title=NO_TRACKED, height=360, barmode="group", bargap=0.15, template="plotly_white")
        figure.update_xaxes(title_text="sample (of G)")
        figure.update_yaxes(title_text="probability over the group", row=1, col=1)
        return figure

    def _curves_grid(self, steps: int) -> go.Figure:
        titles = ["reward", "policy entropy (nats/token)", "diversity", "loss"]
        figure = make_subplots(rows=2, cols=2, subplot_titles=titles, vertical_spacing=0.16)
        for key, name, row, col, mode in CURVES:
            figure.add_scatter(x=[], y=[], name=name, mode=mode, legendgroup=key, row=row, col=col)
        figure.update_layout(height=560, template="plotly_white")
        figure.update_xaxes(title_text="step", range=[-0.5, steps + 0.5])
        return figure

    def update(self, row: dict[str, Any]) -> None:
        """One more point on every curve the row has a value for; the tracked bars when it carries them."""
        for key, (xs, ys) in self.curves_data.items():
            if isinstance(row.get(key), (int, float)):
                xs.append(row["step"])
                ys.append(float(row[key]))
        with self.curves.batch_update():  # one message to the browser per figure, not one per trace
            for i, (key, *_) in enumerate(CURVES):
                self.curves.data[i].x, self.curves.data[i].y = self.curves_data[key]
        if row.get("tracked"):
            self._draw_tracked(row["step"], row["tracked"])
        self.updates += 1

    def _draw_tracked(self, step: int, tracked: list[dict[str, Any]]) -> None:
        shown = tracked[: self.max_tracked]
        with self.tracked.batch_update():
            for col, prompt in enumerate(shown):
                self._draw_prompt(col, prompt)
            for col in range(len(shown), self.max_tracked):  # fewer prompts than panels: clear the rest
                for j in range(len(DISTRIBUTIONS)):
                    self.tracked.data[col * len(DISTRIBUTIONS) + j].update(x=[], y=[], hovertext=None)
                self.tracked.layout.annotations[col].text = " "
            self.tracked.layout.title.text = (
                f"step {step}: {len(shown)} of {len(tracked)} tracked prompts; bars over each prompt's G samples"
            )
        self.tracked_seen = True

    def _draw_prompt(self, col: int, prompt: dict[str, Any]) -> None:
        """Panel `col`: the three distributions over the prompt's samples, completions and rewards on hover."""
        samples = list(range(len(prompt["completions"])))
        hover = [
            f"{html.escape(shorten(text, 80))}<br>reward {reward:.3f}, advantage {advantage:+.3f}"
            for text, reward, advantage in zip(prompt["completions"], prompt["rewards"], prompt["advantages"])
        ]
        for j, (key, *_) in enumerate(DISTRIBUTIONS):
            trace = self.tracked.data[col * len(DISTRIBUTIONS) + j]
            trace.update(x=samples, y=[float(p) for p in prompt[key]], hovertext=hover)
        self.tracked.layout.annotations[col].text = html.escape(shorten(question_of(prompt["prompt"])))

    def bars(self, col: int) -> dict[str, list[float]]:
        """What panel `col` draws now: distribution key -> bar heights (for tests and inspection)."""
        traces = self.tracked.data[col * len(DISTRIBUTIONS) : (col + 1) * len(DISTRIBUTIONS)]
        return {key: list(trace.y or []) for (key, *_), trace in zip(DISTRIBUTIONS, traces)}


class TrainDashboard(WidgetDashboard):
    """Controls + Start/Stop + live figures for `train`; `run(**settings)` does the same from code.

    `preset` and `overrides` ("a.b=c", like `ladkit train --set`) give the base config; `controls` are names
    from train_controls.CONTROL_KEYS that set the controls' starting values (otherwise the preset's). With no
    preset the model decides, as for `ladkit train`: `default` for the built-in model, `real-lm` for any other;
    typing a model other than the built-in one while `default` is chosen switches to `real-lm` too. Each run
    is recorded into `run_dir`, or a fresh folder under `run_root`.
    """

    def __init__(
        self,
        run_root: str | Path = "runs",
        preset: str | None = None,
        overrides: Sequence[str] = (),
        max_tracked: int = 3,
        **controls: Any,
    ):
        self._ipw = require_widgets()
        check_controls(controls)
        self.overrides = list(overrides)
        # Bad settings fail here, before any widget is built.
        start = resolve(preset, task_overrides(controls) + self.overrides, flags_of(controls))
        self.run_root, self.max_tracked = Path(run_root), max_tracked
        # No preset: the model decides, as for `ladkit train` (builtin -> default, any other model -> real-lm).
        self.controls = make_controls(self._ipw, start, start.preset or preset or BUILTIN_PRESET)
        self._switching = False  # set while _on_model changes the preset menu itself
        self.controls["preset"].observe(self._on_preset, names="value")
        self.live = LiveTrainFigures(start.steps, max_tracked)
        self.summary: dict | None = None
        self.run_dir: Path | None = None
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()  # set by Stop (UI thread), read by the callback (training thread)
        self._make_buttons()
        self.status = self._ipw.HTML(value="ready: choose settings and press Start")
        self.controls["model"].observe(self._on_model, names="value")
        self.progress = self._ipw.IntProgress(value=0, min=0, max=start.steps, description="step")
        self.output = self._ipw.Output()  # tracebacks from the training thread land here
        self._box = self._ipw.VBox([self._controls_box(), self.live.tracked, self.live.curves, self.output])

    def _make_buttons(self) -> None:
        self.start_button = self._ipw.Button(description="Start", button_style="primary", icon="play")
        self.stop_button = self._ipw.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.start_button.on_click(lambda _button: self.start())
        self.stop_button.on_click(lambda _button: self.stop())

    def _controls_box(self) -> Any:
        w, c = self._ipw, self.controls
        for control in c.values():  # three columns fit a notebook's width: one label width, inputs fill the rest
            control.style.description_width, control.layout.width = "112px", "96%"
        columns = [w.VBox([c[name] for name in names], layout=w.Layout(width="33%")) for names in COLUMNS]
        for button in (self.start_button, self.stop_button):
            button.layout.min_width = "96px"  # never squeezed to "St..."
        return w.VBox([w.HBox(columns), w.HBox([self.start_button, self.stop_button, self.progress]), self.status])

    def config(self, **controls: Any) -> TrainConfig:
        """The TrainConfig the controls describe, with `controls` (CONTROL_KEYS names) on top for this call."""
        check_controls(controls)
        values = {**control_values(self.controls), **controls}
        overrides = task_overrides(values) + self.overrides  # the caller's overrides still win
        return resolve(self.controls["preset"].value, overrides, flags_of(values))

    def run(self, run_dir: str | Path | None = None, callbacks: Sequence[Callback] = (), **controls: Any) -> dict:
        """Train the current settings (plus `controls`, for this run only) synchronously; returns the summary.

        `callbacks` run after the dashboard's own, with the same (step, row, ctx) arguments.
        """
        self._stop.clear()  # a Stop left over from an earlier run must not end this one
        return self._train(run_dir, callbacks, **controls)

    def _train(self, run_dir: str | Path | None, callbacks: Sequence[Callback], **controls: Any) -> dict:
        config = self.config(**controls)
        path = Path(run_dir) if run_dir is not None else self.default_run_dir(config)
        self._begin(config, path)
        try:
            self.summary = train(config, path, callbacks=[self._on_step, *callbacks])
        except Exception as err:
            self.status.value = f"<b>failed:</b> {html.escape(str(err))} ({path})"
            raise
        finally:
            self.start_button.disabled, self.stop_button.disabled = False, True
        self.status.value = self._final_status()
        return self.summary

    def start(self, **controls: Any) -> threading.Thread:
        """Train in a background thread (the Start button): the notebook stays free while it runs."""
        if self.thread is not None and self.thread.is_alive():
            raise LadkitError("a run is already in progress; press Stop first")
        self.start_button.disabled = True  # before the thread starts: a double click must not start two runs
        self._stop.clear()  # here, not in the thread: a Stop pressed while the thread starts up must count
        self.thread = threading.Thread(target=self._run_quietly, kwargs=controls, daemon=True)
        self.thread.start()
        return self.thread

    def stop(self) -> None:
        """Ask the running training to end after its current step (the Stop button)."""
        self._stop.set()
        self.stop_button.disabled = True
        self.status.value += " (stopping after this step)"

    def default_run_dir(self, config: TrainConfig) -> Path:
        """`RUN_ROOT/train-lad_js-countdown-s0-TIME`: a fresh folder per run."""
        label = f"lad:{config.lad.divergence}" if config.objective == "lad" else config.objective
        return unique_path(self.run_root / run_name("train", label, config.task.name, f"s{config.seed}"))

    def _begin(self, config: TrainConfig, path: Path) -> None:
        """A fresh figure pair for this run, swapped into the dashboard; buttons and status to 'running'."""
        self.run_dir, self.summary = path, None
        self.live = LiveTrainFigures(config.steps, self.max_tracked)
        children = list(self._box.children)
        children[1:3] = [self.live.tracked, self.live.curves]
        self._box.children = tuple(children)
        self.progress.value, self.progress.max = 0, config.steps
        self.start_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"running: {html.escape(str(path))}"

    def _on_step(self, step: int, row: dict[str, Any], ctx: Any) -> None:
        """The trainer callback: redraw, report, and stop here if Stop was pressed during this step."""
        self.live.update(row)
        if "reward/mean" in row:  # a trained step (the final row is the evaluation after the last one)
            self.progress.value = min(step + 1, self.progress.max)
        self.status.value = step_status(row, self.progress.max)
        if self._stop.is_set():
            raise StopTraining  # the loop saves this step, runs the final evaluation, marks the run "stopped"

    def _final_status(self) -> str:
        summary = self.summary or {}
        evals = ", ".join(f"{k} {v:.3f}" for k, v in summary.get("eval_final", {}).items())
        reward = summary.get("reward_last10_mean")
        reward_text = f"reward (last 10 steps) {reward:.3f}, " if reward is not None else ""
        return f"{summary.get('status', 'done')}: {html.escape(str(self.run_dir))}<br>{reward_text}{evals}"

    def _run_quietly(self, **controls: Any) -> None:
        """Thread body: bad settings become the status line, anything else a traceback in `output`."""
        with self.output:
            try:
                self._train(None, (), **controls)
            except LadkitError as err:
                self.status.value = f"<b>error:</b> {html.escape(str(err))}"

    def _on_model(self, change: dict) -> None:
        """A model that is not the built-in one, entered while the built-in preset is chosen, switches the preset to
        real-lm, as `ladkit train --model X` does: the built-in's lr (5e-4) and 16 new tokens must not silently
        carry over to a real model. Controls the user already changed keep their values; the prompt style follows
        the model's chat template (compact without one). Any preset can still be chosen afterwards."""
        model = (change["new"] or "").strip()
        if self.controls["preset"].value != BUILTIN_PRESET or model in ("", "builtin"):
            return
        builtin = control_values_of(resolve(BUILTIN_PRESET, self.overrides, {}))
        real = control_values_of(resolve(REAL_LM_PRESET, self.overrides, {}))
        real["prompt_style"] = "chat" if has_chat_template(model) else "compact"
        untouched = {name: value for name, value in real.items() if self.controls[name].value == builtin[name]}
        self._switching = True  # the preset menu changes below: its observer must not reset every control
        try:
            self.controls["preset"].value = REAL_LM_PRESET
        finally:
            self._switching = False
        self._set_controls({name: value for name, value in untouched.items() if name != "model"})
        self.status.value = (
            f"using preset {REAL_LM_PRESET} for a model that is not builtin (LoRA lr, completion length and batch"
            " sizes for a real LM; settings you changed are kept); choose another preset to change that"
        )

    def _on_preset(self, change: dict) -> None:
        """A new preset resets every control to that preset's value."""
        if not self._switching:
            self._set_controls(control_values_of(resolve(change["new"], self.overrides, {})))

    def _set_controls(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            control = self.controls[name]
            if hasattr(control, "options") and value not in control.options:  # e.g. a preset's custom task
                control.options = (*control.options, value)
            control.value = value


def step_status(row: dict[str, Any], steps: int) -> str:
    """'step 3/20: reward 0.41, entropy 1.23, ...' from whichever of the key numbers the row has."""
    shown = [
        ("reward", "reward/mean"),
        ("entropy", "policy/entropy"),
        ("loss", "loss/value"),
        ("eval pass@1", "eval/pass@1"),
    ]
    numbers = ", ".join(f"{name} {row[key]:.3f}" for name, key in shown if key in row)
    return f"step {row['step']}/{steps}: {numbers}"
