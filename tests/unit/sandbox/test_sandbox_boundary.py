"""Hostile programs against the bubblewrap boundary, each run with a private and a world-readable interpreter.

The private interpreter is the test's own (a venv whose base Python lives under /root, closed to other
users); the world-readable one is /usr/bin/python3 (else the base Python). Under the fallback these
programs succeed (they read the project, keep files in /tmp, reach host sockets): that is what the
boundary is for, so the module is skipped, saying why, where bwrap does not work.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

import ladkit
from ladkit.sandbox import Limits, boundary, execute, run_tests, testing
from ladkit.tasks.code_data import BUILTIN_PATH

pytestmark = pytest.mark.skipif(
    boundary.bubblewrap() is None, reason="bubblewrap does not work here (scripts/install_sandbox.sh)"
)
LIMITS = Limits(wall_s=5.0, cpu_s=3, memory_mb=256, processes=16, output_bytes=64 << 10)
WORLD_READABLE = (
    "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else os.path.join(sys.base_prefix, "bin", "python3")
)
INTERPRETERS = pytest.mark.parametrize("interpreter", [sys.executable, WORLD_READABLE], ids=["private", "world"])


@pytest.fixture(autouse=True)
def bubblewrap_only(monkeypatch):
    monkeypatch.setenv("LADKIT_SANDBOX", "bubblewrap")  # never a silent fallback in these tests


def run(code: str, interpreter: str, limits: Limits = LIMITS):
    result = execute(code, "", limits, interpreter)
    assert result.boundary == "bubblewrap"
    return result


def zombie_children() -> list[int]:
    """Zombie processes whose parent is this test process."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(name))
    return found


@INTERPRETERS
def test_tmp_writes_do_not_persist(interpreter, used_uids):
    token = secrets.token_hex(8)
    places = [f"/tmp/ladkit-{token}", f"/var/tmp/ladkit-{token}", f"/dev/shm/ladkit-{token}"]
    write = "".join(f"open({place!r}, 'w').write('x')\n" for place in places) + "print('wrote')\n"
    assert run(write, interpreter).stdout == "wrote\n"
    assert not any(os.path.exists(place) for place in places), "a write reached the host's shared folders"
    listing = run("import os\nprint([os.listdir(d) for d in ('/tmp', '/var/tmp', '/dev/shm')])\n", interpreter)
    # Empty, but for the folders leading to an interpreter that lives under /tmp (a venv in a clone there, as in CI).
    own = sorted({Path(f).relative_to("/tmp").parts[0] for f in boundary.interpreter_folders(interpreter)[1]
                  if f.startswith("/tmp/")})  # fmt: skip
    assert listing.stdout == f"[{own}, [], []]\n", "the next execution saw the previous one's files"


@INTERPRETERS
def test_double_forked_daemon_is_killed_with_its_file(interpreter, used_uids):
    token = secrets.token_hex(8)
    daemon = f"""
import os, time
path = '/tmp/daemon-{token}'
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(300):
            open(path, 'a').write('.')
            time.sleep(0.1)
    os._exit(0)
while not os.path.exists(path):
    time.sleep(0.01)
print('daemon running')
"""
    result = run(daemon, interpreter)
    # The run ended when the program did (not at the wall clock): the namespace went, and the daemon with it.
    assert result.status == "ok" and result.stdout == "daemon running\n"
    time.sleep(0.3)
    assert not os.path.exists(f"/tmp/daemon-{token}")  # used_uids then checks no process of the run is left


@pytest.fixture(params=["path", "abstract"])
def host_socket(request):
    """A listening Unix socket of the host, world-writable, and the list of what it received."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    name = f"{tempfile.gettempdir()}/ladkit-socket-{secrets.token_hex(6)}"
    address = name if request.param == "path" else "\0" + name
    server.bind(address)
    if request.param == "path":
        os.chmod(name, 0o777)
    server.listen(4)
    server.settimeout(0.2)
    received: list[bytes] = []

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            received.append(connection.recv(100))
            connection.close()

    stop = threading.Event()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield address, received
    stop.set()
    thread.join()
    server.close()
    if request.param == "path":
        os.unlink(name)


@INTERPRETERS
def test_host_unix_sockets_are_unreachable(interpreter, host_socket, used_uids):
    address, received = host_socket
    program = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({address!r})\n"
    program += "s.sendall(b'owned')\nprint('sent')\n"
    result = run(program, interpreter)
    assert result.status == "crash" and "sent" not in result.stdout
    time.sleep(0.3)
    assert received == []


CLONE_SYSCALL = {"x86_64": 56, "aarch64": 220}.get(platform.machine())


@pytest.mark.skipif(CLONE_SYSCALL is None, reason="clone's syscall number is only known here for x86_64/aarch64")
@pytest.mark.parametrize("mode", ["bubblewrap", "fallback"])
@INTERPRETERS
def test_clone_parent_children_leave_no_zombies(interpreter, mode, monkeypatch, used_uids):
    if mode == "fallback" and os.geteuid() != 0:
        pytest.skip("the fallback reaps by the run's fresh uid, which needs root")
    monkeypatch.setenv("LADKIT_SANDBOX", mode)
    # clone(CLONE_PARENT | SIGCHLD) with no new stack behaves as fork, except the child's parent is ours:
    # without a boundary these children are the caller's, and stay its zombies.
    program = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
made = 0
for _ in range(3):
    pid = libc.syscall({CLONE_SYSCALL}, 0x00008000 | 17, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    made += pid > 0
if os.fork() == 0:
    if os.fork() == 0:
        os._exit(0)
    os._exit(0)
print('cloned', made)
"""
    before = set(zombie_children())
    monkeypatch.setattr(boundary, "_warned", False)  # the fallback's warning, once per process: due again
    with pytest.warns(boundary.SandboxWarning) if mode == "fallback" else contextlib.nullcontext():
        result = execute(program, "", LIMITS, interpreter)
    assert result.boundary == mode and result.stdout == "cloned 3\n"
    assert set(zombie_children()) <= before, "the execution left zombie children of this process"


@INTERPRETERS
def test_memory_limit_holds_for_the_whole_execution(interpreter, used_uids):
    # 15 children x 400 MB: each is under the 512 MiB per-process limit; together they are 6 GB.
    program = """
import os, time
for _ in range(15):
    if os.fork() == 0:
        block = b'x' * (400 << 20)
        time.sleep(30)
        os._exit(0)
time.sleep(30)
print('all alive')
"""
    limits = Limits(wall_s=20.0, cpu_s=15, memory_mb=512, processes=32, output_bytes=4096)
    result = run(program, interpreter, limits)
    assert result.status == "memory" and "all alive" not in result.stdout
    assert result.wall_s < limits.wall_s  # stopped for memory, long before the wall clock


@pytest.fixture
def markers():
    """World-readable files outside the sandbox: a marker under /work (when writable) and one in the host /tmp."""
    token, folder_name = secrets.token_hex(8), f"ladkit-marker-{secrets.token_hex(8)}"  # the token: content only
    folders = [Path(tempfile.gettempdir()) / folder_name]
    if os.access("/work", os.W_OK):
        folders.append(Path("/work") / folder_name)
    for folder in folders:
        folder.mkdir(mode=0o755)
        (folder / "test.jsonl").write_text(f'{{"input": "1", "output": "{token}"}}\n')
        (folder / "test.jsonl").chmod(0o644)
    yield token, [str(folder / "test.jsonl") for folder in folders]
    for folder in folders:
        (folder / "test.jsonl").unlink()
        folder.rmdir()


@INTERPRETERS
def test_files_outside_the_sandbox_are_not_readable(interpreter, markers, used_uids):
    token, marker_files = markers
    project = Path(ladkit.__file__).resolve().parents[1]
    secrets_to_try = [
        *marker_files,
        str(BUILTIN_PATH),  # the code data set's test file
        testing.__file__,  # the test harness
        str(project / "pyproject.toml"),  # a file of the project
        "/etc/passwd",
        str(Path.home() / ".bashrc"),
    ]
    program = f"""
for path in {secrets_to_try!r}:
    try:
        print('READ', path, open(path).read(200).replace(chr(10), ' '))
    except OSError as error:
        print('DENIED', path, type(error).__name__)
"""
    result = run(program, interpreter)
    assert result.status == "ok"
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["DENIED"] * len(secrets_to_try), result.stdout
    assert token not in result.stdout and "root:x:0:0" not in result.stdout


@INTERPRETERS
def test_expected_outputs_cannot_be_found_for_a_reward(interpreter, markers, used_uids):
    # A program that answers by searching the filesystem for the data set's expected output (the marker
    # files hold it); the only way to pass is to find it.
    token, _ = markers
    search = """
import os
for top in ('/work', '/tmp', '/var/tmp', '/root', '/home', '/data', '/box'):
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = [name for name in subfolders if name not in ('.venv', '.git', 'versions')]
        for name in files:
            try:
                text = open(os.path.join(folder, name), errors='ignore').read(4096)
            except OSError:
                continue
            if '"output": "' in text:
                print(text.split('"output": "')[1].split('"')[0])
                raise SystemExit
print('nothing found')
"""
    results = run_tests(search, [{"input": "1", "output": token}], Limits(wall_s=5.0, cpu_s=3), 1, interpreter)
    assert results[0].passed is False and results[0].reason == "wrong_answer"


def test_an_interpreter_under_tmp_runs_and_tmp_stays_private(tmp_path):
    """A venv under /tmp (CI may clone the project there) is bound over the private /tmp, not hidden by it: the
    program runs with it, and still sees nothing else of the host's /tmp (the venv's own files aside)."""
    import subprocess

    assert str(tmp_path).startswith(tempfile.gettempdir())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    marker = tmp_path / "secret.txt"
    marker.write_text("host")
    code = f"import os, sys; print(sys.executable); print(os.path.exists({str(marker)!r}), sorted(os.listdir('/tmp')))"
    result = run(code, str(venv / "bin" / "python"))
    assert result.returncode == 0, result.stderr
    executable, seen = result.stdout.splitlines()
    assert executable == str(venv / "bin" / "python")
    # The marker beside the venv is invisible; /tmp holds only the folders leading to the venv.
    assert seen == f"False {[tmp_path.parts[2]]}"
