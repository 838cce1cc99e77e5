"""Loss parity with TRL (benchmarks issue, point 2): ladkit's objective_loss("grpo") against TRL's
GRPOTrainer._compute_loss on identical tensors (log-probs as a leaf, old and reference log-probs, advantages, a
ragged mask), per loss type, clip on/off, with and without the k3 KL. TRL's use_bias_correction_kl, on by
default, multiplies k3 by the importance ratio; ladkit and classic GRPO do not, so it is off here. Only TRL's
`_get_per_token_logps_and_entropies` (the model forward) is replaced, so it returns the given log-probs.
Compared: the loss, its gradient w.r.t. the log-probs, the clip fractions.

trl_compare.py puts `loss_parity()` in its record; tests/unit/test_trl_parity.py asserts every case.
"""

from __future__ import annotations

import math
import tempfile
import warnings

import torch

CLIP = 0.2
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
PARITY_CASES = [(loss, clip, 0.0) for loss in LOSS_TYPES for clip in (True, False)] + [
    ("grpo", True, 0.04),
    ("dapo", True, 0.04),
]  # (loss type, clip on, KL beta)


def import_trl():
    """trl's GRPOTrainer and GRPOConfig (its import warns about the installed vLLM version, unused here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from trl import GRPOConfig, GRPOTrainer
    return GRPOTrainer, GRPOConfig


def parity_case(loss_type: str, clip: bool, beta: float = 0.0, seed: int = 0) -> dict[str, float]:
    """ladkit's GRPO loss vs TRL's `_compute_loss` on identical float32 tensors: absolute differences of the
    loss, of its gradient w.r.t. the log-probs and of the clip fractions, plus ladkit's clip fraction."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ladkit.models.loading import resolve_model_path
    from ladkit.objectives import GRPOConfig as LadkitGRPO
    from ladkit.objectives import objective_loss

    trainer_cls, config_cls = import_trl()
    n, t, max_length = 16, 12, 16  # [N, T]; T < max_completion_length so dr_grpo's constant is not T
    eps_low, eps_high = (CLIP, 0.28) if clip else (1.0, math.inf)  # off: 1 - 1 = 0 and inf never bind
    gen = torch.Generator().manual_seed(seed)
    old = -3.0 * torch.rand(n, t, generator=gen)  # [N, T]
    logprobs = (old + 0.3 * torch.randn(n, t, generator=gen)).requires_grad_()  # [N, T]; ratios beyond the clip
    ref = old + 0.2 * torch.randn(n, t, generator=gen)  # [N, T]
    advantages = torch.randn(n, generator=gen)  # [N]
    mask = torch.arange(t)[None, :] < torch.randint(1, t + 1, (n,), generator=gen)[:, None]  # [N, T] ragged

    path = resolve_model_path("builtin")
    with tempfile.TemporaryDirectory() as out_dir:
        trl_args = config_cls(
            output_dir=out_dir,
            per_device_train_batch_size=n,
            num_generations=8,
            max_completion_length=max_length,
            loss_type=loss_type,
            epsilon=eps_low,
            epsilon_high=eps_high,
            beta=beta,
            bf16=False,
            gradient_checkpointing=False,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            use_bias_correction_kl=False,  # TRL >= 1.x multiplies k3 by the ratio by default; ladkit's is plain k3
        )
        trainer = trainer_cls(
            model=AutoModelForCausalLM.from_pretrained(path),
            reward_funcs=lambda completions, **_: [0.0] * n,
            args=trl_args,
            train_dataset=Dataset.from_list([{"prompt": "1,2->3:"}] * n),
            processing_class=AutoTokenizer.from_pretrained(path),
        )
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # what its training loop sets with no accumulation
    trainer._get_per_token_logps_and_entropies = lambda *_, **__: (logprobs, torch.zeros(n, t), None)
    ids = torch.ones(n, t, dtype=torch.long)
    inputs = {
        "prompt_ids": ids[:, :4],
        "prompt_mask": torch.ones(n, 4, dtype=torch.long),
        "completion_ids": ids,
        "completion_mask": mask.long(),
        "advantages": advantages,
        "old_per_token_logps": old,
        "num_items_in_batch": mask.sum(),
        **({"ref_per_token_logps": ref} if beta else {}),
    }
    trl_loss = trainer._compute_loss(trainer.model, inputs)
    (trl_grad,) = torch.autograd.grad(trl_loss, logprobs)
    config = LadkitGRPO(epsilon_low=eps_low, epsilon_high=eps_high, beta=beta, aggregation=loss_type)
    loss, metrics = objective_loss(
        "grpo",
        config,
        logprobs,
        old,
        advantages,
        mask,
        ref_logprobs=ref if beta else None,
        max_completion_length=max_length,
        num_tokens=float(mask.sum()),
    )
    (grad,) = torch.autograd.grad(loss, logprobs)
    trl_metrics = trainer._metrics["train"]
    pairs = {"low": "clip_ratio/low_mean", "high": "clip_ratio/high_mean", "": "clip_ratio/region_mean"}
    clip_diff = max(
        abs(float(metrics[f"grpo/clip_frac{'_' + k if k else ''}"]) - trl_metrics[v][-1]) for k, v in pairs.items()
    )
    return {
        "loss_ladkit": float(loss.detach()),
        "loss_abs_diff": abs(float(loss.detach()) - float(trl_loss.detach())),
        "grad_max_abs_diff": float((grad - trl_grad).abs().max()),
        "clip_frac_abs_diff": clip_diff,
        "clip_frac": float(metrics["grpo/clip_frac"]),
    }


def loss_parity() -> dict:
    cases = {}
    for loss_type, clip, beta in PARITY_CASES:
        name = f"{loss_type}/clip_{'on' if clip else 'off'}" + (f"/kl_{beta}" if beta else "")
        cases[name] = {k: float(f"{v:.3g}") for k, v in parity_case(loss_type, clip, beta).items()}
    worst = max(max(c["loss_abs_diff"], c["grad_max_abs_diff"]) for c in cases.values())
    return {"dtype": "float32", "shape": [16, 12], "max_abs_diff": worst, "agree_1e-6": worst <= 1e-6, "cases": cases}
