"""`ladkit train`: flags and --set forwarded to the config, one-line errors for bad input, a real small run."""

import json
import os
import subprocess
import sys

import pytest
from ladkit_cli.main import app
from typer.testing import CliRunner

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}
SMALL = ["--steps", "2", "--prompts-per-step", "4", "-g", "4", "--set", "task.train_size=32",
         "--set", "task.eval_size=4", "--set", "eval_every=0", "--no-live"]  # fmt: skip


def run_cli(*args, prelude: str = "", cwd=None):
    code = f"{prelude}\nfrom ladkit_cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300
    )


def test_flags_and_overrides_reach_the_config(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("ladkit_cli.train._run", lambda config, run_dir, resume, live: seen.update(c=config, d=run_dir))
    args = ["train", "--model", "some/model", "--no-lora", "--objective", "grpo", "--divergence", "hd",
            "--set", "lad.eta=0.5", "--backend", "vllm", "--steps", "7", "-g", "4", "--prompts-per-step", "8",
            "--set", "optim.lr=1e-5", "--seed", "3", "--set", "grpo.beta=0.04", "--set", "rollout.max_new_tokens=64",
            "--set", "model.target_modules=[q_proj, v_proj]", "--run-dir", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    c = seen["c"]
    assert (c.model.name_or_path, c.model.lora, c.model.target_modules) == ("some/model", False, ["q_proj", "v_proj"])
    assert (c.objective, c.lad.divergence, c.lad.inverse_temperature, c.rollout.backend) == ("grpo", "hd", 2.0, "vllm")
    assert (c.steps, c.group_size, c.prompts_per_step, c.optim.lr, c.seed) == (7, 4, 8, 1e-5, 3)
    assert (c.grpo.beta, c.rollout.max_new_tokens) == (0.04, 64) and seen["d"] == tmp_path / "r"


@pytest.mark.parametrize(
    ("args", "prelude", "message"),
    [
        (["--model", "/no/such/model"], "", "error: model '/no/such/model' not found"),
        (["-g", "1"], "", "error: group_size must be >= 2"),
        (["--prompts-per-step", "5"], "", "error: prompts_per_step (5) must be divisible by mini_batches (2)"),
        (["--set", "lad.inv_eta=-1"], "", "error: lad: inv_eta (1/eta) must be > 0"),
        (["--set", "optim.lrr=1"], "", "error: unknown config key optim.lrr"),
        (["--config", "nope"], "", "error: unknown preset 'nope'; presets: "),
        (["--divergence", "xx"], "", "error: lad: unknown divergence 'xx'"),
        (["--set", "model.target_modules=[nothing_here]"], "", "error:"),
        (["--set", "task.prompt_field=q"], "", "error: config key task.prompt_field is now task.dataset.prompt_field"),
        (["--backend", "vllm"], "import sys; sys.modules['vllm'] = None", "error: --backend vllm needs vLLM"),
        # Flags moved to --set keep a one-line error that says what to write instead.
        (["--inv-eta", "8"], "", "error: ladkit train has no --inv-eta option; use --set lad.inv_eta=8"),
        (["--lr=1e-5"], "", "error: ladkit train has no --lr option; use --set optim.lr=1e-5"),
    ],
)
def test_bad_input_is_one_line(args, prelude, message, tmp_path):
    out = run_cli("train", *SMALL, *args, "--run-dir", str(tmp_path / "run"), prelude=prelude)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert lines and lines[0].startswith(message), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_missing_dataset_field_lists_the_fields(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"question": f"{i}+1", "solution": str(i + 1)}) for i in range(20)))
    out = run_cli("train", "--dataset", str(data), "--set", "task.dataset.prompt_field=question", *SMALL,
                  "--run-dir", str(tmp_path / "run"))  # fmt: skip
    assert out.returncode == 2
    assert "question" in out.stderr and "solution" in out.stderr and "Traceback" not in out.stderr


def test_train_then_resume_from_the_cli(tmp_path):
    run = tmp_path / "run"
    out = run_cli("train", "--lora", "--divergence", "kl", *SMALL, "--set", "checkpoint_every=1", "--run-dir", str(run))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reward (mean of the first / last 10 steps' rollouts)" in out.stdout
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["command"] == "train"
    again = run_cli("train", "--resume", str(run), "--no-live")  # nothing left to train: the run is complete
    assert again.returncode == 0, again.stderr[-3000:]
    rows = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 1, 2]
    existing = run_cli("train", *SMALL, "--run-dir", str(run))
    assert existing.returncode == 2 and "already holds a run" in existing.stderr


def test_help_is_short():
    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).output
    options = [line for line in help_text.splitlines() if line.lstrip("│ ").startswith("--")]
    assert len(options) <= 20, help_text  # a few flags; every other key through --set
    assert "--set" in help_text and "--lora-rank" not in help_text and "--inv-eta" not in help_text


def test_resolved_config_round_trips_through_the_run_folder(monkeypatch, tmp_path):
    from ladkit.config import to_dict
    from ladkit.runs import RunWriter
    from ladkit.training.resolve import resolve

    sets = ["task.dataset.prompt_field=question", "task.dataset.eval_split=0.2", "task.code.memory_mb=256",
            "task.countdown.generator_options={max_target: 30}", "lad.inv_eta=2", "optim.lr=1e-4",
            "grpo.epsilon_high=.inf"]  # fmt: skip  # inf (the open clip) must come back as inf, not null
    config = resolve(None, sets, {"task.dataset.path": "d.jsonl", "task.name": "dataset"})
    RunWriter(tmp_path / "run", to_dict(config), command="train").finish(status="completed")  # writes config.yaml
    seen = {}
    monkeypatch.setattr("ladkit_cli.train._run", lambda config, run_dir, resume, live: seen.update(c=config, r=resume))
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--no-live"])
    assert result.exit_code == 0, result.output
    assert seen["c"] == config and seen["r"] is True
    task = seen["c"].task
    assert (task.dataset.prompt_field, task.countdown.generator_options) == ("question", {"max_target": 30})


def test_resume_takes_threads_and_refuses_flags_that_would_change_the_run(monkeypatch, tmp_path):
    from ladkit.config import to_dict
    from ladkit.errors import LadkitError
    from ladkit.runs import RunWriter
    from ladkit.training.resolve import resolve

    config = resolve(None, [], {"threads": 1})
    RunWriter(tmp_path / "run", to_dict(config), command="train").finish(status="completed")
    seen = {}
    monkeypatch.setattr("ladkit_cli.train._run", lambda config, run_dir, resume, live: seen.update(c=config))
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--threads", "3", "--no-live"])
    assert result.exit_code == 0, result.output
    assert seen["c"].threads == 3 and seen["c"].objective == config.objective  # how it runs, not what it trains
    for flags, named in [(["--objective", "grpo"], "--objective"), (["--set", "optim.lr=1"], "--set"),
                         (["--no-lora"], "--lora/--no-lora"), (["--steps", "9"], "--steps")]:  # fmt: skip
        seen.clear()
        result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), *flags, "--no-live"])
        assert isinstance(result.exception, LadkitError) and not seen  # refused before anything runs
        assert f"so {named} cannot change it" in str(result.exception)
    out = run_cli("train", "--resume", str(tmp_path / "run"), "--seed", "5")  # the installed command: one line
    assert out.returncode == 2 and out.stderr.startswith("error: --resume continues ") and "Traceback" not in out.stderr
    assert "so --seed cannot change it" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_resume_reads_a_run_folder_of_the_flat_task_layout(monkeypatch, tmp_path):
    # config.yaml of a run started before the task sections: --resume moves the keys to their sections
    import yaml

    from ladkit.config import to_dict
    from ladkit.training.resolve import resolve

    data = to_dict(resolve(None, [], {}))
    del data["lad"]["centered"]  # nor had LAD's centred generators
    data["task"] = {
        "name": "dataset",
        "prompt_style": "compact",
        "seed": 0,
        "train_size": None,
        "eval_size": 200,
        "num_numbers": 4,
        "generator_options": {},
        "dataset": "d.jsonl",
        "dataset_config": None,
        "split": None,
        "eval_split": 0.1,
        "prompt_field": "question",
        "answer_field": "solution",
        "preset": None,
        "reward": None,
        "reward_timeout_s": 5.0,
        "reward_workers": 2,
        "code_reward": "all",
        "code_memory_mb": 256,
        "max_skipped_fraction": 0.4,
    }
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    seen = {}
    monkeypatch.setattr("ladkit_cli.train._run", lambda config, run_dir, resume, live: seen.update(c=config))
    result = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run"), "--no-live"])
    assert result.exit_code == 0, result.output
    task = seen["c"].task
    assert (task.dataset.path, task.dataset.eval_split, task.dataset.prompt_field) == ("d.jsonl", 0.1, "question")
    assert (task.dataset.answer_field, task.dataset.max_skipped_fraction, task.reward_workers) == ("solution", 0.4, 2)
    assert (task.code.reward_mode, task.code.memory_mb, task.countdown.num_numbers) == ("all", 256, 4)
    assert seen["c"].lad.centered is False  # continued with the generator it was started with
