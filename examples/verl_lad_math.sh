#!/usr/bin/env bash
# LAD in verl 0.9.1 on the paper's maths protocol (docs/design.md 10): Qwen2.5-7B base on DAPO-Math-17k, 8 rollouts
# per prompt, prompts up to 2k and responses up to 8k tokens, lr 1e-6 full fine-tuning, LAD-js with 1/eta = 4,
# validation avg@32 at temperature 0.6, top-p 0.95. The last three come from FlowRL's scripts, as in
# ladkit/presets/paper-math.yaml; batch geometry matches that preset (64 prompts x 8, 4 mini-batches).
#
#   pip install 'ladkit[verl]'      # in verl's environment (GPUs, vLLM); ladkit's verl.plugins entry point
#                                   # registers loss_mode=lad in every verl process
#   TRAIN=~/data/dapo-math-17k.parquet VAL=~/data/aime-2024.parquet bash examples/verl_lad_math.sh
#   DRY_RUN=1 bash examples/verl_lad_math.sh   # print the composed Hydra config and exit (runs on a CPU)
#
# Data: verl's DAPO recipe parquet files (Hugging Face BytedTsinghua-SIA/DAPO-Math-17k and AIME-2024, data_source
# math_dapo, scored by verl's own math_dapo reward). Afterwards, bring the run into `ladkit compare`:
#   python -m ladkit.integrations.verl "$LOG" runs/verl-lad-js --config outputs/<date>/<time>/.hydra/config.yaml
set -euo pipefail

TRAIN=${TRAIN:-$HOME/data/dapo-math-17k.parquet}
VAL=${VAL:-$HOME/data/aime-2024.parquet}
GPUS=${GPUS:-8}
NAME=${NAME:-lad-js-qwen2.5-7b}
export VERL_FILE_LOGGER_PATH=${LOG:-runs/verl/$NAME.jsonl}  # verl's file logger: one {"step", "data"} a line
mkdir -p "$(dirname "$VERL_FILE_LOGGER_PATH")"

overrides=(
    algorithm.adv_estimator=grpo                       # group-normalised outcome advantage, one per response
    algorithm.use_kl_in_reward=False
    data.train_files="$TRAIN"
    data.val_files="$VAL"
    data.train_batch_size=64                           # prompts per step
    data.max_prompt_length=2048
    data.max_response_length=8192
    data.filter_overlong_prompts=True
    data.truncation=error
    actor_rollout_ref.model.path=Qwen/Qwen2.5-7B
    actor_rollout_ref.model.external_lib=ladkit.integrations.verl   # explicit; the entry point does the same
    actor_rollout_ref.model.use_remove_padding=True
    actor_rollout_ref.model.enable_gradient_checkpointing=True
    actor_rollout_ref.actor.policy_loss.loss_mode=lad
    actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean   # ladkit's mean over responses (sequence LAD)
    actor_rollout_ref.actor.optim.lr=1e-6
    actor_rollout_ref.actor.ppo_mini_batch_size=16     # 4 optimiser steps per batch, pi_old fixed across them
    actor_rollout_ref.actor.ppo_epochs=1
    actor_rollout_ref.actor.use_dynamic_bsz=True
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=20480
    actor_rollout_ref.actor.use_kl_loss=False          # LAD needs no reference model
    actor_rollout_ref.actor.entropy_coeff=0            # nor an entropy bonus
    actor_rollout_ref.actor.grad_clip=1.0
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.n=8
    actor_rollout_ref.rollout.temperature=1.0
    actor_rollout_ref.rollout.tensor_model_parallel_size=2
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6
    actor_rollout_ref.rollout.val_kwargs.n=32
    actor_rollout_ref.rollout.val_kwargs.do_sample=True
    actor_rollout_ref.rollout.val_kwargs.temperature=0.6
    actor_rollout_ref.rollout.val_kwargs.top_p=0.95
    '+ray_kwargs.ray_init.runtime_env.env_vars.LADKIT_LAD="divergence=js,inv_eta=4,level=sequence"'  # Hydra-quoted
    trainer.logger='["console","file"]'
    trainer.project_name=ladkit
    trainer.experiment_name="$NAME"
    trainer.n_gpus_per_node="$GPUS"
    trainer.nnodes=1
    trainer.total_training_steps=500
    trainer.test_freq=50
    trainer.save_freq=50
    trainer.val_before_train=True
)

if [[ "${DRY_RUN:-0}" == 1 ]]; then
    exec python3 -m verl.trainer.main_ppo "${overrides[@]}" "$@" --cfg job
fi
exec python3 -m verl.trainer.main_ppo "${overrides[@]}" "$@"
