"""Sandboxed execution of untrusted Python programs (model completions) against test cases.

    runner.py      one program in a confined process: rlimits, fresh uid, whole-execution memory, cleanup
    boundary.py    the outer boundary: bubblewrap namespaces (private filesystem, PIDs, network) or the fallback
    processes.py   an execution's processes from the host: finding, memory summed, killing, reaping
    _launcher.py   the code that confines the process from inside before running the program
    testing.py     stdin/stdout and assert test cases, judged in parallel over a bounded pool

It limits the damage a buggy or mildly hostile program can do; it is not a VM. See docs/sandbox.md.
"""

from ladkit.sandbox.boundary import SandboxWarning
from ladkit.sandbox.processes import processes_of
from ladkit.sandbox.runner import STATUSES, Execution, Limits, SandboxError, check_syntax, execute
from ladkit.sandbox.testing import REASONS, TestCase, TestResult, run_batch, run_tests

__all__ = [
    "REASONS",
    "STATUSES",
    "Execution",
    "Limits",
    "SandboxError",
    "SandboxWarning",
    "TestCase",
    "TestResult",
    "check_syntax",
    "execute",
    "processes_of",
    "run_batch",
    "run_tests",
]
