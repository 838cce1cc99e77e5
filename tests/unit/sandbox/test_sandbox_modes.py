"""Choosing the boundary: LADKIT_SANDBOX, the fallback's one warning per process, the interpreter's folders."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

import ladkit
from ladkit.sandbox import SandboxError, SandboxWarning, boundary, execute


def test_unknown_mode_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("LADKIT_SANDBOX", "docker")
    with pytest.raises(SandboxError, match="LADKIT_SANDBOX must be 'bubblewrap', 'fallback' or unset"):
        execute("print(1)")


def test_fallback_warns_once_per_process(monkeypatch):
    monkeypatch.setenv("LADKIT_SANDBOX", "fallback")
    monkeypatch.setattr(boundary, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # so a second warning would be recorded, not deduplicated
        results = [execute("print(int(input()) + 1)", "41") for _ in range(2)]
    assert [result.stdout for result in results] == ["42\n", "42\n"]
    assert {result.boundary for result in results} == {"fallback"}
    assert [type(warning.message) for warning in caught] == [SandboxWarning]
    assert "scripts/install_sandbox.sh" in str(caught[0].message)


def test_missing_bubblewrap_when_required_is_an_error(monkeypatch):
    monkeypatch.setenv("LADKIT_SANDBOX", "bubblewrap")
    monkeypatch.setattr(boundary, "bubblewrap", lambda: None)
    with pytest.raises(SandboxError, match="run scripts/install_sandbox.sh"):
        execute("print(1)")


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a venv")
def test_a_venv_brings_its_folder_and_base_prefix_not_the_project():
    executable, folders = boundary.interpreter_folders(sys.executable)
    project = str(Path(ladkit.__file__).resolve().parents[1])
    assert sys.prefix in folders  # the venv itself (site-packages are not imported: python -I -S)
    assert str(Path(sys.base_prefix).resolve()) in folders or sys.base_prefix.startswith("/usr")
    assert project not in folders and Path(executable).is_file()


def test_an_interpreter_that_does_not_run_is_an_error():
    with pytest.raises(SandboxError, match="does not run"):
        boundary.interpreter_folders("/nonexistent/python3")


@pytest.mark.skipif(boundary.bubblewrap() is None, reason="bubblewrap does not work here")
def test_a_sandbox_bwrap_cannot_build_is_an_error_not_a_crash(monkeypatch):
    # A missing bind source makes bwrap itself fail (exit 1, "bwrap: ..."): no program ran, so no reward of 0.
    broken = lambda *args: [boundary.bubblewrap(), "--ro-bind", "/nonexistent-ladkit-source", "/x", "--"]  # noqa: E731
    monkeypatch.setenv("LADKIT_SANDBOX", "bubblewrap")
    monkeypatch.setattr(boundary, "command", broken)
    with pytest.raises(SandboxError, match="bubblewrap could not build the sandbox: bwrap: Can't find source path"):
        execute("print(1)")
