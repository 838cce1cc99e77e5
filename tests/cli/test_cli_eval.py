"""`ladkit eval`: flags forwarded to evaluate_run, one-line errors for bad input."""

import os
import subprocess
import sys

import typer
from ladkit_cli.eval import eval_command
from typer.testing import CliRunner

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "COLUMNS": "120"}


def app() -> typer.Typer:
    # cli/main.py registers the command as `ladkit eval`; a one-command app tests it on its own
    out = typer.Typer()
    out.command("eval")(eval_command)
    out.command("noop")(lambda: None)  # two commands so that "eval" stays a sub-command
    return out


def test_flags_reach_evaluate_run(monkeypatch, tmp_path):
    seen = {}

    def fake(path, ks, **options):
        seen.update(path=path, ks=ks, **options)
        return {"step": 3, "checkpoint": "c", "eval/pass@1": 0.25}

    monkeypatch.setattr("ladkit.evaluation.evaluate_run", fake)
    args = ["eval", str(tmp_path), "--k", "1,2", "--backend", "vllm", "--samples", "5", "--prompts", "7",
            "--temperature", "0.7", "--task", "arithmetic", "--model", "m", "--checkpoint", "3",
            "--out", str(tmp_path / "o"), "--seed", "9"]  # fmt: skip
    result = CliRunner().invoke(app(), args)
    assert result.exit_code == 0, result.output
    assert seen["path"] == tmp_path and seen["ks"] == [1, 2]
    assert (seen["backend"], seen["samples"], seen["prompts"], seen["temperature"]) == ("vllm", 5, 7, 0.7)
    assert (seen["task"], seen["model"], seen["checkpoint"], seen["out"], seen["seed"]) == (
        "arithmetic",
        "m",
        3,
        tmp_path / "o",
        9,
    )
    assert "eval/pass@1" in result.output and "0.2500" in result.output


def run_eval(*args):
    code = (
        "import sys, typer\nfrom ladkit.errors import LadkitError\nfrom ladkit_cli.eval import eval_command\n"
        "try:\n    typer.run(eval_command)\nexcept LadkitError as err:\n"
        "    print(f'error: {err}', file=sys.stderr); sys.exit(2)"
    )  # the same handling as cli/main.py's main()
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=ENV, timeout=300)


def test_a_folder_that_is_neither_run_nor_adapter_is_a_one_line_error(tmp_path):
    result = run_eval(str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "neither a ladkit run" in result.stderr
    assert "Traceback" not in result.stderr


def test_k_above_samples_is_a_one_line_error(tmp_path):
    result = run_eval(str(tmp_path), "--k", "1,8", "--samples", "4")
    assert result.returncode == 2 and "larger than --samples 4" in result.stderr
    assert result.stderr.strip().count("\n") == 0
