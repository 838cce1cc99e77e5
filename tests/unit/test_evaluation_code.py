"""`ladkit eval`'s scoring on a code task: pass@k from sandboxed test results, the same way as for maths."""

import json
from pathlib import Path

import pytest

from ladkit.scoring import group_metrics
from ladkit.tasks import TaskConfig, make_task

SOLUTIONS = {
    row["id"]: row["solution"] for row in map(json.loads, Path("data/code/builtin.jsonl").read_text().splitlines())
}


def test_pass_at_k_on_the_builtin_code_task():
    task = make_task(TaskConfig(name="code_builtin", reward_workers=2))
    examples = list(task.eval_examples())
    # two samples per prompt: the reference solution (passes every test) and a program printing a constant
    texts = [[f"```python\n{SOLUTIONS[e.id]}\n```", "print(12345)"] for e in examples]
    flat = task.score([t for row in texts for t in row], [e for e in examples for _ in range(2)])
    results = [flat[2 * i : 2 * i + 2] for i in range(len(examples))]
    assert [r[0].reward for r in results] == [1.0] * len(examples)
    assert all(r[1].reward < 0.5 for r in results)
    metrics = group_metrics(results, texts, ks=[1, 2], with_self_bleu=False)
    # per prompt c = 1 of n = 2: pass@1 = 1 - C(1,1)/C(2,1) = 0.5, pass@2 = 1; avg@2 = 0.5
    assert metrics["eval/pass@1"] == pytest.approx(0.5)
    assert metrics["eval/pass@2"] == pytest.approx(1.0)
    assert metrics["eval/avg@2"] == pytest.approx(0.5)
