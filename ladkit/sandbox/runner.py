"""One untrusted Python program run in a confined process: limits, a throwaway directory, and a full cleanup.

Owns `Limits`, `Execution` (what one run gave) and `execute(code, stdin, limits)`. Each run:

1. gets a fresh base directory (root-only, 0700) holding the stdin/stdout/stderr files and `work/`, the
   program's working directory (owned by the sandbox uid); all of it is removed afterwards;
2. starts `python -I -S _launcher.py` in a new session with a minimal environment (no inherited variables);
   the launcher enters a new network namespace, sets the rlimits, and (as root) switches to a fresh uid;
3. is waited for up to `wall_s`; then its session and, as root, every process of its uid are SIGKILLed,
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

LAUNCHER = Path(__file__).with_name("_launcher.py")
SETUP_FAILED = 121  # the launcher's "could not confine" status
# Fresh uids for root mode: far above any real account, one per concurrent run, so RLIMIT_NPROC and the
# final "kill every process of this uid" concern this run only.
UID_BASE, UID_SPAN = 1_500_000_000, 100_000_000
STATUSES = ("ok", "timeout", "memory", "output_limit", "crash", "syntax_error")
_uids_in_use: set[int] = set()
_uid_lock = threading.Lock()


class SandboxError(RuntimeError):
    """The sandbox could not be set up (not the program's fault): no run happens unconfined."""


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    wall_s: float = 5.0
    """Wall-clock seconds from start to kill (covers sleeping and blocking, which CPU time does not)."""
    cpu_s: int = 4
    """CPU seconds (RLIMIT_CPU, whole seconds): SIGXCPU at the limit, SIGKILL a second later."""
    memory_mb: int = 512
    """Address space (RLIMIT_AS) in MiB; allocations beyond it fail with MemoryError."""
    processes: int = 16
    """Processes and threads the run may have at once (RLIMIT_NPROC)."""
    output_bytes: int = 1 << 20
    """Bytes of stdout (and of stderr, and of any file it writes) kept; reaching it is output_limit."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "processes", "output_bytes"):
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


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) process ids whose owner is `uid`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # it exited while we looked
        if state != "Z":
            found.append(int(name))
    return found


def _kill_uid(uid: int, deadline_s: float = 5.0) -> None:
    """SIGKILL every process of `uid` until none is left (a fork bomb may still be forking mid-sweep)."""
    end = time.monotonic() + deadline_s
    while (pids := processes_of(uid)) and time.monotonic() < end:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _kill_session(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # start_new_session made its pid the group id
    process.wait()


# ----------------------------------------------------------------------------------------------- a run


def _environment(work: Path) -> dict[str, str]:
    """Nothing inherited: no tokens, no proxies, no PYTHON* settings."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}


def _read(path: Path, limit: int) -> tuple[str, int]:
    """At most `limit` bytes of the file as text, and the file's size."""
    with path.open("rb") as handle:
        data = handle.read(limit)
    return data.decode("utf-8", errors="replace"), path.stat().st_size


def _classify(result: Execution, timed_out: bool, out_size: int, limits: Limits) -> Execution:
    code, stderr = result.returncode, result.stderr
    if code == SETUP_FAILED and "ladkit sandbox setup failed" in stderr:
        raise SandboxError(stderr.strip().splitlines()[-1])
    if timed_out or code in (-signal.SIGXCPU, -signal.SIGKILL):
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


def _spawn(base: Path, work: Path, limits: Limits, uid: int | None, interpreter: str) -> subprocess.Popen:
    settings = {
        "cpu_s": limits.cpu_s,
        "memory_bytes": limits.memory_mb << 20,
        "file_bytes": limits.output_bytes,
        "processes": limits.processes,
        "uid": uid,
    }
    with (base / "stdin").open("rb") as stdin, (base / "stdout").open("wb") as out, (base / "stderr").open("wb") as err:
        return subprocess.Popen(
            [interpreter, "-I", "-S", "-B", str(LAUNCHER), json.dumps(settings)],
            stdin=stdin,
            stdout=out,
            stderr=err,
            cwd=work,
            env=_environment(work),
            start_new_session=True,
            close_fds=True,
        )


def _wait(process: subprocess.Popen, wall_s: float) -> bool:
    """True when the run outlived `wall_s`."""
    try:
        process.wait(timeout=wall_s)
        return False
    except subprocess.TimeoutExpired:
        return True


def execute(code: str, stdin: str = "", limits: Limits | None = None, interpreter: str | None = None) -> Execution:
    """Run `code` as a program reading `stdin`; see the module docstring. Thread-safe."""
    limits = limits or Limits()
    error = check_syntax(code)
    if error is not None:
        return Execution("syntax_error", detail=error)
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
        start = time.monotonic()
        process = _spawn(base, work, limits, uid, interpreter or sys.executable)
        timed_out = _wait(process, limits.wall_s)
        _kill_session(process)
        if uid is not None:
            _kill_uid(uid)
        elapsed = time.monotonic() - start
        stdout, out_size = _read(base / "stdout", limits.output_bytes)
        stderr, _ = _read(base / "stderr", 64 << 10)
        result = Execution("ok", stdout, stderr, process.returncode, elapsed)
        return _classify(result, timed_out, out_size, limits)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if uid is not None:
            _release_uid(uid)
