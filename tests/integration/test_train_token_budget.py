"""End to end: a run with one-row micro-batches (optim.micro_batch_tokens=1) and static-cache decoding
(rollout.hf_decode=static) ends with the default run's adapter: neither knob changes what is trained."""

import torch
from test_train_builtin import small_config

from ladkit.training.loop import train


def test_token_budget_and_static_decode_do_not_change_the_result(tmp_path):
    from safetensors.torch import load_file

    runs = {}
    for name, overrides in {
        "default": {},
        "budget": {"optim.micro_batch_tokens": 1, "rollout.hf_decode": "static"},
    }.items():
        run = tmp_path / name
        train(small_config(steps=2, eval_every=0, tracked_prompts=0, **overrides), run)
        runs[name] = load_file(run / "checkpoints/step_000001/policy/adapter_model.safetensors")
    # float32 rounding of other batch shapes, through Adam: measured <= 4.3e-6; a step moves a weight by up to
    # lr = 5e-4, so a wrong micro-batch weight or a different sample would be far outside 1e-5.
    for key, value in runs["default"].items():
        torch.testing.assert_close(runs["budget"][key], value, atol=1e-5, rtol=1e-4)
