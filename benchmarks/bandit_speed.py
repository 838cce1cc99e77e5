"""Benchmark: wall time of the default bandit run (50 arms, trimodal, 4000 steps, exact, LAD-js + GRPO).

Measures two things, median of `--repeats` runs each:
  train    run_bandit() alone, in a warm process (both objectives, no files, no terminal)
  command  the whole `ladkit bandit --no-live` process (Python + torch start-up, run folder, HTML figure)
Prints a JSON line; record it in docs/benchmarks.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_env import environment  # benchmarks/bench_env.py (the script's own folder is on sys.path)


def time_train(repeats: int) -> list[float]:
    import torch

    from ladkit.bandit.config import BanditConfig
    from ladkit.bandit.experiment import run_bandit

    torch.set_num_threads(1)
    run_bandit(BanditConfig(steps=10))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_bandit(BanditConfig())
        times.append(time.perf_counter() - start)
    return times


def time_command(repeats: int) -> list[float]:
    times = []
    cli = [sys.executable, "-c", "from ladkit_cli.main import main; main()", "bandit", "--no-live"]
    for i in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([*cli, "--run-dir", os.path.join(tmp, f"run{i}")], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    train, command = time_train(args.repeats), time_command(args.repeats)
    print(
        json.dumps(
            {
                "benchmark": "bandit_default",
                "train_s_median": round(statistics.median(train), 3),
                "train_s_all": [round(t, 3) for t in train],
                "command_s_median": round(statistics.median(command), 3),
                "command_s_all": [round(t, 3) for t in command],
                **environment("torch"),
            }
        )
    )


if __name__ == "__main__":
    main()
