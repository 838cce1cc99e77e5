"""End-to-end training on the built-in policy: run folder, checkpoints, resume, every objective, vLLM."""

import json
import os

import pytest
import torch

from ladkit.config import build, to_dict
from ladkit.training.config import TrainConfig
from ladkit.training.loop import train
from ladkit.training.resolve import resolve

SMALL = {"steps": 4, "prompts_per_step": 4, "group_size": 4, "eval_every": 2, "checkpoint_every": 2, "eval_samples": 2}
TASK = {"name": "countdown", "train_size": 64, "eval_size": 8}


def small_config(**overrides) -> TrainConfig:
    data = to_dict(resolve(None, [], {}))
    data.update(SMALL, task={**data["task"], **TASK})
    for key, value in overrides.items():
        section, _, leaf = key.partition(".")
        if leaf:
            data[section][leaf] = value
        else:
            data[key] = value
    return build(TrainConfig, data)


def rows_of(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_default_preset_is_the_builtin_lad_run():
    config = resolve(None, [], {})
    assert config.model.name_or_path == "builtin" and config.model.lora
    assert (config.objective, config.lad.divergence, config.rollout.backend) == ("lad", "js", "hf")
    assert resolve(None, [], {"lad.divergence": "kl"}).lad.divergence == "kl"


def test_short_run_writes_a_complete_run_folder(tmp_path):
    run = tmp_path / "run"
    summary = train(small_config(), run)
    assert {p.name for p in run.iterdir()} >= {"config.yaml", "meta.json", "metrics.jsonl", "samples", "checkpoints"}
    assert json.loads((run / "meta.json").read_text())["status"] == "completed"
    rows = rows_of(run)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]  # 4 training rows + the final evaluation
    assert "eval/pass@1" in rows[0] and "eval/pass@1" in rows[2] and "eval/pass@1" in rows[4]
    for key in (
        "reward/mean",
        "reward/correct",
        "policy/entropy",
        "rollout/logprob_diff",
        "lad/weight_mean",
        "optim/grad_norm",
    ):
        assert key in rows[1], key
    assert rows[1]["rollout/logprob_diff"] < 1e-4  # the sampler and the trainer agree on log-probs
    for row in rows[:4]:  # the phases are disjoint parts of the step (scoring, metrics, tracking make up the rest)
        step, rollout, update = row["perf/step_time_s"], row["perf/rollout_time_s"], row["perf/update_time_s"]
        assert rollout > 0 and update > 0 and rollout + update < step, (step, rollout, update)
    sample = json.loads((run / "samples/step_000000.jsonl").read_text().splitlines()[0])
    assert set(sample) >= {"prompt", "completion", "reward", "parts", "advantage", "length", "finish_reason"}
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000001", "step_000003"]
    assert summary["eval_final"] and summary["reward_first"] == rows[0]["reward/mean"]


def test_checkpoint_adapter_loads_with_peft(tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from ladkit.models.builtin import builtin_model_path

    run = tmp_path / "run"
    train(small_config(steps=2, checkpoint_every=2), run)
    adapter = run / "checkpoints/step_000001/policy"
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(builtin_model_path()), adapter)
    saved = load_file(adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in saved.items() if "lora_B" in k]
    assert lora_b and max(float(v.abs().max()) for v in lora_b) > 0  # trained (B starts at 0)
    out = model(torch.tensor([[5, 6, 7]])).logits
    assert torch.isfinite(out).all()


class StopError(Exception):
    pass


def test_resume_continues_exactly(tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train(small_config(), straight)

    def crash(step, row, ctx):
        if step == 2:  # after step 2 is logged, before its checkpoint (every 2 steps: after steps 1 and 3)
            raise StopError

    with pytest.raises(StopError):
        train(small_config(), broken, callbacks=[crash])
    assert json.loads((broken / "meta.json").read_text())["status"] == "failed"
    train(small_config(), broken, resume=True)
    a, b = rows_of(straight), rows_of(broken)
    assert [r["step"] for r in b] == [0, 1, 2, 3, 4]  # no duplicated, no missing row
    for row_a, row_b in zip(a, b):
        for key, value in row_a.items():
            if not key.startswith("perf/"):
                assert row_b[key] == pytest.approx(value, rel=1e-5, abs=1e-6), (row_a["step"], key)
    from safetensors.torch import load_file

    wa = load_file(straight / "checkpoints/step_000003/policy/adapter_model.safetensors")
    wb = load_file(broken / "checkpoints/step_000003/policy/adapter_model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    assert json.loads((broken / "meta.json").read_text())["resumed"] == 1
    # Per-prompt eval records (what compare pairs across runs): evals at steps 0, 2 and the final 4, 8 held-out
    # prompts each; the crashed step's records are not duplicated by the resume.
    prompts = {
        run: [json.loads(line) for line in (run / "eval_prompts.jsonl").read_text().splitlines()]
        for run in (straight, broken)
    }
    assert prompts[broken] == prompts[straight] and len(prompts[straight]) == 3 * 8
    assert sorted({r["step"] for r in prompts[straight]}) == [0, 2, 4]
    final = [r for r in prompts[straight] if r["step"] == 4]
    assert all(0 <= r["correct"] <= r["n"] == 2 for r in final) and len({r["example_id"] for r in final}) == 8
    # pass@1 is the mean over prompts of correct / n: the records add up to the logged metric
    assert a[-1]["eval/pass@1"] == pytest.approx(sum(r["correct"] / r["n"] for r in final) / 8)


@pytest.mark.parametrize("objective", ["grpo", "flowrl"])
def test_other_objectives_train(objective, tmp_path):
    run = tmp_path / objective
    train(small_config(objective=objective, steps=2, eval_every=0), run)
    rows = rows_of(run)
    key = {"grpo": "grpo/clip_frac", "flowrl": "flowrl/residual_abs"}[objective]
    assert key in rows[0] and all(torch.isfinite(torch.tensor(r["loss/value"])) for r in rows[:2])
    if objective == "flowrl":
        state = torch.load(run / "checkpoints/step_000001/trainer_state.pt", weights_only=True)
        assert any(k.startswith("module.log_z") for k in state)


def test_grpo_with_kl_to_the_adapter_free_reference(tmp_path):
    run = tmp_path / "kl"
    train(small_config(objective="grpo", steps=2, eval_every=0, **{"grpo.beta": 0.1}), run)
    rows = rows_of(run)
    # step 0's first mini-batch sees LoRA B = 0 (policy == reference, KL exactly 0), its second one a policy
    # moved by one update: the logged mean is tiny but positive, and it grows as training moves on
    assert 0 < rows[0]["kl/ref_k3"] < 1e-3
    assert rows[1]["kl/ref_k3"] > rows[0]["kl/ref_k3"]


@pytest.mark.vllm
@pytest.mark.parametrize("sync", ["adapter", "merged"])
def test_vllm_backend_trains(tmp_path, sync):
    pytest.importorskip("vllm")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    run = tmp_path / f"vllm-{sync}"
    overrides = {"rollout.backend": "vllm", "rollout.vllm_lora_sync": sync}
    train(small_config(objective="grpo", steps=2, eval_every=0, **overrides), run)
    rows = rows_of(run)
    assert rows[1]["rollout/logprob_diff"] < 1e-3  # the synced adapter (or its merge) is what vLLM samples from


def test_tensorboard_sink(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "tb"
    train(small_config(steps=1, eval_every=0, tensorboard=True), run)
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_gradient_accumulation_does_not_change_the_result(tmp_path):
    from safetensors.torch import load_file

    runs = {}
    for accumulation in (1, 2):
        run = tmp_path / f"ga{accumulation}"
        train(small_config(steps=2, eval_every=0, **{"optim.grad_accumulation": accumulation}), run)
        runs[accumulation] = load_file(run / "checkpoints/step_000001/policy/adapter_model.safetensors")
    assert all(torch.allclose(runs[1][k], runs[2][k], atol=1e-6) for k in runs[1])


@pytest.mark.parametrize("backend", ["hf", pytest.param("vllm", marks=pytest.mark.vllm)])
def test_full_fine_tuning_without_lora(backend, tmp_path):
    if backend == "vllm":
        pytest.importorskip("vllm")
    run = tmp_path / f"full-{backend}"
    overrides = {"model.lora": False, "optim.lr": 1e-4, "rollout.backend": backend}
    train(small_config(steps=2, eval_every=0, **overrides), run)
    rows = rows_of(run)
    assert rows[1]["rollout/logprob_diff"] < 1e-3  # the rollout engine samples from the updated full weights
    assert any(p.name == "model.safetensors" for p in (run / "checkpoints/step_000001/policy").iterdir())


def test_a_callback_can_stop_training_cleanly(tmp_path):
    from ladkit.training.loop import StopTraining

    def stop(step, row, ctx):
        if step == 1:
            raise StopTraining

    run = tmp_path / "stopped"
    summary = train(small_config(checkpoint_every=0), run, callbacks=[stop])
    assert summary["status"] == "stopped"
    assert json.loads((run / "meta.json").read_text())["status"] == "stopped"
    assert [r["step"] for r in rows_of(run)] == [0, 1, 2]  # two steps, then the final evaluation
    assert (run / "checkpoints/step_000001").is_dir()  # the last step trained is saved


def test_pi_old_from_the_first_optimiser_step_matches_a_full_recompute(tmp_path, monkeypatch):
    # Without dropout, the first mini-batch's pi_old is its own forward, detached (no update has happened yet),
    # so a step recomputes only the other mini-batches. The run must be the one a full recompute gives, up to
    # float rounding; with dropout (deterministic_forward False) every row is recomputed.
    from safetensors.torch import load_file

    from ladkit.training import loop

    skipped: list[int] = []
    recompute = loop.recompute

    def spy(*args, skip=None, **kwargs):
        skipped.append(0 if skip is None else len(skip))
        return recompute(*args, skip=skip, **kwargs)

    monkeypatch.setattr(loop, "recompute", spy)
    runs = {}
    for reuse in (True, False):
        monkeypatch.setattr(loop, "deterministic_forward", lambda model, reuse=reuse: reuse)
        run = tmp_path / f"reuse-{reuse}"
        train(small_config(steps=2, eval_every=0, mini_batches=2), run)
        runs[reuse] = (load_file(run / "checkpoints/step_000001/policy/adapter_model.safetensors"), rows_of(run))
    # 4 prompts x 4 samples in 2 mini-batches: 8 rows of each step come from the update's first forward.
    assert skipped == [8, 8, 0, 0]
    weights, rows = runs[True]
    assert all(torch.allclose(weights[k], runs[False][0][k], atol=1e-6) for k in weights)
    steps = [(row, other) for row, other in zip(rows, runs[False][1]) if "policy/entropy" in row]
    assert len(steps) == 2
    for row, other in steps:
        assert row["policy/entropy"] == pytest.approx(other["policy/entropy"], abs=1e-5)
        assert row["rollout/logprob_diff"] == pytest.approx(other["rollout/logprob_diff"], abs=1e-5)
        assert row["rollout/logprob_diff"] < 1e-4  # pi_old agrees with the sampler, filled rows included


def test_dropout_means_a_full_recompute():
    from ladkit.models.builtin import builtin_model_path
    from ladkit.models.loading import ModelConfig, deterministic_forward, load_policy

    model, _ = load_policy(ModelConfig(name_or_path=str(builtin_model_path()), lora_rank=4))
    assert deterministic_forward(model)
    dropped, _ = load_policy(ModelConfig(name_or_path=str(builtin_model_path()), lora_rank=4, lora_dropout=0.1))
    assert not deterministic_forward(dropped)  # LoRA dropout: an nn.Dropout module with p > 0
    model.config.attention_dropout = 0.1  # transformers applies it functionally: only the config shows it
    assert not deterministic_forward(model)


def test_shared_prompt_pass_setting_decides_the_trainers_forwards(tmp_path, monkeypatch):
    # shared_prompt_pass: the same run either way, up to float rounding (other matmul shapes); unset, a CPU
    # shares (one prompt pass per group), and false sends every forward through the full prompt + response.
    from safetensors.torch import load_file

    from ladkit.models import logprobs

    seen: list[bool] = []
    forward = logprobs.response_logit_blocks

    def spy(model, input_ids, attention_mask, width, prompt_index=None, *args):
        seen.append(prompt_index is not None)
        return forward(model, input_ids, attention_mask, width, prompt_index, *args)

    monkeypatch.setattr(logprobs, "response_logit_blocks", spy)
    runs = {}
    for setting in (None, False):
        seen.clear()
        run = tmp_path / f"shared-{setting}"
        train(small_config(steps=2, eval_every=0, mini_batches=2, shared_prompt_pass=setting), run)
        assert seen and all(seen) if setting is None else not any(seen)  # every forward: pi_old, update, tracking
        runs[setting] = (load_file(run / "checkpoints/step_000001/policy/adapter_model.safetensors"), rows_of(run))
    weights, rows = runs[None]
    # 4 Adam steps of lr 5e-4 move each weight by up to ~2e-3; Adam's normalisation blows the rounding of
    # near-zero gradients up to ~1e-5 (measured 8e-6). A forward that differed in maths moves them ~1e-3 apart.
    assert all(torch.allclose(weights[k], runs[False][0][k], atol=5e-5) for k in weights)
    for row, other in zip(rows, runs[False][1]):
        if "policy/entropy" in row:
            assert row["policy/entropy"] == pytest.approx(other["policy/entropy"], abs=1e-5)
            assert row["loss/value"] == pytest.approx(other["loss/value"], abs=1e-5)
