"""benchmarks/trl_compare.py without training: the reward of the BPE geometries, the per-geometry summary
(per-round ratios, their median and bootstrap interval), the sweep's minimum / median / maximum with their
geometries, the memory record, and the record keys (the environment no longer overwrites the TRL side)."""

from __future__ import annotations

import pytest
from benchmark_scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("trl_compare")


def test_letter_share(bench):
    assert bench.letter_share("ab12", None) == 0.5  # 2 letters of 4 characters
    assert bench.letter_share("", None) == 0.0  # no characters: 0, not a division by zero
    assert bench.letter_share("é!", None) == 0.0  # ASCII letters only


def raw(ladkit_s: list[float], trl_s: list[float]) -> dict:
    step = {"tokens": 100, "completion_length": 8.0, "reward": 0.5}
    memory = {"rss_train_start_mb": 400.0, "peak_rss_mb": 500.0, "train_growth_mb": 40.0}
    return {
        "ladkit": {"steps": [{"step_s": s, **step} for s in ladkit_s], **memory},
        "trl": {"steps": [{"step_s": s, **step} for s in trl_s], **memory},
    }


def test_summary_is_the_median_of_per_round_ratios(bench):
    geometry = bench.Geometry("char", True, 2, 8, 16, 1)
    # rounds: 2/1 = 2, 3/1 = 3, 1/1 = 1, 4/2 = 2, 2/0.5 = 4 -> median 2 (not median(trl) / median(ladkit) = 2/1)
    out = bench.summarise(geometry, raw([1, 1, 1, 2, 0.5], [2, 3, 1, 4, 2]), bootstrap=500)
    assert out["name"] == "char-lora-B2-G8-T16-mb1"
    assert out["ratio"]["median"] == 2.0 and out["ratio"]["per_round_min_max"] == [1.0, 4.0]
    low, high = out["ratio"]["ci90"]
    assert 1.0 <= low <= 2.0 <= high <= 4.0  # resampled medians stay within the rounds' ratios
    assert out["ladkit"]["step_s_median"] == 1.0 and out["trl"]["step_s_median"] == 2.0
    assert out["trl"]["train_growth_mb"] == 40.0  # the memory record is carried per side


def test_sweep_summary_names_the_geometry_of_each_extreme(bench):
    results = [
        {"name": name, "ratio": {"median": r, "ci90": [r - 0.1, r + 0.1]}}
        for name, r in (("a", 1.1), ("b", 2.5), ("c", 1.6), ("d", 1.4), ("e", 3.0))
    ]
    sweep = bench.sweep_summary(results)
    assert (sweep["min"]["geometry"], sweep["min"]["ratio"]) == ("a", 1.1)
    assert (sweep["median"]["geometry"], sweep["median"]["ratio"]) == ("c", 1.6)  # 1.1 1.4 [1.6] 2.5 3.0
    assert (sweep["max"]["geometry"], sweep["max"]["ratio"]) == ("e", 3.0)
    assert sweep["geometries_at_or_above_1.3x"] == 4 and sweep["geometries"] == 5


def test_sweep_covers_the_issue_ranges(bench):
    """Prompts 2..16, completion length 16..128, 1 and 2 mini-batches, LoRA and full, both vocabularies."""
    sweep = bench.SWEEP
    assert {g.prompts for g in sweep} >= {2, 16} and {g.max_new_tokens for g in sweep} >= {16, 128}
    assert {g.mini_batches for g in sweep} == {1, 2} and {g.lora for g in sweep} == {True, False}
    assert {g.model for g in sweep} == {"char", "bpe"} and len({g.group_size for g in sweep}) >= 3
    assert len({g.name for g in sweep}) == len(sweep)


def test_memory_growth_counts_training_not_start_up(bench):
    import mmap

    memory = bench.Memory()
    memory.start()
    # 64 MiB of fresh anonymous pages, each written: resident whatever the allocator kept from earlier tests (a
    # numpy array can reuse freed memory that is still resident, and then RSS does not grow)
    size = 64 * 1024 * 1024
    block = mmap.mmap(-1, size)
    block.write(b"\x01" * size)
    record = memory.record()
    block.close()
    assert record["train_growth_mb"] >= 60  # the peak after the start, minus the start
    assert record["peak_rss_mb"] >= record["rss_train_start_mb"] + 60
