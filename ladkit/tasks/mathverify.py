"""Maths rewards with math-verify, bounded in wall-clock time and safe to call from any thread.

Owns answer extraction from free text and a pool of verifier processes. math-verify bounds its own work
with SIGALRM, which only works on the main thread, and sympy can spin for minutes on `9^{9^{9^{9}}}` or
deeply nested input. So parse + verify run in worker processes (`_mathverify_worker.py`, plain subprocesses
speaking JSON lines); each item gets `timeout_s` from dispatch, and a worker that overruns is killed and
replaced while the others carry on. The item then scores 0 with reason "timeout".

Extraction, in order: the last \\boxed{...} (or \\fbox{...}), the last "#### x", the last <answer>...</answer>,
the last "Answer: x" line (DAPO's format). Nothing found -> reward 0, reason "no_answer".
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path

from ladkit.errors import LadkitError
from ladkit.tasks.base import RewardResult

WORKER_SCRIPT = Path(__file__).with_name("_mathverify_worker.py")
MAX_ANSWER_CHARS = 1000  # longer "answers" are not sent to sympy at all
STARTUP_TIMEOUT_S = 120.0  # a worker imports sympy + math-verify and warms its grammars (~1 s here)

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_ANSWER_LINE = re.compile(r"^[ \t*]*answer[ \t*]*:[ \t]*([^\n]*)", re.IGNORECASE | re.MULTILINE)


# ------------------------------------------------------------------------------------------- extraction


def _last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} whose braces close (a truncated box is skipped)."""
    for match in reversed(list(_BOX.finditer(text))):
        depth, start = 1, match.end()
        for position in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                return text[start:position]
    return None


def _last(pattern: re.Pattern, text: str) -> str | None:
    matches = pattern.findall(text)
    return matches[-1] if matches else None


def extract_answer(text: str) -> str | None:
    """The final answer written in `text` (see the module docstring), stripped of $ and a final period."""
    for found in (_last_boxed(text), _last(_HASHES, text), _last(_ANSWER_TAG, text), _last(_ANSWER_LINE, text)):
        if found is not None:
            answer = found.strip().strip("$").strip().rstrip(".").strip()
            return answer or None
    return None


def first_line(text: str) -> str | None:
    """The compact style's answer: the completion up to its first newline."""
    return text.split("\n", 1)[0].strip() or None


# ----------------------------------------------------------------------------------------- worker pool


class _Worker:
    """One verifier subprocess; `job` is the index of the item it is working on (None when idle)."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.started = time.monotonic()
        self.ready = False
        self.job: int | None = None
        self.deadline = float("inf")

    def fileno(self) -> int:  # lets multiprocessing.connection.wait select on the worker's stdout
        return self.process.stdout.fileno()

    def send(self, job: int, request: dict, timeout_s: float) -> bool:
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        self.job, self.deadline = job, time.monotonic() + timeout_s
        return True

    def receive(self) -> dict | None:
        """The next message; None when the process has died. Never blocks long: one line is in flight at
        most (strict request / reply), and a ready pipe holds the whole line (atomic small writes)."""
        line = self.process.stdout.readline()
        return json.loads(line) if line else None

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):  # the pipe broke when the process died
                pipe.close()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.kill()
    workers.clear()


class _Pool:
    """A fixed number of workers; `run` spreads a batch over them with a per-item deadline."""

    def __init__(self, size: int):
        self.workers = [_Worker() for _ in range(size)]
        # Kill the processes when the pool is collected or the interpreter exits (not only on close()).
        self._finalizer = weakref.finalize(self, _kill_all, self.workers)

    def close(self) -> None:
        self._finalizer()

    def run(self, requests: list[dict], timeout_s: float) -> list[dict]:
        results: list[dict | None] = [None] * len(requests)
        queue = deque(range(len(requests)))
        while queue or any(w.job is not None for w in self.workers):
            self._dispatch(queue, requests, timeout_s)
            self._collect(results)
            self._expire(results)
        return results  # type: ignore[return-value]

    def _dispatch(self, queue: deque, requests: list[dict], timeout_s: float) -> None:
        for worker in self.workers:
            if queue and worker.ready and worker.job is None:
                job = queue.popleft()
                if not worker.send(job, requests[job], timeout_s):
                    queue.appendleft(job)  # it died while idle: retry the item on a fresh worker
                    self._replace(worker)

    def _collect(self, results: list) -> None:
        deadlines = [w.deadline for w in self.workers if w.job is not None]
        wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 1.0
        for worker in wait(self.workers, timeout=wait_s):
            message = worker.receive()
            if message is None:
                self._died(worker, results)
            elif message.get("ready"):
                worker.ready = True
            else:
                results[worker.job], worker.job = message, None

    def _died(self, worker: _Worker, results: list) -> None:
        if not worker.ready:  # dying before "ready" is an environment problem: respawning would loop
            raise RuntimeError(
                f"a math-verify worker ({WORKER_SCRIPT.name}) exited while starting; its error is on stderr "
                "(is math-verify installed for this interpreter?)"
            )
        if worker.job is not None:
            results[worker.job] = {"status": "error", "detail": "verifier process died"}
        self._replace(worker)

    def _expire(self, results: list) -> None:
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.job is not None and now >= worker.deadline:
                results[worker.job] = {"status": "timeout", "detail": ""}
                self._replace(worker)  # the only way to stop sympy mid-computation
            elif not worker.ready and now - worker.started > STARTUP_TIMEOUT_S:
                raise RuntimeError(f"a math-verify worker did not start within {STARTUP_TIMEOUT_S:.0f} s")

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers[self.workers.index(worker)] = _Worker()


# --------------------------------------------------------------------------------------------- scorer

_PARTS = {  # worker status -> (format, correct, reason)
    "correct": (1.0, 1.0, None),
    "wrong": (1.0, 0.0, "wrong"),
    "parse_error": (0.0, 0.0, "parse_error"),
    "gold_parse_error": (1.0, 0.0, "gold_parse_error"),
    "timeout": (0.0, 0.0, "timeout"),
    "error": (0.0, 0.0, "verifier_error"),
}


def _result(message: dict, answer: str) -> RewardResult:
    format_ok, correct, reason = _PARTS[message["status"]]
    if reason and message.get("detail"):
        reason = f"{reason}: {message['detail']}"
    return RewardResult(correct, {"format": format_ok, "correct": correct}, reason=reason, extracted=answer)


class MathVerifyScorer:
    """Scores extracted answers against gold answers with math-verify, `workers` at a time, each item
    bounded by `timeout_s` of wall-clock time. Thread-safe (one batch at a time); processes start lazily
    on the first batch and are killed by `close()`, on garbage collection, or at interpreter exit."""

    def __init__(self, timeout_s: float = 5.0, workers: int = 4):
        if not timeout_s > 0:
            raise LadkitError(f"reward_timeout_s must be > 0, got {timeout_s}")
        if workers < 1:
            raise LadkitError(f"reward_workers must be >= 1 (math-verify runs in worker processes), got {workers}")
        self.timeout_s, self.workers = float(timeout_s), workers
        self._pool: _Pool | None = None
        self._lock = threading.Lock()

    def score(self, answers: Sequence[str | None], golds: Sequence[object]) -> list[RewardResult]:
        """RewardResult per (answer, gold); an answer of None (nothing extracted) is "no_answer"."""
        results: list[RewardResult | None] = [None] * len(answers)
        requests, positions = [], []
        for i, (answer, gold) in enumerate(zip(answers, golds, strict=True)):
            if answer is None:
                results[i] = RewardResult(0.0, {"format": 0.0, "correct": 0.0}, reason="no_answer")
            elif len(answer) > MAX_ANSWER_CHARS:
                reason = f"parse_error: answer longer than {MAX_ANSWER_CHARS} characters"
                results[i] = RewardResult(0.0, {"format": 0.0, "correct": 0.0}, reason=reason)
            else:
                requests.append({"gold": str(gold), "answer": answer})
                positions.append(i)
        if requests:
            for i, message in zip(positions, self._run(requests)):
                results[i] = _result(message, answers[i])
        return results  # type: ignore[return-value]

    def _run(self, requests: list[dict]) -> list[dict]:
        with self._lock:
            if self._pool is None:
                self._pool = _Pool(self.workers)
            return self._pool.run(requests, self.timeout_s)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def __enter__(self) -> MathVerifyScorer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
