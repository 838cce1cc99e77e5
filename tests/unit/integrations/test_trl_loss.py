"""LadkitGRPOTrainer's loss inside TRL equals ladkit.objectives.objective_loss on identical float64 tensors.

TRL's model forward (`_get_per_token_logps_and_entropies`) is replaced so it returns the given log-probs; the
rest of `_compute_loss` (pi_old choice, gradient-accumulation and dapo scaling, metric logging) is the
integration's. Compared: the scalar loss and its gradient w.r.t. the log-probs, to 1e-12.
"""

from __future__ import annotations

import tempfile

import pytest
import torch

pytest.importorskip("trl", reason="trl is not installed (bench/dev extra)")

from ladkit.errors import LadkitError  # noqa: E402
from ladkit.objectives import FlowRLConfig, GRPOConfig, LADConfig, objective_loss  # noqa: E402

torch.set_num_threads(1)
F64 = torch.float64
N, T, MAX_LENGTH = 8, 6, 10  # [N, T]; T < max_completion_length so dr_grpo's constant is not T


def _trainer(**overrides):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig as TRLConfig

    from ladkit.integrations.trl import LadkitGRPOTrainer
    from ladkit.models.loading import resolve_model_path

    path = resolve_model_path("builtin")
    options = dict(objective="lad", objective_config=LADConfig())
    options.update({k: overrides.pop(k) for k in list(overrides) if k.startswith("objective")})
    with tempfile.TemporaryDirectory() as out_dir:
        args = TRLConfig(
            output_dir=out_dir,
            per_device_train_batch_size=N,
            num_generations=4,
            max_completion_length=MAX_LENGTH,
            steps_per_generation=2,
            bf16=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            **{"beta": 0.0, **overrides},
        )
        return LadkitGRPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(path),
            reward_funcs=lambda completions, **_: [0.0] * N,
            args=args,
            train_dataset=Dataset.from_list([{"prompt": "1,2->3:"}] * N),
            processing_class=AutoTokenizer.from_pretrained(path),
            **options,
        )


@pytest.fixture(scope="module")
def trainer():
    trainer = _trainer()
    trainer.model.train()
    return trainer


def _batch(seed: int):
    gen = torch.Generator().manual_seed(seed)
    old = -3.0 * torch.rand(N, T, generator=gen, dtype=F64)  # [N, T]
    logprobs = old + 0.3 * torch.randn(N, T, generator=gen, dtype=F64)  # [N, T] ratios around 1
    advantages = torch.randn(N, generator=gen, dtype=F64)  # [N]
    mask = torch.arange(T)[None, :] < torch.randint(1, T + 1, (N,), generator=gen)[:, None]  # [N, T] ragged
    return logprobs, old, advantages, mask


def _inside_trl(trainer, logprobs, old, advantages, mask, accumulation=1, generation_tokens=None):
    """TRL's _compute_loss with the forward returning `logprobs`: (loss, gradient w.r.t. logprobs)."""
    leaf = logprobs.clone().requires_grad_()
    trainer._get_per_token_logps_and_entropies = lambda *_, **__: (leaf, torch.rand(N, T, dtype=F64), None)
    trainer.current_gradient_accumulation_steps = accumulation
    ids = torch.ones(N, T, dtype=torch.long)
    inputs = {
        "prompt_ids": ids[:, :3],
        "prompt_mask": torch.ones(N, 3, dtype=torch.long),
        "completion_ids": ids,
        "completion_mask": mask.long(),
        "advantages": advantages,
        "num_items_in_batch": generation_tokens if generation_tokens is not None else mask.sum(),
        **({"old_per_token_logps": old} if old is not None else {}),
    }
    loss = trainer._compute_loss(trainer.model, inputs)
    return loss.detach(), torch.autograd.grad(loss, leaf)[0]


def _ladkit(name, config, logprobs, old, advantages, mask, **kwargs):
    leaf = logprobs.clone().requires_grad_()
    old = leaf.detach() if old is None else old
    loss, _ = objective_loss(name, config, leaf, old, advantages, mask, max_completion_length=MAX_LENGTH, **kwargs)
    return loss.detach(), torch.autograd.grad(loss, leaf)[0]


def _assert_close(got, want):
    assert abs(float(got[0] - want[0])) <= 1e-12
    assert float((got[1] - want[1]).abs().max()) <= 1e-12
    assert float(want[1].abs().max()) > 1e-3  # the gradient is not trivially zero


@pytest.mark.parametrize("divergence", ["js", "kl", "rkl", "tv", "hd", "jf"])
@pytest.mark.parametrize("level", ["sequence", "token"])
def test_lad_loss_and_gradient_equal_objective_loss(trainer, divergence, level):
    config = LADConfig(divergence=divergence, level=level, inv_eta=2.5)
    trainer.objective, trainer.objective_config, trainer.needs = (
        "lad",
        config,
        trainer.needs.__class__(level, "grpo" if level == "token" else None),
    )
    batch = _batch(seed=len(divergence) + (level == "token"))
    _assert_close(_inside_trl(trainer, *batch), _ladkit("lad", config, *batch))


@pytest.mark.parametrize("aggregation", ["grpo", "bnpo", "dr_grpo"])
def test_token_aggregation_divides_by_gradient_accumulation(trainer, aggregation):
    # TRL divides the per-micro-batch loss by its accumulation steps (grpo, bnpo, dr_grpo): so must we
    from ladkit.integrations.trl import objective_needs

    config = LADConfig(divergence="hd", level="token", aggregation=aggregation, eta=0.7, centered=False)
    trainer.objective = "lad"
    trainer.objective_config, trainer.needs = objective_needs("lad", config)
    batch = _batch(seed=11)
    loss, grad = _ladkit("lad", config, *batch)
    _assert_close(_inside_trl(trainer, *batch, accumulation=2), (loss / 2, grad / 2))


def test_dapo_normalises_by_the_accumulation_window_tokens(trainer):
    # TRL's dapo: num_items_in_batch (tokens of the whole generation batch, all processes) / processes
    # * accumulation steps / steps_per_generation. Here 3 * tokens, 1 process, accumulation 4, 2 per
    # generation: 3 * tokens * 4 / 2 = 6 * tokens, and no further division by the accumulation steps.
    from ladkit.integrations.trl import objective_needs

    config = LADConfig(divergence="js", level="token", aggregation="dapo")
    trainer.objective = "lad"
    trainer.objective_config, trainer.needs = objective_needs("lad", config)
    logprobs, old, advantages, mask = _batch(seed=12)
    tokens = mask.sum()
    got = _inside_trl(trainer, logprobs, old, advantages, mask, accumulation=4, generation_tokens=3 * tokens)
    _assert_close(got, _ladkit("lad", config, logprobs, old, advantages, mask, num_tokens=float(6 * tokens)))


def test_without_old_logprobs_pi_old_is_the_detached_forward(trainer):
    # TRL drops old_per_token_logps when the generation batch fits one optimiser step: ratio 1 everywhere,
    # and LAD's gradient is then -exp(u) f'(exp(-u)) per sample, still nonzero
    from ladkit.integrations.trl import objective_needs

    config = LADConfig(divergence="js")
    trainer.objective = "lad"
    trainer.objective_config, trainer.needs = objective_needs("lad", config)
    logprobs, _, advantages, mask = _batch(seed=13)
    _assert_close(
        _inside_trl(trainer, logprobs, None, advantages, mask), _ladkit("lad", config, logprobs, None, advantages, mask)
    )
    assert trainer._metrics["train"]["ratio/mean"][-1] == pytest.approx(1.0, abs=1e-12)


def test_grpo_objective_and_metrics_logged(trainer):
    from ladkit.integrations.trl import objective_needs

    config = GRPOConfig(epsilon_low=0.2, epsilon_high=0.28)
    trainer.objective = "grpo"
    trainer.objective_config, trainer.needs = objective_needs("grpo", config)
    batch = _batch(seed=14)
    _assert_close(_inside_trl(trainer, *batch), _ladkit("grpo", config, *batch))
    assert trainer._metrics["train"]["grpo/clip_frac"][-1] > 0.05  # the clip binds on these ratios


def test_flowrl_is_a_one_line_error_naming_ladkits_trainer():
    from ladkit.integrations.trl import objective_needs

    with pytest.raises(LadkitError, match="flowrl needs ladkit's trainer"):
        objective_needs("flowrl", FlowRLConfig())


def test_other_trl_versions_are_refused_by_name():
    from ladkit.integrations.trl import check_trl_version

    check_trl_version("1.16.3")
    with pytest.raises(LadkitError, match=r"supports trl 1\.16\.x.*trl 1\.17\.0 is installed"):
        check_trl_version("1.17.0")


def test_trl_loss_options_that_would_be_ignored_are_errors():
    with pytest.raises(LadkitError, match="GRPOConfig.beta"):
        _trainer(beta=0.04)
    with pytest.raises(LadkitError, match="GRPOConfig.importance_sampling_level"):
        _trainer(importance_sampling_level="sequence")
    with pytest.raises(LadkitError, match="GRPOConfig.entropy_coef"):
        _trainer(entropy_coef=0.01)


@pytest.mark.parametrize("vllm_mode", ["colocate", "server"])
def test_vllm_modes_pass_through_and_refuse_the_token_is_correction(vllm_mode):
    # TRL's vLLM options reach TRL untouched; its default token-level importance-sampling correction would be
    # dropped by ladkit's loss, so it is refused before TRL starts (or connects to) a vLLM engine
    with pytest.raises(LadkitError, match="vllm_importance_sampling_correction=False"):
        _trainer(use_vllm=True, vllm_mode=vllm_mode)
