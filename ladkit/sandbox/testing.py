"""Test cases for programs: stdin/stdout cases and assert-style function tests, run in parallel.

Owns `TestCase` (parsed from `{"input": ..., "output": ...}` or `{"assert": "assert f(1) == 2"}`),
`TestResult` (passed, reason, detail) and `run_tests` / `run_batch`, which spread every (program, test)
execution of a batch over a bounded thread pool (each execution is its own sandboxed process).

- stdin/stdout: the program reads `input`; it passes when its stdout equals `output` token by token
  (whitespace and line ends are not judged), and it exited cleanly.
- assert: the program's code, then the assert, then a print of a random marker run as one program; it passes
  when it exits 0 *and* printed the marker, so `sys.exit(0)` or `os._exit(0)` before the asserts does not pass.
Reasons for a failure: wrong_answer, timeout, memory, output_limit, crash, syntax_error.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ladkit.errors import LadkitError
from ladkit.sandbox.runner import Execution, Limits, check_syntax, execute

REASONS = ("wrong_answer", "timeout", "memory", "output_limit", "crash", "syntax_error")


@dataclass(frozen=True)
class TestCase:
    """One check: stdin/stdout (`input`, `output`) or a Python assert statement (`assertion`)."""

    __test__ = False  # not a pytest class, despite the name

    input: str | None = None
    output: str | None = None
    assertion: str | None = None

    @classmethod
    def parse(cls, raw: object) -> TestCase:
        """A test from its dict form; LadkitError naming what is wrong with a malformed one."""
        if isinstance(raw, TestCase):
            return raw
        if not isinstance(raw, dict):
            raise LadkitError(f"a test case must be a mapping, got {type(raw).__name__}")
        if isinstance(raw.get("assert"), str) and raw["assert"].strip():
            return cls(assertion=raw["assert"])
        if "input" in raw and "output" in raw and _is_text(raw["input"]) and _is_text(raw["output"]):
            return cls(input=str(raw["input"]), output=str(raw["output"]))
        raise LadkitError(
            f"a test case needs 'input' and 'output' text, or an 'assert' statement; got keys {sorted(raw)}"
        )


def _is_text(value: object) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


@dataclass
class TestResult:
    """Whether one test passed; `reason` (one of REASONS) and `detail` say why not."""

    __test__ = False

    passed: bool
    reason: str | None = None
    detail: str = ""


def _program(code: str, test: TestCase) -> tuple[str, str, str | None]:
    """(source, stdin, marker) of the run that checks `test`."""
    if test.assertion is None:
        return code, test.input or "", None
    marker = secrets.token_hex(16)
    return f"{code}\n\n{test.assertion}\nprint({marker!r})\n", "", marker


def _judge(execution: Execution, test: TestCase, marker: str | None) -> TestResult:
    if marker is not None and execution.status == "crash" and execution.detail.startswith("AssertionError"):
        return TestResult(False, "wrong_answer", execution.detail)  # the program ran; its answer was wrong
    if execution.status != "ok":
        return TestResult(False, execution.status, execution.detail)
    if marker is not None:
        ok = execution.stdout.rstrip().endswith(marker)
        return TestResult(ok, None if ok else "wrong_answer", "" if ok else "exited before the tests ran")
    if execution.stdout.split() == (test.output or "").split():
        return TestResult(True)
    return TestResult(False, "wrong_answer", f"expected {test.output[:100]!r}, got {execution.stdout[:100]!r}")


def _run_one(code: str, test: TestCase, limits: Limits, interpreter: str | None) -> TestResult:
    source, stdin, marker = _program(code, test)
    if test.assertion is not None and (error := check_syntax(test.assertion)) is not None:
        return TestResult(False, "crash", f"the test itself does not parse: {error}")  # the data's fault
    return _judge(execute(source, stdin, limits, interpreter), test, marker)


def run_batch(
    programs: Sequence[tuple[str, Sequence[TestCase | dict]]],
    limits: Limits | None = None,
    workers: int = 4,
    interpreter: str | None = None,
) -> list[list[TestResult]]:
    """Results per test per program, every execution of the batch sharing a pool of `workers`.

    A program that does not parse fails all its tests with syntax_error and starts no process.
    """
    if workers < 1:
        raise LadkitError(f"sandbox workers must be >= 1, got {workers}")
    limits = limits or Limits()
    results: list[list[TestResult | None]] = [[None] * len(tests) for _, tests in programs]
    jobs = []
    for p, (code, tests) in enumerate(programs):
        error = check_syntax(code)
        for t, test in enumerate(tests):
            if error is not None:
                results[p][t] = TestResult(False, "syntax_error", error)
            else:
                jobs.append((p, t, TestCase.parse(test)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        futures = [(p, t, pool.submit(_run_one, programs[p][0], test, limits, interpreter)) for p, t, test in jobs]
        for p, t, future in futures:
            results[p][t] = future.result()
    return results  # type: ignore[return-value]


def run_tests(
    code: str,
    tests: Sequence[TestCase | dict],
    limits: Limits | None = None,
    workers: int = 4,
    interpreter: str | None = None,
) -> list[TestResult]:
    """Results of `code` on each of `tests` (see `run_batch`)."""
    return run_batch([(code, tests)], limits, workers, interpreter)[0]
