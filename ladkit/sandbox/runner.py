"""One untrusted Python program run in a confined process: limits, a throwaway directory, and a full cleanup.

Owns `Limits`, `Execution` (what one run gave) and `execute(code, stdin, limits)`. Each run:

1. gets a fresh base directory (root-only, 0700) holding the stdin/stdout/stderr files and `work/main.py`
   (owned by the sandbox uid); all of it is removed afterwards;
2. starts `python -I -S _launcher.py` in a new session with a minimal environment (no inherited variables),
   inside bubblewrap's namespaces (boundary.py: private filesystem, PID and network namespaces) when this
   machine has it, else directly (the fallback); the launcher sets the rlimits, enters a network namespace
   if bwrap did not, and (as root) switches to a fresh uid;
3. is waited for up to `wall_s`, its processes' memory summed every POLL_S (processes.py); then its session
   and every process of the execution are SIGKILLed and any zombie child it left this process is reaped,
   so nothing it started (even a child that left the session) outlives the call;
4. is classified: ok, timeout, memory, output_limit or crash (syntax errors are found before any process).

See docs/sandbox.md for what this guarantees and what it does not.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ladkit.errors import LadkitError
from ladkit.sandbox import boundary, processes
from ladkit.sandbox.boundary import SandboxError

LAUNCHER = Path(__file__).with_name("_launcher.py")
SETUP_FAILED = 121  # the launcher's "could not confine" status
# Fresh uids for root mode: far above any real account, one per concurrent run, so RLIMIT_NPROC and the
# final "kill every process of this uid" concern this run only.
UID_BASE, UID_SPAN = 1_500_000_000, 100_000_000
POLL_S = 0.02  # how often the whole execution's memory is summed (the overshoot window of the memory limit)
STATUSES = ("ok", "timeout", "memory", "output_limit", "crash", "syntax_error")
_uids_in_use: set[int] = set()
_uid_lock = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    wall_s: float = 5.0
    """Wall-clock seconds from start to kill (covers sleeping and blocking, which CPU time does not)."""
    cpu_s: int = 4
    """CPU seconds (RLIMIT_CPU, whole seconds): SIGXCPU at the limit, SIGKILL a second later."""
    memory_mb: int = 512
    """MiB for the whole execution: each process's address space (RLIMIT_AS: MemoryError beyond it) and the
    memory of all its processes together (summed every POLL_S; over it, everything is killed as `memory`)."""
    processes: int = 16
    """Processes and threads the whole execution may have at once (RLIMIT_NPROC on its fresh uid)."""
    tmp_mb: int = 32
    """MiB of each private tmpfs (/tmp, /var/tmp, /dev/shm and the working folder; bubblewrap only)."""
    output_bytes: int = 1 << 20
    """Bytes of stdout (and of stderr, and of any file it writes) kept; reaching it is output_limit."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "processes", "output_bytes", "tmp_mb"):
            if not getattr(self, name) > 0:
                raise LadkitError(f"sandbox limit {name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class Execution:
    """What one run gave. `status` is one of STATUSES; `detail` says more for a failure."""

    status: str
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    wall_s: float = 0.0
    detail: str = ""
    boundary: str = ""
    """'bubblewrap' or 'fallback' (see boundary.py); empty when no process ran."""


def check_syntax(code: str) -> str | None:
    """None when `code` parses, else the error. Parsing only (no compile): nothing is constant-folded."""
    try:
        ast.parse(code)
    except SyntaxError as error:
        return f"{type(error).__name__}: {error.msg} (line {error.lineno})"
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes, absurd nesting
        return f"{type(error).__name__}: {error}"
    return None


# ------------------------------------------------------------------------------------------- processes


def _claim_uid() -> int:
    with _uid_lock:
        while True:
            uid = UID_BASE + random.randrange(UID_SPAN)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


# ----------------------------------------------------------------------------------------------- a run


def _environment(home: str) -> dict[str, str]:
    """Nothing inherited: no tokens, no proxies, no PYTHON* settings."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


def _read(path: Path, limit: int) -> tuple[str, int]:
    """At most `limit` bytes of the file as text, and the file's size."""
    with path.open("rb") as handle:
        data = handle.read(limit)
    return data.decode("utf-8", errors="replace"), path.stat().st_size


def _classify(result: Execution, stopped: str | None, out_size: int, limits: Limits) -> Execution:
    code, stderr = result.returncode, result.stderr
    if code == SETUP_FAILED and "ladkit sandbox setup failed" in stderr:
        raise SandboxError(stderr.strip().splitlines()[-1])
    if result.boundary == "bubblewrap" and code == 1 and stderr.startswith("bwrap: "):
        raise SandboxError(f"bubblewrap could not build the sandbox: {stderr.strip().splitlines()[0]}")
    if stopped == "memory":
        result.status = "memory"
        result.detail = f"its processes together used more than memory_mb={limits.memory_mb} MiB"
        return result
    if stopped == "timeout" or code in (-signal.SIGXCPU, -signal.SIGKILL):
        status = "timeout"  # wall clock, or RLIMIT_CPU (SIGXCPU, then SIGKILL from the hard limit)
    elif out_size >= limits.output_bytes or "File too large" in stderr:
        status = "output_limit"  # CPython ignores SIGXFSZ, so the write fails with EFBIG instead
    elif code != 0 and "MemoryError" in stderr:
        status = "memory"
    elif code != 0:
        status = "crash"
    else:
        status = "ok"
    result.status = status
    result.detail = "" if status == "ok" else (stderr.strip().splitlines() or [f"exit status {code}"])[-1][:500]
    return result


def _settings(limits: Limits, uid: int | None, namespaced: bool) -> str:
    return json.dumps(
        {
            "cpu_s": limits.cpu_s,
            "memory_bytes": limits.memory_mb << 20,
            "file_bytes": limits.output_bytes,
            "processes": limits.processes,
            "uid": uid,
            "namespaced": namespaced,  # bwrap already made the namespaces and shows the interpreter to any uid
        }
    )


def _command(mode: str, base: Path, limits: Limits, uid: int | None, interpreter: str) -> tuple[list[str], str]:
    """(argv, HOME) of the launcher, inside bubblewrap or (fallback) directly."""
    if mode == "fallback":
        return [interpreter, "-I", "-S", "-B", str(LAUNCHER), _settings(limits, uid, False)], str(base / "work")
    bwrap = boundary.bubblewrap()
    executable = boundary.interpreter_folders(interpreter)[0]
    outer = boundary.command(bwrap, interpreter, LAUNCHER, base / "work" / "main.py", limits.tmp_mb << 20)
    inner = [executable, "-I", "-S", "-B", boundary.LAUNCHER_INSIDE, _settings(limits, uid, True)]
    return outer + inner, boundary.BOX


def _spawn(base: Path, argv: list[str], home: str) -> subprocess.Popen:
    with (base / "stdin").open("rb") as stdin, (base / "stdout").open("wb") as out, (base / "stderr").open("wb") as err:
        return subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=out,
            stderr=err,
            cwd=base / "work",
            env=_environment(home),
            start_new_session=True,
            close_fds=True,
        )


def _status(returncode: int, mode: str) -> int:
    """bwrap reports a program killed by signal N as exit status 128 + N: give it back as -N, like Popen does."""
    if mode == "bubblewrap" and 128 < returncode <= 128 + signal.SIGRTMAX:
        return 128 - returncode
    return returncode


def _wait(process: subprocess.Popen, limits: Limits, uid: int | None) -> str | None:
    """'timeout' or 'memory' when the run had to be stopped for it, None when it ended by itself."""
    end, limit = time.monotonic() + limits.wall_s, limits.memory_mb << 20
    while (left := end - time.monotonic()) > 0:
        try:
            process.wait(timeout=min(POLL_S, left))
            return None
        except subprocess.TimeoutExpired:
            pass
        if processes.over_memory(uid, process.pid, limit):
            return "memory"
    return "timeout"


def _stop(process: subprocess.Popen, uid: int | None) -> None:
    """Nothing of the run survives: its session, every process of the execution, the zombies it left us."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # start_new_session made its pid the group id
    processes.kill_all(uid, process.pid)
    process.wait()
    if uid is not None:
        processes.kill_all(uid, process.pid)
        processes.reap(uid, process.pid)


def execute(code: str, stdin: str = "", limits: Limits | None = None, interpreter: str | None = None) -> Execution:
    """Run `code` as a program reading `stdin`; see the module docstring. Thread-safe."""
    limits = limits or Limits()
    error = check_syntax(code)
    if error is not None:
        return Execution("syntax_error", detail=error)
    mode = boundary.mode()
    as_root = os.geteuid() == 0
    uid = _claim_uid() if as_root else None
    base = Path(tempfile.mkdtemp(prefix="ladkit-sandbox-"))  # 0700, ours
    try:
        work = base / "work"
        work.mkdir()
        (work / "main.py").write_text(code, encoding="utf-8")
        (base / "stdin").write_text(stdin, encoding="utf-8")
        if uid is not None:
            os.chown(work, uid, uid)
            os.chown(work / "main.py", uid, uid)
        argv, home = _command(mode, base, limits, uid, interpreter or sys.executable)
        start = time.monotonic()
        process = _spawn(base, argv, home)
        stopped = _wait(process, limits, uid)
        _stop(process, uid)
        elapsed = time.monotonic() - start
        stdout, out_size = _read(base / "stdout", limits.output_bytes)
        stderr, _ = _read(base / "stderr", 64 << 10)
        result = Execution("ok", stdout, stderr, _status(process.returncode, mode), elapsed, boundary=mode)
        return _classify(result, stopped, out_size, limits)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if uid is not None:
            _release_uid(uid)
