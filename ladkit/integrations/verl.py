"""LAD inside verl: policy loss "lad" in verl's registry, and verl's metrics log converted to a ladkit run folder.

    actor_rollout_ref.actor.policy_loss.loss_mode=lad
    '+ray_kwargs.ray_init.runtime_env.env_vars.LADKIT_LAD="divergence=js,inv_eta=4"'  # LADConfig fields; optional

Registration: importing this module registers "lad" (verl.trainer.ppo.core_algos.register_policy_loss). ladkit
declares it as a `verl.plugins` entry point, which verl imports in every process (driver and Ray workers) when
ladkit is installed; `actor_rollout_ref.model.external_lib=ladkit.integrations.verl` does the same explicitly.
LAD's settings come from the LADKIT_LAD environment variable (comma-separated LADConfig fields), because verl's
PolicyLossConfig is a closed dataclass; verl forwards it to the workers through the Ray runtime_env above.

The contract (verl 0.9): fn(old_log_prob [N, T], log_prob [N, T], advantages [N, T], response_mask [N, T],
loss_agg_mode, config, rollout_is_weights) -> (scalar loss, metrics). pi_old is verl's old_log_prob (recomputed once
per batch by the actor before its PPO epochs). LAD takes one advantage per response: verl broadcasts the outcome
advantage of grpo/rloo/reinforce++ over the response tokens, and a token-varying one (gae) is an error. The loss
is ladkit's lad_loss; aggregation is verl's own agg_loss with its global batch info (so DP sizes and token counts
across ranks are verl's): token-level LAD goes in as [N, T]; sequence-level LAD's loss of each response is placed
on each of its tokens, so seq-mean-token-mean is ladkit's mean over responses and token-mean its length-weighted
mean (the two sum modes would multiply a sequence loss by its length, and are errors).

FlowRL is not registered: it trains a log Z head on the prompt's hidden states, which verl's policy-loss contract
(log-probs only) does not carry; train FlowRL with ladkit's trainer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from ladkit.errors import LadkitError
from ladkit.integrations.runfolder import VERL_KEYS, rename, section, verl_validation
from ladkit.objectives import LADConfig, lad_loss
from ladkit.runs import RunWriter

SUPPORTED_VERL = ("0.9",)  # major.minor series whose policy-loss contract this module was written against
TESTED_VERL = "0.9.1"
ENVIRONMENT = "LADKIT_LAD"
SEQUENCE_MODES = ("seq-mean-token-mean", "token-mean")


def check_verl_version(version: str) -> None:
    if ".".join(version.split(".")[:2]) not in SUPPORTED_VERL:
        raise LadkitError(
            f"ladkit.integrations.verl supports verl {', '.join(s + '.x' for s in SUPPORTED_VERL)} (tested "
            f"{TESTED_VERL}); verl {version} is installed: pip install 'verl=={TESTED_VERL}'"
        )


def lad_config_from(text: str | None) -> LADConfig:
    """LADConfig from 'divergence=js,inv_eta=4,level=sequence' (empty: the defaults, LAD-js 1/eta = 4)."""
    kinds = {f.name: f.type for f in fields(LADConfig)}
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, _, raw = item.partition("=")
        key = key.strip()
        if key not in kinds:
            raise LadkitError(f"{ENVIRONMENT}: LAD has no option {key!r}; valid: {', '.join(kinds)}")
        values[key] = _parse(raw.strip(), kinds[key], key)
    return LADConfig(**values)


def _parse(raw: str, kind: str, key: str) -> Any:
    if raw.lower() in ("none", "null", ""):
        return None
    if "bool" in kind:
        if raw.lower() not in ("true", "false"):
            raise LadkitError(f"{ENVIRONMENT}: {key} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if "float" in kind:
        try:
            return float(raw)
        except ValueError:
            raise LadkitError(f"{ENVIRONMENT}: {key} must be a number, got {raw!r}") from None
    return raw


def sequence_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One advantage per response [N] from verl's token advantages [N, T] (constant over each response)."""
    mask = mask.bool()
    counts = mask.sum(-1).clamp(min=1)  # [N]
    mean = torch.where(mask, advantages, 0.0).sum(-1) / counts  # [N]
    spread = torch.where(mask, (advantages - mean[:, None]).abs(), 0.0).amax(-1)  # [N]
    if bool((spread > 1e-6 * (1.0 + mean.abs())).any()):
        raise LadkitError(
            "LAD takes one advantage per response, but verl's advantages vary over tokens (adv_estimator gae?); "
            "use an outcome estimator: algorithm.adv_estimator=grpo (or rloo, reinforce_plus_plus)"
        )
    return mean


def compute_policy_loss_lad(
    old_log_prob: torch.Tensor,  # [N, T] pi_old, fixed over the actor's PPO epochs on this batch
    log_prob: torch.Tensor,  # [N, T] current policy, with gradient
    advantages: torch.Tensor,  # [N, T] the response's advantage on each of its tokens
    response_mask: torch.Tensor,  # [N, T]
    loss_agg_mode: str = "seq-mean-token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
    lad: LADConfig | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """verl policy loss "lad": ladkit's lad_loss aggregated by verl's agg_loss (see the module docstring)."""
    from verl.trainer.ppo.core_algos import agg_loss

    lad = lad or lad_config_from(os.environ.get(ENVIRONMENT))
    if rollout_is_weights is not None:
        raise LadkitError(
            "verl passed rollout-correction weights; ladkit's LAD takes pi_old as verl's recomputed old_log_prob: "
            "leave actor_rollout_ref.actor.policy_loss.rollout_correction off"
        )
    if lad.level == "sequence" and loss_agg_mode not in SEQUENCE_MODES:
        raise LadkitError(
            f"sequence-level LAD sums its log-ratio over tokens already; set actor_rollout_ref.actor.loss_agg_mode "
            f"to {' or '.join(SEQUENCE_MODES)} (got {loss_agg_mode}), or use LADKIT_LAD='level=token'"
        )
    mask = response_mask.bool()
    output = lad_loss(log_prob, old_log_prob, sequence_advantages(advantages, mask), mask, lad)
    losses = output.losses if output.level == "token" else output.losses[:, None].expand_as(log_prob)  # [N, T]
    info = dict(getattr(config, "global_batch_info", None) or {})
    loss = agg_loss(loss_mat=losses, loss_mask=response_mask, loss_agg_mode=loss_agg_mode, **info)
    return loss, {key: float(value) for key, value in output.metrics.items()}


def register() -> None:
    """Register "lad" in verl's policy-loss registry (checks the verl version first)."""
    import verl
    from verl.trainer.ppo import core_algos

    try:
        check_verl_version(verl.__version__)
    except LadkitError as error:  # verl imports plugins quietly: the error must come when "lad" is used
        core_algos.register_policy_loss("lad")(_refusal(str(error)))
        return
    core_algos.register_policy_loss("lad")(_registered)


def _refusal(message: str):
    def unsupported(*_, **__):
        raise LadkitError(message)

    return unsupported


def _registered(
    old_log_prob,
    log_prob,
    advantages,
    response_mask,
    loss_agg_mode="seq-mean-token-mean",
    config=None,
    rollout_is_weights=None,
):
    """The function verl calls: its keywords exactly, LAD's settings from the environment."""
    return compute_policy_loss_lad(
        old_log_prob, log_prob, advantages, response_mask, loss_agg_mode, config, rollout_is_weights
    )


# ------------------------------------------------------------------------------------------- metrics converter


def convert_log(log_path: str | Path, run_dir: str | Path, verl_config: dict[str, Any] | None = None) -> Path:
    """verl's file logger output (trainer.logger=[console,file]: one {"step", "data"} per line) -> a ladkit run
    folder. verl step k holds the k-th update's training metrics (ladkit step k - 1, whose rollouts pi_old
    sampled) and the validation after k updates (ladkit's eval before step k)."""
    rows: dict[int, dict[str, float]] = {}
    for line in Path(log_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        step, data = int(record["step"]), record.get("data", {})
        train = {k: v for k, v in data.items() if not k.startswith(("val-core/", "val-aux/"))}
        if train and step >= 1:
            rows.setdefault(step - 1, {}).update(rename(train, VERL_KEYS, "verl"))
        rows.setdefault(step, {}).update(verl_validation(data))
    writer = RunWriter(run_dir, run_config(verl_config or {}), command="verl")
    for step in sorted(s for s, row in rows.items() if row):
        writer.log({"step": step, **rows[step]})
    writer.finish("completed", source=str(log_path))
    return writer.path


def run_config(verl: dict[str, Any]) -> dict[str, Any]:
    """config.yaml in ladkit's names from verl's Hydra config (what is missing stays None)."""

    def get(*keys: str) -> Any:
        value: Any = verl
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    actor = get("actor_rollout_ref", "actor") or {}
    lad = lad_config_from(os.environ.get(ENVIRONMENT))
    return {
        "engine": "verl",
        "objective": get("actor_rollout_ref", "actor", "policy_loss", "loss_mode") or "lad",
        "lad": section(lad),
        "seed": get("data", "seed"),
        "group_size": get("actor_rollout_ref", "rollout", "n"),
        "prompts_per_step": get("data", "train_batch_size"),
        "rollout": {
            "max_new_tokens": get("data", "max_response_length"),
            "temperature": get("actor_rollout_ref", "rollout", "temperature"),
        },
        "optim": {"lr": get("actor_rollout_ref", "actor", "optim", "lr")},
        "model": {"name_or_path": get("actor_rollout_ref", "model", "path")},
        "verl": {
            **{key: actor.get(key) for key in ("loss_agg_mode", "ppo_mini_batch_size", "ppo_epochs")},
            "adv_estimator": get("algorithm", "adv_estimator"),
        },
    }


def main(argv: list[str] | None = None) -> None:
    """python -m ladkit.integrations.verl LOG.jsonl RUN_DIR [--config .hydra/config.yaml]"""
    import yaml

    parser = argparse.ArgumentParser(description="verl's file-logger jsonl -> a ladkit run folder")
    parser.add_argument("log", help="verl's jsonl (VERL_FILE_LOGGER_PATH, or <project>/<experiment>.jsonl)")
    parser.add_argument("run_dir", help="the ladkit run folder to write")
    parser.add_argument("--config", help="verl's resolved Hydra config (outputs/<date>/<time>/.hydra/config.yaml)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    print(f"run folder: {convert_log(args.log, args.run_dir, config)}")


with contextlib.suppress(ImportError):  # registration needs verl; the converter above does not
    register()

if __name__ == "__main__":
    main()
