"""Shared set-up for executing notebooks headless: a kernelspec for this interpreter and smoke-size settings."""

import pytest

kernelspec = pytest.importorskip("ipykernel.kernelspec")


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A python3 kernelspec that launches this interpreter, and the smoke-size environment."""
    prefix = tmp_path / "jupyter"
    kernelspec.install(kernel_name="python3", prefix=str(prefix))  # argv[0] = sys.executable
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("LADKIT_SMOKE", "1")
    monkeypatch.setenv("LADKIT_RUN_ROOT", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path
