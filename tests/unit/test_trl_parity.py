"""Loss parity with TRL: ladkit's GRPO objective (ladkit.objectives, aggregation as TRL's `loss_type`) against
TRL's own GRPOTrainer._compute_loss on identical float32 tensors, per loss type, clip on/off, with and without
the k3 KL term. The harness lives in benchmarks/trl_parity.py (`parity_case`); benchmarks/trl_compare.py also
reports these differences in benchmarks/results/trl_compare.json. It replaces only TRL's model forward
(`_get_per_token_logps_and_entropies`) so that it returns the given log-probs.

trl is in the dev extra (pyproject.toml), so CI runs this; without trl installed the test is skipped.
"""

from __future__ import annotations

import pytest
import torch
from benchmark_scripts import load_script

pytest.importorskip("trl", reason="trl is not installed (it is in the dev extra: pip install -e '.[dev]')")

torch.set_num_threads(1)


BENCHMARK = load_script("trl_parity")


@pytest.mark.parametrize(("loss_type", "clip", "beta"), BENCHMARK.PARITY_CASES)
def test_grpo_loss_and_gradient_match_trl(loss_type: str, clip: bool, beta: float):
    diffs = BENCHMARK.parity_case(loss_type, clip, beta)
    # The clip must actually bind when on (log-ratios ~ N(0, 0.3^2) put many tokens past 0.8 / 1.28), else
    # the check would not cover it; off (eps_low = 1, eps_high = inf) it never binds.
    assert (diffs["clip_frac"] > 0.1) if clip else (diffs["clip_frac"] == 0.0)
    assert diffs["loss_abs_diff"] <= 1e-6
    assert diffs["grad_max_abs_diff"] <= 1e-6
    assert diffs["clip_frac_abs_diff"] <= 1e-6
