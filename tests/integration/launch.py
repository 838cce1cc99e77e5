"""Launching the multi-process integration runs (torchrun ranks as subprocesses), with a clean environment.

- The environment drops what an in-process vLLM engine, started by an earlier test in the same pytest process,
  leaves in os.environ for its own thread binding (LD_PRELOAD of tcmalloc/libgomp, LOCAL_WORLD_SIZE): the ranks
  must start as a user's `torchrun` would.
- A rank that aborts in C++ with "terminate called without an active exception" (seen about once in 20 launches
  under a loaded full suite, never reproduced alone in 50) is launched once more from a fresh run folder, with a
  warning naming it and carrying the aborted ranks' Python stacks, so one rare abort does not fail CI; any other
  failure, or the abort twice, fails the test. A failed assertion shows those stacks too (`failure`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

ABORT = "terminate called without an active exception"
INHERITED = ("LD_PRELOAD", "LOCAL_WORLD_SIZE", "VLLM_DIST_IDENT", "VLLM_WORKER_MULTIPROC_METHOD")


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in INHERITED}
    return {**env, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONFAULTHANDLER": "1", **extra}


def run_ranks(args: list[str], env: dict[str, str], fresh: Path | None = None) -> subprocess.CompletedProcess:
    """Run `args`; on the rare C++ abort, once more after removing `fresh` (None: no retry, e.g. a resume, which
    its test relaunches together with the run it resumes)."""
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    if aborted(out) and fresh is not None:
        start_afresh(out, fresh)
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    return out


def aborted(out: subprocess.CompletedProcess) -> bool:
    return out.returncode != 0 and ABORT in out.stderr


def start_afresh(out: subprocess.CompletedProcess, fresh: Path) -> None:
    """Warn with the aborted ranks' stacks (so a CI log shows where), then remove the run folder `fresh`."""
    first = stacks(out.stderr) or out.stderr[-1500:]
    warnings.warn(f"a rank aborted ({ABORT!r}); launched again from a fresh {fresh.name}:\n{first}", stacklevel=3)
    shutil.rmtree(fresh, ignore_errors=True)


def stacks(stderr: str) -> str:
    """Each crashed rank's Python stack: the fault handler's "Fatal Python error" blocks, without their long
    list of extension modules (which is all a plain tail of stderr would show)."""
    blocks = [block.split("\nExtension modules:")[0][:3000] for block in stderr.split("Fatal Python error")[1:]]
    return "".join(f"Fatal Python error{block}\n" for block in blocks)


def failure(out: subprocess.CompletedProcess) -> str:
    """What a failed launch's assertion shows: the crashed ranks' stacks, then the tail of stderr."""
    return stacks(out.stderr) + out.stderr[-3000:]
