"""A wheel of ladkit carries data/ (the built-in model, the offline code problems, the bandit table), so a
`pip install` from an index or a git URL works offline at once instead of building the built-in model for
5 minutes or failing on `--task code_builtin`. Built offline from this checkout, installed into a folder."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, ladkit
from ladkit.models.builtin import builtin_model_path, shipped_path
from ladkit.tasks.code_data import BUILTIN_PATH
print(json.dumps({"package": ladkit.__file__, "model": str(builtin_model_path()), "shipped": str(shipped_path()),
                  "code": str(BUILTIN_PATH), "code_lines": len(BUILTIN_PATH.read_text().splitlines())}))
"""


@pytest.mark.slow
def test_wheel_ships_data_and_finds_it(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("ladkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("model.safetensors", "config.json", "tokenizer.json", "recipe.json"):
        assert f"ladkit/data/builtin/countdown-char-llama/{name}" in names
    assert {"ladkit/data/code/builtin.jsonl", "ladkit/data/bandit/skewed.csv"} <= names
    subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # From a folder outside the checkout, with the installed copy first on the path and no cache to fall back on.
    env = {"PYTHONPATH": str(target), "LADKIT_CACHE": str(tmp_path / "no-cache"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["package"] == str(target / "ladkit" / "__init__.py")
    assert found["model"] == found["shipped"] == str(target / "ladkit" / "data" / "builtin" / "countdown-char-llama")
    assert found["code"] == str(target / "ladkit" / "data" / "code" / "builtin.jsonl") and found["code_lines"] == 50
    assert not (tmp_path / "no-cache").exists()  # nothing was built
