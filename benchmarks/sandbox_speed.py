"""Benchmark: sandboxed test executions per second, and the cost of one execution over a bare interpreter.

Measures, for a trivial program (`print(int(input()) + 1)` against one stdin/stdout test):
  bare        median wall time of `python -c pass` as a plain subprocess (the floor any process-per-test
              runner pays)
  sandboxed   median wall time of one `execute()` (directory, bubblewrap's namespaces or the fallback,
              launcher, uid switch, memory polling, cleanup)
  throughput  test executions per second through `run_batch` with `--workers` threads
Prints a JSON line; record it in docs/benchmarks.md with the machine. `LADKIT_SANDBOX=fallback` measures
the fallback confinement instead of bubblewrap (the `boundary` key says which ran).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench_env import environment  # benchmarks/bench_env.py (the script's own folder is on sys.path)

from ladkit.sandbox import Limits, boundary, execute, run_batch

PROGRAM = "print(int(input()) + 1)\n"


def bare_s(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sandboxed_s(repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        assert execute(PROGRAM, "41", Limits()).stdout == "42\n"
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(executions: int, workers: int) -> float:
    programs = [(PROGRAM, [{"input": str(i), "output": str(i + 1)}]) for i in range(executions)]
    start = time.perf_counter()
    results = run_batch(programs, Limits(), workers)
    elapsed = time.perf_counter() - start
    assert all(tests[0].passed for tests in results)
    return executions / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs per median")
    parser.add_argument("--executions", type=int, default=200, help="executions in the throughput batch")
    parser.add_argument("--workers", type=int, default=4, help="pool size for the throughput batch")
    args = parser.parse_args()
    bare, boxed = bare_s(args.repeats), sandboxed_s(args.repeats)
    report = {
        "bare_python_ms": round(1000 * bare, 1),
        "sandboxed_execution_ms": round(1000 * boxed, 1),
        "overhead_ms": round(1000 * (boxed - bare), 1),
        "executions_per_s": round(throughput(args.executions, args.workers), 1),
        "workers": args.workers,
        "as_root": os.geteuid() == 0,
        "boundary": boundary.mode(),
        **environment(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
