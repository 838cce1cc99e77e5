"""The stateless prompt order: same prompts for a step whatever the history, epochs covered exactly once."""

import pytest

from ladkit.errors import LadkitError
from ladkit.training.data import sample_seed, shard, step_indices


def test_each_epoch_visits_every_example_once():
    # 10 examples, 4 per step: steps 0-4 cover positions 0..19 = exactly two epochs
    seen = [i for step in range(5) for i in step_indices(10, 4, seed=3, step=step)]
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))


def test_step_crossing_an_epoch_boundary_is_the_same_after_resume():
    # step 2 spans positions 8..11: the last 2 of epoch 0 and the first 2 of epoch 1
    straight = [step_indices(10, 4, seed=1, step=s) for s in range(4)]
    resumed = step_indices(10, 4, seed=1, step=2)  # computed fresh, as after --resume
    assert resumed == straight[2]
    assert len(set(straight[2])) >= 2


def test_seed_changes_the_order():
    assert step_indices(50, 8, seed=0, step=0) != step_indices(50, 8, seed=1, step=0)


def test_batch_larger_than_dataset_wraps_epochs():
    indices = step_indices(3, 7, seed=0, step=0)
    assert len(indices) == 7 and set(indices) == {0, 1, 2}


def test_shard_is_contiguous_and_checks_divisibility():
    assert shard(list(range(8)), 1, 2) == [4, 5, 6, 7]
    with pytest.raises(LadkitError, match="divisible by the number of processes"):
        shard(list(range(7)), 0, 2)


def test_sample_seed_depends_on_global_prompt_index_only():
    assert sample_seed(0, 5, 3) == sample_seed(0, 5, 3)
    assert len({sample_seed(0, 5, i) for i in range(100)}) == 100


def test_empty_task_is_an_error():
    with pytest.raises(LadkitError, match="no training examples"):
        step_indices(0, 4, seed=0, step=0)
