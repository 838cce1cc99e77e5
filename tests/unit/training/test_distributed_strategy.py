"""distributed.strategy: validated in the config, and a no-op in one process (the 2-process FSDP run is
tests/integration/test_train_fsdp.py)."""

import pytest
import torch

from ladkit.errors import LadkitError
from ladkit.training import distributed
from ladkit.training.config import DistributedConfig, TrainConfig


def test_strategy_is_validated_with_a_one_line_error():
    assert DistributedConfig().strategy == "ddp"
    with pytest.raises(LadkitError, match="distributed.strategy must be 'ddp' or 'fsdp', got 'zero3'"):
        DistributedConfig(strategy="zero3")


def test_fsdp_refuses_an_objective_with_extra_heads():
    TrainConfig(objective="grpo", distributed=DistributedConfig("fsdp"))  # no heads: fine
    with pytest.raises(LadkitError, match="fsdp does not shard flowrl's extra heads"):
        TrainConfig(objective="flowrl", distributed=DistributedConfig("fsdp"))


def test_fsdp_takes_the_vllm_backend():
    # each process runs its own engine, synced from the gathered model (tests/integration/test_train_fsdp.py)
    from ladkit.training.config import RolloutConfig

    config = TrainConfig(rollout=RolloutConfig(backend="vllm"), distributed=DistributedConfig("fsdp"))
    assert (config.rollout.backend, config.distributed.strategy) == ("vllm", "fsdp")


def test_one_process_is_left_alone():
    model, alone = torch.nn.Linear(2, 2), distributed.DistInfo()
    assert distributed.shard(model, alone, "fsdp") is model and not distributed.is_sharded(model)
    assert distributed.wrap(model, alone, "fsdp") is model
    distributed.unshard(model), distributed.reshard(model)  # nothing to gather
    assert distributed.agreed_max(7, model) == 7
    assert type(model.weight) is torch.nn.Parameter
