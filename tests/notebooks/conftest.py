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


@pytest.fixture
def notebook_client(kernel_env):
    """A function: path -> (the committed notebook, checked to hold no outputs; a client that executes it)."""
    return lambda path: _notebook_client(path, kernel_env)


def _notebook_client(path, kernel_env):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # committed without outputs
        if cell.cell_type == "code":
            assert cell.execution_count is None and cell.outputs == [], "strip outputs before committing"
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(kernel_env)}}
    )
    return notebook, client
