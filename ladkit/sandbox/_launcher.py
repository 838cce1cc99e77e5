"""Runs inside the sandbox process: confine this process, then execute `main.py` from the working directory.

Started as `python -I -S _launcher.py '<json settings>'` by `runner.py`, as root when the parent is root,
inside bubblewrap's namespaces (settings "namespaced") or, in the fallback, directly.
Standalone on purpose (stdlib only, no ladkit import): it runs before and after privileges are dropped.
Order matters: the network namespace needs CAP_SYS_ADMIN, so it comes before setuid; modules the program may
want are imported while the interpreter's files are still readable (a Python under /root is not, to others).
Exit status 121 with a message on stderr means the confinement itself failed (the parent raises).
"""

import ctypes
import json
import os
import resource
import sys

SETUP_FAILED = 121
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_NO_NEW_PRIVS = 38
# Pre-imported before the privilege drop: what short competitive / HumanEval-style programs import.
PRELOAD = (
    "abc", "array", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum", "fractions",
    "functools", "hashlib", "heapq", "io", "itertools", "json", "math", "operator", "random", "re",
    "signal", "socket", "statistics", "string", "subprocess", "sys", "threading", "time", "typing",
)  # fmt: skip


def _isolate_network(libc, as_root: bool) -> str:
    """A new, empty network namespace (only a down loopback); else an audit hook that refuses sockets."""
    flags = CLONE_NEWNET if as_root else CLONE_NEWNET | CLONE_NEWUSER
    if libc.unshare(flags) == 0:
        return "namespace"

    def refuse(event, args):
        if event.startswith("socket."):
            raise PermissionError("network access is disabled in the sandbox")

    sys.addaudithook(refuse)  # weaker: ctypes can call socket(2) directly; see docs/sandbox.md
    return "audit_hook"


def _count_processes(uid: int) -> int:
    return sum(1 for pid in os.listdir("/proc") if pid.isdigit() and _owner(pid) == uid)


def _owner(pid: str) -> int:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return -1


def _set_limits(settings: dict, as_root: bool) -> None:
    cpu = int(settings["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU at the soft limit, SIGKILL one second on
    memory = int(settings["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(settings["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))  # bounds stdout/stderr files and any file it writes
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # RLIMIT_NPROC counts every process of the real uid. As root the uid is fresh (no other process), so the
    # limit is exact; otherwise it is a budget on top of what the user already runs.
    processes = int(settings["processes"]) + (0 if as_root else _count_processes(os.getuid()))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise OSError("still root after setuid")


def _confine(settings: dict) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    as_root = os.geteuid() == 0
    if not settings.get("namespaced"):  # under bubblewrap: network namespace made, interpreter readable by all
        _isolate_network(libc, as_root)
        for name in PRELOAD:
            __import__(name)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries (su, sudo) cannot give root back
    _set_limits(settings, as_root)
    if as_root:
        _drop_privileges(int(settings["uid"]))


def main() -> None:
    try:
        _confine(json.loads(sys.argv[1]))
        with open("main.py", encoding="utf-8") as handle:
            source = handle.read()
    except Exception as error:  # noqa: BLE001 - any failure here means no confinement: refuse to run
        sys.stderr.write(f"ladkit sandbox setup failed: {type(error).__name__}: {error}\n")
        sys.exit(SETUP_FAILED)
    sys.argv = ["main.py"]
    code = compile(source, "main.py", "exec")
    exec(code, {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
