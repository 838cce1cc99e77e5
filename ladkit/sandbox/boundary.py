"""The outer boundary of one execution: bubblewrap's namespaces where the machine has them, else the fallback.

With bubblewrap (`bwrap`, installed by scripts/install_sandbox.sh) the launcher starts inside fresh mount,
PID, IPC, UTS and network namespaces whose filesystem holds only:

    /usr (and the /bin, /lib, /lib64, /sbin links)   read-only system files
    the interpreter's venv and base prefix            read-only, at their own paths (nothing else of them)
    /ladkit/launcher.py                               read-only: the code that confines and runs the program
    /box                                              the working folder: a size-capped tmpfs with main.py
    /tmp, /var/tmp, /dev/shm                          private size-capped tmpfs, empty at start, gone at the end
    /proc (this PID namespace only), /dev (null, zero, random, urandom, tty)

so the project, data sets, home folders, /etc and the host's path Unix sockets do not exist for the program.
bwrap's own init is PID 1 and reaps every orphan (`clone(CLONE_PARENT)` children included); when the
program ends, the namespace ends and the kernel kills whatever is left in it.

Without a working bwrap the fallback is the launcher's own confinement (uid, rlimits, network namespace:
see runner.py), announced by one `SandboxWarning` per process. `LADKIT_SANDBOX=fallback` forces it;
`LADKIT_SANDBOX=bubblewrap` makes a missing bwrap an error instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import warnings
from pathlib import Path

BOX = "/box"  # the program's working folder inside the boundary
LAUNCHER_INSIDE = "/ladkit/launcher.py"
MODES = ("bubblewrap", "fallback")
_SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
_warned = False


class SandboxError(RuntimeError):
    """The sandbox could not be set up (not the program's fault): no run happens unconfined."""


class SandboxWarning(UserWarning):
    """The sandbox runs with its weaker fallback confinement (see docs/sandbox.md)."""


def mode() -> str:
    """'bubblewrap' or 'fallback' for the next execution (LADKIT_SANDBOX, else whatever works here)."""
    wanted = os.environ.get("LADKIT_SANDBOX", "").strip().lower()
    if wanted not in ("", *MODES):
        raise SandboxError(f"LADKIT_SANDBOX must be 'bubblewrap', 'fallback' or unset, got {wanted!r}")
    if wanted != "fallback" and bubblewrap() is not None:
        return "bubblewrap"
    if wanted == "bubblewrap":
        raise SandboxError(
            "LADKIT_SANDBOX=bubblewrap but bwrap is missing or refused here: run scripts/install_sandbox.sh"
        )
    _warn_fallback()
    return "fallback"


def _warn_fallback() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "ladkit sandbox: bubblewrap (bwrap) is not in use (missing, refused here, or LADKIT_SANDBOX=fallback), "
            "so untrusted code runs with the weaker fallback "
            "confinement: it can read world-readable files (data sets, the project, /etc), keeps files in the "
            "shared /tmp until cleanup, and reach host Unix sockets. Install it: scripts/install_sandbox.sh "
            "(see docs/sandbox.md)",
            SandboxWarning,
            stacklevel=4,
        )


@functools.cache
def bubblewrap() -> str | None:
    """The path of a bwrap that works on this machine (probed once), or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        probe = subprocess.run(
            [path, *_namespaces(), *_system(), "--", "/usr/bin/true"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


def _namespaces() -> list[str]:
    common = ["--die-with-parent", "--new-session"]
    if os.geteuid() != 0:
        return ["--unshare-all", *common]  # a user namespace gives the unprivileged caller its mounts
    # As root no user namespace: the launcher needs real CAP_SETUID/CAP_SETGID to switch to a fresh host uid.
    capabilities = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    unshare = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return [*unshare, *common, *capabilities]


def _system() -> list[str]:
    """Read-only /usr, the merged-/usr links (or the directories where /bin etc. are real), /proc, /dev."""
    arguments = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        if os.path.islink(name):
            arguments += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            arguments += ["--ro-bind", name, name]
    # The loader's index only (no accounts, no configuration); /etc must be traversable by the sandbox uid.
    arguments += [*_parents("/etc/ld.so.cache"), "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    return [*arguments, "--proc", "/proc", "--dev", "/dev"]


@functools.cache
def interpreter_folders(interpreter: str) -> tuple[str, tuple[str, ...]]:
    """(the binary to run, the folders it needs read-only): its venv, if any, and its base prefix.

    Asked of the interpreter itself (resolves pyenv shims and links); the venv is found by its pyvenv.cfg,
    so a venv inside a project brings the venv, not the project.
    """
    script = "import sys; print(sys.executable); print(sys.base_prefix); print(sys.base_exec_prefix)"
    try:
        answer = subprocess.run(
            [interpreter, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SandboxError(f"the sandbox interpreter {interpreter!r} does not run: {error}") from error
    executable, *prefixes = answer.stdout.split("\n")[:3]
    folders = {str(Path(prefix).resolve()) for prefix in prefixes if prefix}
    venv = Path(executable).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        folders.add(str(venv))
    kept = sorted(folder for folder in folders if folder != "/" and not _under(folder, "/usr"))
    return executable, tuple(kept)


def _parents(path: str) -> list[str]:
    """Create the folders above `path` as 0755 (bwrap would make them 0700: closed to the sandbox uid)."""
    arguments = []
    for parent in reversed(Path(path).parents[:-1]):  # outermost first, "/" left out
        arguments += ["--perms", "0755", "--dir", str(parent)]
    return arguments


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def command(bwrap: str, interpreter: str, launcher: Path, program: Path, tmp_bytes: int) -> list[str]:
    """The bwrap argv (up to `--`) for one execution: `program` appears as /box/main.py."""
    arguments = [bwrap, *_namespaces(), *_system()]
    size = str(tmp_bytes)
    for place in ("/tmp", "/var/tmp", "/dev/shm", BOX):  # world-writable with the sticky bit, like a real /tmp
        arguments += ["--perms", "1777", "--size", size, "--tmpfs", place]
    # After the private tmpfs mounts, so that an interpreter living under /tmp (a venv in a clone under /tmp, as CI
    # may have) is bound on top of them instead of hidden by them.
    for folder in interpreter_folders(interpreter)[1]:
        arguments += [*_parents(folder), "--ro-bind", folder, folder]
    arguments += [*_parents(LAUNCHER_INSIDE), "--ro-bind", str(launcher), LAUNCHER_INSIDE]
    arguments += ["--ro-bind", str(program), f"{BOX}/main.py", "--chdir", BOX, "--"]
    return arguments
