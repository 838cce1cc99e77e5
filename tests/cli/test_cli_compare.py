"""`ladkit compare`: flags reach the library, the table prints, the report is written, errors are one line."""

import os
import subprocess
import sys

import typer
from ladkit_cli.compare import compare
from typer.testing import CliRunner

from ladkit.compare import make_demo_runs

# cli/main.py registers the command; a local app keeps this test independent of that registration.
app = typer.Typer()
app.command("compare")(compare)
app.command("noop")(lambda: None)  # two commands, so Typer keeps the "compare" subcommand name


def test_flags_are_forwarded(monkeypatch, tmp_path):
    seen = {}

    def fake_compare_runs(runs, **kwargs):
        seen.update(kwargs, runs=runs)
        raise SystemExit(0)

    monkeypatch.setattr("ladkit.compare.compare_runs", fake_compare_runs)
    make_demo_runs(tmp_path, seeds=1, steps=4)
    args = ["compare", str(tmp_path), "--group-by", "objective", "-m", "reward/mean", "-m", "eval/pass@1",
            "--baseline", "lad"]  # fmt: skip
    CliRunner().invoke(app, args)
    assert [run.name for run in seen["runs"]] == ["demo-grpo-s0", "demo-lad-s0"]
    assert seen["metrics"] == ["reward/mean", "eval/pass@1"] and seen["group_by"] == "objective"
    assert (seen["baseline"], seen["notes"], seen["paired"]) == ("lad", [], False)
    CliRunner().invoke(app, [*args, "--paired"])
    assert seen["paired"] is True


def test_table_and_report(tmp_path):
    # 3 synthetic seeds a side: LAD's entropy ends ~0.5 nats above GRPO's with noise 0.02, a clear "better"
    make_demo_runs(tmp_path / "runs", seeds=3, steps=6)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path / "runs"), "-m", "policy/entropy", "--out", str(out)], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    assert "baseline grpo" in result.output and "policy/entropy" in result.output and "better" in result.output
    flat = " ".join(result.output.split())  # the legend wraps at the terminal's width
    assert "Welch's t" in flat and "with no real difference anywhere, 0.05 of these 1 would" in flat
    assert out.is_file() and out.stat().st_size > 1_000_000  # plotly.js inlined
    assert "Welch&#x27;s t" in out.read_text()  # the legend is in the report too
    # --paired: the demo's seeds 0, 1, 2 in both groups pair up; the legend says which test made the deltas
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path / "runs"), "-m", "policy/entropy", "--paired"], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0 and "better" in result.output
    assert "paired t over runs matched by seed (--paired)" in " ".join(result.output.split())


def test_one_run_a_side_gives_no_verdict(tmp_path):
    make_demo_runs(tmp_path / "runs", seeds=1, steps=6)
    result = CliRunner().invoke(
        app, ["compare", str(tmp_path / "runs"), "-m", "policy/entropy"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "lad:js" in line)
    assert "1 seed" in row and "better" not in row
    assert "one run in grpo, lad:js" in " ".join(result.output.split())


def test_nothing_usable_is_one_line_on_stderr(tmp_path):
    code = (
        "from ladkit_cli.main import app; from ladkit_cli.compare import compare; import sys\n"
        "app.command('compare')(compare)\nfrom ladkit_cli.main import main; main()"
    )
    env = {**os.environ, "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-c", code, "compare", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"error: no usable run to compare ({tmp_path}: not a run folder (no config.yaml, meta.json, "
        "metrics.jsonl) and holds none; skipped)"
    ]
