"""Hostile programs: each is contained, reported with the right status, and leaves nothing behind.

These run real processes under the real limits; the root-only checks (fresh uid, kill-by-uid, parent
immune to signals) are skipped when the tests do not run as root. `used_uids` is in conftest.py.
They hold with bubblewrap and with the fallback (LADKIT_SANDBOX=fallback); test_sandbox_boundary.py has
what only bubblewrap holds.
"""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from ladkit.sandbox import Limits, execute, runner

AS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not AS_ROOT, reason="uid switching and signal isolation need root")
LIMITS = Limits(wall_s=3.0, cpu_s=2, memory_mb=256, processes=8, output_bytes=64 << 10)


def run(code: str, stdin: str = ""):
    start = time.monotonic()
    result = execute(code, stdin, LIMITS)
    assert time.monotonic() - start < LIMITS.wall_s + 3, "the call did not end within its limits"
    return result


def test_infinite_loop_is_a_timeout(used_uids):
    result = run("while True:\n    pass\n")
    assert result.status == "timeout"


def test_sleeping_forever_is_a_wall_clock_timeout(used_uids):
    result = run("import time\ntime.sleep(60)\n")
    assert result.status == "timeout"
    assert result.wall_s < LIMITS.wall_s + 1


def test_memory_bomb_is_reported_as_memory(used_uids):
    result = run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n")
    assert result.status == "memory"


def test_huge_output_is_cut_at_the_limit(used_uids):
    result = run("while True:\n    print('x' * 10000)\n")
    assert result.status == "output_limit"
    assert 0 < len(result.stdout) <= LIMITS.output_bytes


def test_fork_bomb_is_contained_and_leaves_no_process(used_uids):
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run(code)
    assert result.status in ("timeout", "crash")
    assert len(used_uids) == (1 if AS_ROOT else 0)  # the fixture then checks the uid has no process left


@root_only
def test_background_child_that_leaves_the_session_is_killed(used_uids):
    # A detached grandchild in its own session escapes a process-group kill; the uid sweep still gets it.
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\nprint('parent done')\n"
    result = run(code)
    assert result.status == "ok" and "parent done" in result.stdout


def test_cannot_write_or_delete_files_outside_its_directory(tmp_path, used_uids):
    canary = tmp_path / "canary.txt"
    canary.write_text("alive")
    code = f"import os\nopen({str(canary)!r}, 'w').write('owned')\nos.remove({str(canary)!r})\n"
    result = run(code)
    # Refused (fallback: another uid) or absent (bubblewrap: the folder is not in the sandbox's filesystem).
    assert result.status == "crash" and result.detail.split(":")[0] in ("PermissionError", "FileNotFoundError")
    assert canary.read_text() == "alive"


def test_working_directory_is_private_and_removed(monkeypatch, used_uids):
    made = []
    original = tempfile.mkdtemp
    monkeypatch.setattr(runner.tempfile, "mkdtemp", lambda **kw: made.append(original(**kw)) or made[-1])
    result = run("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n")
    assert result.status == "ok"
    assert not os.path.exists(result.stdout.strip()), "the throwaway directory was not removed"
    assert len(made) == 1 and not os.path.exists(made[0]), "the run's base directory was left behind"


def test_environment_secrets_are_not_inherited(monkeypatch, used_uids):
    monkeypatch.setenv("LADKIT_FAKE_SECRET", "hunter2")
    result = run("import os\nprint(sorted(os.environ))\nprint(os.environ.get('LADKIT_FAKE_SECRET'))\n")
    assert result.status == "ok"
    assert "hunter2" not in result.stdout and "LADKIT_FAKE_SECRET" not in result.stdout


@root_only
def test_parent_environment_is_not_readable_through_proc(monkeypatch, used_uids):
    monkeypatch.setenv("LADKIT_FAKE_SECRET", "hunter2")
    result = run("import os\nprint(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n")
    assert result.status == "crash" and "hunter2" not in result.stdout


def test_network_socket_fails(used_uids):
    code = "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\nprint('connected')\n"
    result = run(code)
    assert result.status == "crash" and "connected" not in result.stdout


@root_only
def test_killing_its_parent_does_not_kill_the_caller(used_uids):
    result = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('sent')\n")
    assert result.status == "crash" and "PermissionError" in result.detail
    assert os.getpid() > 0  # still here: the SIGKILL was refused


def test_segfault_through_ctypes_is_a_crash(used_uids):
    result = run("import ctypes\nctypes.string_at(0)\n")
    assert result.status == "crash" and result.returncode == -11


@root_only
def test_runs_as_an_unprivileged_fresh_uid(used_uids):
    result = run("import os\nprint(os.getuid(), os.geteuid(), os.getgroups())\n")
    uid, euid, groups = result.stdout.split(" ", 2)
    assert int(uid) == int(euid) == used_uids[0] != 0 and groups.strip() == "[]"


@root_only
def test_setuid_root_cannot_be_regained(used_uids):
    result = run("import os\nos.setuid(0)\n")
    assert result.status == "crash" and "PermissionError" in result.detail
