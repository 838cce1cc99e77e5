"""The processes of one execution, seen from the host: finding them, their memory together, killing, reaping.

An execution's processes are those of its fresh uid when the trainer is root (no other process has that uid,
and no_new_privs keeps them in it), else the descendants of the process the runner started (under
bubblewrap every process of the execution descends from it: orphans go to bwrap's PID 1).
Memory is judged for the whole execution: the resident sets summed (cheap, an over-estimate: shared pages
count once per process) and, only when that sum is over the limit, confirmed with the proportional set
sizes (PSS: shared pages split among their sharers), which fork's copy-on-write pages do not inflate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Process:
    """One /proc entry: its id, its parent's, its state letter (Z for a zombie) and resident bytes."""

    pid: int
    ppid: int
    state: str
    rss_bytes: int


def _read(pid: str) -> Process | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # it exited while we looked
    return Process(int(pid), int(fields[1]), fields[0], int(fields[21]) * PAGE_BYTES)  # stat fields 3, 4, 24


def _owned_by(uid: int, names: list[str]) -> list[Process]:
    found = []
    for name in names:
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
        except OSError:
            continue
        if (process := _read(name)) is not None:
            found.append(process)
    return found


def _descendants(root_pid: int, names: list[str]) -> list[Process]:
    children: dict[int, list[Process]] = defaultdict(list)
    for process in filter(None, map(_read, names)):
        children[process.ppid].append(process)
    found, frontier = [], [root_pid]
    while frontier:
        for child in children.pop(frontier.pop(), []):
            found.append(child)
            frontier.append(child.pid)
    return found


def members(uid: int | None, root_pid: int) -> list[Process]:
    """The execution's processes, zombies included: those of `uid`, or (uid None) the descendants of root_pid."""
    names = [name for name in os.listdir("/proc") if name.isdigit()]
    return _owned_by(uid, names) if uid is not None else _descendants(root_pid, names)


def processes_of(uid: int) -> list[int]:
    """Live (not zombie) process ids whose owner is `uid`."""
    return [process.pid for process in members(uid, 0) if process.state != "Z"]


def _pss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, or no smaps_rollup: the RSS sum already said "over", PSS can only lower it


def over_memory(uid: int | None, root_pid: int, limit_bytes: int) -> bool:
    """Whether the execution's live processes together hold more than `limit_bytes` (see the module docstring)."""
    alive = [process for process in members(uid, root_pid) if process.state != "Z"]
    if sum(process.rss_bytes for process in alive) <= limit_bytes:
        return False
    return sum(_pss_bytes(process.pid) for process in alive) > limit_bytes


def kill_all(uid: int | None, root_pid: int, deadline_s: float = 5.0) -> None:
    """SIGKILL the execution's processes until none is left (a fork bomb may still be forking mid-sweep)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        alive = [process.pid for process in members(uid, root_pid) if process.state != "Z"]
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def reap(uid: int, started_pid: int) -> int:
    """waitpid this process's zombie children of `uid` (the fallback's `clone(CLONE_PARENT)` children); how many.

    Only children of the execution's own fresh uid are touched, never `started_pid` (its Popen waits for it)
    nor another thread's runs, so no other caller's exit status is taken.
    """
    me, reaped = os.getpid(), 0
    for process in members(uid, 0):
        if process.ppid == me and process.pid != started_pid and process.state == "Z":
            with contextlib.suppress(ChildProcessError):
                reaped += os.waitpid(process.pid, os.WNOHANG)[0] == process.pid
    return reaped
