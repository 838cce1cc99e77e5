"""`ladkit` CLI: instant help, forwarding of flags to the library, one-line errors, a real run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ladkit_cli.main import app
from typer.testing import CliRunner

LADKIT = [sys.executable, "-c", "from ladkit_cli.main import main; main()"]
ENV = {**os.environ, "COLUMNS": "100", "OMP_NUM_THREADS": "1"}


def run_cli(*args, cwd=None):
    return subprocess.run([*LADKIT, *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom ladkit_cli.main import app\n"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['bandit', '--help']); assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules, 'plotly' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False", out.stderr


def test_flags_are_forwarded_to_the_library(monkeypatch, tmp_path):
    seen = {}

    def fake_run_and_record(config, run_dir, live=False, **kwargs):
        seen.update(config=config, run_dir=run_dir, live=live)
        raise SystemExit(0)

    monkeypatch.setattr("ladkit.bandit.session.run_and_record", fake_run_and_record)
    args = ["bandit", "--objectives", "lad:kl, grpo,flowrl", "--divergence", "hd", "--eta", "0.5", "-k", "7",
            "--shape", "bimodal", "--mode", "sampled", "-g", "4", "--estimator", "rloo", "--refresh-every", "3",
            "--steps", "11", "--lr", "0.01", "--seed", "9", "--grpo-clip", "0.3", "--run-dir", str(tmp_path / "r"),
            "--no-live"]  # fmt: skip
    CliRunner().invoke(app, args)
    c = seen["config"]
    assert c.objectives == ["lad:kl", "grpo", "flowrl"] and c.lad.divergence == "hd" and c.lad.eta == 0.5
    assert (c.num_arms, c.shape, c.mode, c.group_size, c.estimator) == (7, "bimodal", "sampled", 4, "rloo")
    assert (c.refresh_every, c.steps, c.lr, c.seed) == (3, 11, 0.01, 9)
    assert (c.grpo.epsilon_low, c.grpo.epsilon_high) == (0.3, 0.3)  # --grpo-clip sets both
    assert seen["run_dir"] == tmp_path / "r" and seen["live"] is False


def test_config_and_set_are_forwarded_under_the_flags(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("ladkit.bandit.session.run_and_record", lambda config, run_dir, live: seen.update(c=config))
    path = tmp_path / "bandit.yaml"
    path.write_text("num_arms: 12\nsteps: 30\nobjectives: [lad, flowrl]\nlad: {divergence: kl, inv_eta: 4.0}\n")
    args = ["bandit", "--config", str(path), "--set", "steps=40", "--set", "flowrl.beta=3", "--steps", "50",
            "--divergence", "tv", "--no-live"]  # fmt: skip
    CliRunner().invoke(app, args)
    c = seen["c"]  # YAML, then --set, then the flags
    assert (c.num_arms, c.steps, c.objectives) == (12, 50, ["lad", "flowrl"])
    assert (c.lad.divergence, c.lad.inv_eta) == ("tv", 4.0)
    assert (c.flowrl.beta, c.grpo.epsilon_high) == (3.0, float("inf"))  # the bandit's GRPO keeps its open clip
    CliRunner().invoke(app, ["bandit", "--config", "refresh", "--no-live"])
    assert (seen["c"].refresh_every, seen["c"].lad.inverse_temperature) == (1, 2.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--divergence", "foo"], "error: lad: unknown divergence 'foo'; valid divergences: hd, jf, js, kl, rkl, tv"),
        (["--eta", "0"], "error: lad: eta must be > 0, got 0.0"),
        (["--inv-eta", "-2"], "error: lad: inv_eta (1/eta) must be > 0, got -2.0"),
        (["--grpo-clip", "0"], "error: grpo_clip must be > 0 or unset, got 0.0"),
        (["--set", "inv_eta=4"], "error: config key inv_eta is now lad.inv_eta; rename it in the YAML file or --set"),
        (["--set", "lad.etaa=1"], "error: unknown config key lad.etaa in lad; valid keys: divergence, eta, inv_eta"),
        (["--set", "steps"], "error: --set 'steps' is not key=value"),
        (["--config", "nope"], "error: unknown preset 'nope'; presets: paper, refresh; or give a YAML path"),
        (["--config", "missing.yaml"], "error: config file missing.yaml does not exist"),
        (["-k", "1"], "error: num_arms (K) must be >= 2, got 1"),
        (["--shape", "table", "--table", "1,x,3"], "error: advantage table entry 1 ('x') is not a number"),
        (["--shape", "table", "--table", "1,2,3", "-k", "4"], "error: advantage table has 3 values but num_arms is 4"),
        (["--shape", "table", "--table", "nope.json"], "error: advantage table file 'nope.json' does not exist"),
        (["--objectives", "lad,ppo"], "error: unknown objective 'ppo'; valid objectives: "),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(args, message, tmp_path):
    out = run_cli("bandit", *args, "--run-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def test_existing_run_is_not_overwritten(tmp_path):
    first = run_cli("bandit", "--steps", "20", "--no-live", "--run-dir", str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "run/metrics.jsonl").read_bytes()
    second = run_cli("bandit", "--steps", "20", "--no-live", "--run-dir", str(tmp_path / "run"))
    assert second.returncode == 2 and "already holds a run" in second.stderr
    assert (tmp_path / "run/metrics.jsonl").read_bytes() == before


def test_small_run_end_to_end(tmp_path):
    out = run_cli("bandit", "--steps", "200", "--objectives", "lad,grpo,lad:kl", "--run-dir", str(tmp_path / "run"))
    assert out.returncode == 0, out.stderr
    assert "lad:js: TV to target" in out.stdout and "modes kept" in out.stdout
    run = Path(tmp_path / "run")
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "meta.json",
        "metrics.jsonl",
        "summary.json",
        "bandit.html",
    }
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {r["objective"] for r in rows} == {"lad:js", "grpo", "lad:kl"}
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["runs"]) == {"lad:js", "grpo", "lad:kl"} and len(summary["target"]) == 50
    html = (run / "bandit.html").read_text()
    assert "plotly" in html and "lad:js policy" in html


def test_default_run_uses_a_fresh_named_folder(tmp_path):
    out = run_cli("bandit", "--steps", "10", "--no-live", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("bandit-lad_js-grpo-trimodal-fixed-s0-")
