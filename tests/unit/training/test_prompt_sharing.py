"""shared_prompt_pass resolved per device: unset means a CPU shares and a GPU does not; a setting wins."""

import pytest
import torch

from ladkit.config import build
from ladkit.errors import LadkitError
from ladkit.training.config import TrainConfig
from ladkit.training.setup import resolve_shared_prompt_pass


def test_unset_shares_on_a_cpu_only():
    # A GPU forward of a small micro-batch is bound by kernel launches, so the extra prompt pass costs more
    # than the positions it saves (H100 figures in docs/benchmarks.md); a CPU is bound by FLOPs.
    assert resolve_shared_prompt_pass(None, torch.device("cpu")) is True
    assert resolve_shared_prompt_pass(None, torch.device("cuda", 0)) is False


@pytest.mark.parametrize("setting", [True, False])
def test_a_setting_wins_on_every_device(setting):
    for device in (torch.device("cpu"), torch.device("cuda", 0)):
        assert resolve_shared_prompt_pass(setting, device) is setting


def test_the_config_takes_true_false_or_null_and_nothing_else():
    assert build(TrainConfig, {"shared_prompt_pass": True}).shared_prompt_pass is True
    assert build(TrainConfig, {"shared_prompt_pass": None}).shared_prompt_pass is None
    assert build(TrainConfig, {}).shared_prompt_pass is None
    with pytest.raises(LadkitError, match="shared_prompt_pass"):
        build(TrainConfig, {"shared_prompt_pass": "auto"})
