"""LAD inside TRL: a GRPOTrainer whose policy loss is ladkit's objective, and a callback writing a ladkit run folder.

    from ladkit.integrations.trl import LadkitGRPOTrainer, LadkitRunCallback
    from ladkit.objectives import LADConfig
    trainer = LadkitGRPOTrainer(model=..., reward_funcs=..., args=trl.GRPOConfig(...), train_dataset=...,
                                objective="lad", objective_config=LADConfig(divergence="js", inv_eta=4.0),
                                callbacks=[LadkitRunCallback("runs/trl-lad-js")])

The one hook is `GRPOTrainer._compute_loss` (TRL 1.16): the policy forward is TRL's own
(`_get_per_token_logps_and_entropies`), the loss is `ladkit.objectives.objective_loss` on TRL's tensors.
Everything else (generation with HF or vLLM colocate/server, rewards, group advantages, peft LoRA, accelerate
DDP/FSDP/DeepSpeed) is TRL's and is configured in trl.GRPOConfig as usual.

pi_old (docs/design.md: fixed over a rollout batch): TRL keeps `old_per_token_logps`, computed once per
generation batch with no gradient, whenever the policy can move before the batch is used up (num_iterations > 1,
or steps_per_generation beyond gradient_accumulation_steps) or vLLM sampled it. Otherwise the whole generation
batch falls inside one optimiser step, the weights have not moved since sampling, and pi_old is exactly the
current forward detached (TRL's own shortcut). Either way pi_old is one fixed tensor per batch.

Aggregation comes from the ladkit config (`aggregation`), not TRL's `loss_type`; TRL's loss-shaping options that
would be silently ignored (beta without a reference-using objective, entropy bonus/mask, off-policy mask, delta,
sequence importance sampling, vLLM importance-sampling correction) are one-line errors instead.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ladkit.errors import LadkitError
from ladkit.integrations import trl_tracking
from ladkit.metrics import dist_n
from ladkit.objectives import OBJECTIVES, Needs, objective_loss
from ladkit.scoring import policy_tokens

SUPPORTED_TRL = ("1.16",)  # major.minor series whose GRPOTrainer internals this module was written against
TESTED_TRL = "1.16.0"
MULTIMODAL_KEYS = (
    "pixel_values", "image_grid_thw", "num_images", "pixel_attention_mask", "spatial_shapes", "num_tiles",
    "image_sizes", "token_type_ids", "mm_token_type_ids", "image_position_ids",
)  # fmt: skip


def check_trl_version(version: str) -> None:
    """A TRL outside the tested series is an error naming the supported ones (its loss internals may differ)."""
    if ".".join(version.split(".")[:2]) not in SUPPORTED_TRL:
        raise LadkitError(
            f"ladkit.integrations.trl supports trl {', '.join(s + '.x' for s in SUPPORTED_TRL)} (tested "
            f"{TESTED_TRL}); trl {version} is installed: pip install 'trl=={TESTED_TRL}'"
        )


def _import_trl():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # trl warns about the installed vLLM version on import
            import trl
            from trl import GRPOTrainer
    except ImportError:
        raise LadkitError("trl is not installed: pip install 'ladkit[trl]' (trl==1.16.0)") from None
    check_trl_version(trl.__version__)
    return GRPOTrainer


GRPOTrainer = _import_trl()


def objective_needs(objective: str, config: Any) -> tuple[Any, Needs]:
    """(config, Needs) for `objective`, or a one-line error for what TRL's trainer cannot carry."""
    entry = OBJECTIVES.get(objective)
    config = config if config is not None else entry.config_cls()
    if not isinstance(config, entry.config_cls):
        raise LadkitError(f"objective_config for {objective!r} must be a {entry.config_cls.__name__}")
    needs = entry.needs_for(config)
    if needs.heads:
        raise LadkitError(
            f"objective {objective!r} trains extra heads ({', '.join(needs.heads)}) that TRL's GRPOTrainer cannot "
            f"carry; {objective} needs ladkit's trainer: ladkit train --objective {objective}"
        )
    if needs.entropy == "grad":
        raise LadkitError(f"objective {objective!r} needs entropy with its gradient; use ladkit's trainer")
    return config, needs


class LadkitGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer with `_compute_loss` replaced by `ladkit.objectives.objective_loss`."""

    def __init__(self, *args, objective: str = "lad", objective_config: Any = None, **kwargs):
        self.objective_config, self.needs = objective_needs(objective, objective_config)
        self.objective = objective
        given = kwargs.get("args", args[2] if len(args) > 2 else None)
        if given is not None:
            check_trl_options(given, self.needs, objective)  # before TRL loads anything (a vLLM engine)
        super().__init__(*args, **kwargs)
        check_trl_options(self.args, self.needs, objective)  # TRL's default GRPOConfig when none was given
        self.ladkit_samples: list[dict[str, Any]] = []  # this generation batch's samples, for LadkitRunCallback
        self.ladkit_rewards: list[float] = []  # this process's rewards of the generation batch
        self.ladkit_pending: trl_tracking.PendingGroup | None = None  # the tracked group (trl_tracking.py)
        self.ladkit_tracking = False  # set by LadkitRunCallback(tracked=True)
        for callback in self.callback_handler.callbacks:
            if isinstance(callback, LadkitRunCallback):
                callback.attach(self)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list) -> torch.Tensor:
        """TRL's rewards (every process's, [N_all, F]); keeps this process's weighted sums for the run folder."""
        per_function = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        start = self.accelerator.process_index * len(prompts)
        weights = self.reward_weights.to(per_function.device).unsqueeze(0)  # [1, F]
        self.ladkit_rewards = (per_function[start : start + len(prompts)] * weights).nansum(dim=1).tolist()  # [B]
        return per_function

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """TRL's generation, plus ladkit's dist-n over each prompt's completions and the samples for the run folder."""
        output = super()._generate_and_score_completions(inputs)
        texts = self.processing_class.batch_decode(
            [ids[mask.bool()] for ids, mask in zip(output["completion_ids"], output["completion_mask"])],
            skip_special_tokens=True,
        )
        prompts = [str(example["prompt"]) for example in inputs]
        mode = "train" if self.model.training else "eval"
        for key, value in group_diversity(prompts, texts, policy_tokens(self.processing_class)).items():
            self._metrics[mode][key].append(value)
        rows = zip(prompts, texts, self.ladkit_rewards, output["advantages"].tolist())
        self.ladkit_samples = [{"prompt": p, "completion": t, "reward": r, "advantage": a} for p, t, r, a in rows]
        if self.ladkit_tracking and mode == "train" and trl_tracking.can_track(self):
            self.ladkit_pending = trl_tracking.track_before(self, output, prompts, texts, self.ladkit_rewards)
        return output

    def _compute_loss(self, model, inputs: dict[str, Any]) -> torch.Tensor:
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([inputs["prompt_ids"], completion_ids], dim=1)  # [B, P + T]
        attention_mask = torch.cat([inputs["prompt_mask"], completion_mask], dim=1)  # [B, P + T]
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]  # [B, T]
        logprobs, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model, input_ids, attention_mask, completion_ids.size(1), compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled, **{key: inputs.get(key) for key in MULTIMODAL_KEYS},
        )  # fmt: skip
        loss, metrics = self.ladkit_loss(logprobs, entropies, inputs, mask)
        mode = "train" if self.model.training else "eval"
        if self.aux_loss_enabled:  # MoE router loss, scaled for accumulation as TRL does
            loss = loss + self.router_aux_loss_coef * aux_loss / self._accumulation(mode)
        self._log_metrics(mode, metrics, entropies, mask)
        return loss

    def ladkit_loss(
        self,
        logprobs: torch.Tensor,  # [B, T] current policy, with gradient
        entropies: torch.Tensor | None,  # [B, T]
        inputs: dict[str, Any],
        mask: torch.Tensor,  # [B, T]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """objective_loss on TRL's tensors, scaled for TRL's gradient accumulation exactly as TRL scales GRPO."""
        mode = "train" if self.model.training else "eval"
        old = inputs.get("old_per_token_logps")  # [B, T] or None: see the module docstring
        old = logprobs.detach() if old is None else old
        advantages = inputs["advantages"]  # [B]
        if advantages.dim() != 1:
            raise LadkitError("LadkitGRPOTrainer takes one advantage per completion ([B]); got token advantages")
        extra = {"entropy": entropies.detach()} if self.needs.entropy == "detached" else {}
        loss, metrics = objective_loss(
            self.objective, self.objective_config, logprobs, old, advantages, mask.bool(),
            ref_logprobs=inputs.get("ref_per_token_logps") if self.needs.reference else None,
            max_completion_length=self.max_completion_length, num_tokens=self._dapo_tokens(inputs, mode), **extra,
        )  # fmt: skip
        if self.needs.aggregation != "dapo":  # dapo's token count already spans the accumulation window
            loss = loss / self._accumulation(mode)
        return loss, metrics

    def _accumulation(self, mode: str) -> float:
        return self.current_gradient_accumulation_steps if mode == "train" else 1.0

    def _dapo_tokens(self, inputs: dict[str, Any], mode: str) -> float | None:
        """Tokens of one optimiser step on this process: TRL's dapo normaliser (the generation batch's token
        count over processes, times accumulation steps per generation batch)."""
        if self.needs.aggregation != "dapo":
            return None
        tokens = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
        if mode == "train":
            tokens = tokens * self.current_gradient_accumulation_steps / self.args.steps_per_generation
        return tokens

    def _log_metrics(self, mode: str, metrics: dict[str, torch.Tensor], entropies, mask) -> None:
        """ladkit's metrics (means over processes) and TRL's `entropy` into TRL's log (averaged per log row)."""
        mask = mask.bool()
        local = torch.stack([torch.where(mask, entropies.detach(), 0.0).sum(), mask.sum().to(entropies.dtype)])
        totals = self.accelerator.reduce(local, reduction="sum")
        self._metrics[mode]["entropy"].append(float(totals[0] / totals[1].clamp(min=1.0)))
        for key, value in sorted(metrics.items()):
            value = torch.as_tensor(value, device=entropies.device).detach().float()
            self._metrics[mode][key].append(float(self.accelerator.gather(value).nanmean()))


def check_trl_options(args, needs: Needs, name: str) -> None:
    """TRL options that shape the loss and would be ignored here: one-line errors naming the fix."""
    problems = {
        "beta": (args.beta != 0.0) != needs.reference,
        "top_entropy_quantile": args.top_entropy_quantile < 1.0,
        "off_policy_mask_threshold": args.off_policy_mask_threshold is not None,
        "entropy_coef": args.entropy_coef != 0.0 or args.use_adaptive_entropy,
        "delta": args.delta is not None,
        "importance_sampling_level": args.importance_sampling_level != "token",
        "vllm_importance_sampling_correction": args.use_vllm and args.vllm_importance_sampling_correction,
    }
    for option, bad in problems.items():
        if bad:
            raise LadkitError(f"GRPOConfig.{option}: {FIXES[option].format(name=name)}")


def group_diversity(prompts: list[str], texts: list[str], tokenize) -> dict[str, float]:
    """ladkit's diversity/dist3 and dist4: dist-n within each prompt's completions, averaged over prompts."""
    groups: dict[str, list[str]] = {}
    for prompt, text in zip(prompts, texts):
        groups.setdefault(prompt, []).append(text)
    return {
        f"diversity/dist{n}": sum(dist_n(group, n, tokenize) for group in groups.values()) / max(len(groups), 1)
        for n in (3, 4)
    }


FIXES = {
    "beta": "{name} takes a reference model only if its config asks (Needs.reference); set beta=0 (LAD needs "
    "none) or, for grpo, set beta>0 in both GRPOConfigs",
    "top_entropy_quantile": "TRL's entropy mask is not part of ladkit's {name}; leave it at 1.0",
    "off_policy_mask_threshold": "TRL's off-policy sequence mask is not part of ladkit's {name}; leave it unset",
    "entropy_coef": "TRL's entropy bonus is not part of ladkit's {name} (LAD needs none); leave it at 0",
    "delta": "TRL's two-sided clip is not part of ladkit's {name}; leave it unset",
    "importance_sampling_level": "set the ratio level in ladkit's config (LADConfig(level='sequence'|'token')), "
    "and leave TRL's at 'token'",
    "vllm_importance_sampling_correction": "ladkit's {name} takes pi_old as TRL's recomputed trainer log-probs; "
    "set vllm_importance_sampling_correction=False (TRL still recomputes pi_old with vLLM)",
}


from ladkit.integrations.trl_callback import LadkitRunCallback  # noqa: E402  (imports this module's trainer)

__all__ = ["GRPOTrainer", "LadkitGRPOTrainer", "LadkitRunCallback", "check_trl_version", "objective_needs"]
