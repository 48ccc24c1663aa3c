#!/usr/bin/env bash
# GRPO on verl for Qwen2.5-Coder-7B-Instruct, 1 node x 8 GPUs, rewards from `cr serve`.
# Run from the repository root after `cr data build` (or `cr run-all`) made $RUN_DIR/data.
set -euo pipefail
source "$(dirname "$0")/../settings.env"

# 1. Data in verl's format (data_source, prompt, ability, reward_model, extra_info.task_id).
$CR export --format verl --tasks "$TRAIN_TASKS" --out "$RUN_DIR/verl/train.parquet"
$CR export --format verl --tasks "$EVAL_TASKS" --out "$RUN_DIR/verl/eval.parquet"

# 2. The verifiers (stateless; several instances, used round-robin by the reward module).
export CR_SERVE_URL=$(recipes/serve.sh 4)
trap 'kill -TERM $(cat "$RUN_DIR/serve.pids") 2>/dev/null || true' EXIT   # SIGTERM drains each instance

# 3. GRPO. The reward: recipes/verl/codereasoner_reward.py, batched (one /verify call per batch).
#    verl's batch reward manager turns an exception in the reward function into scores of 0 with
#    a "[verify] Scoring failed" line: watch the log for it (a wrong CR_SERVE_URL, an unknown
#    task id). Newer verl releases spell the reward keys reward.reward_manager and
#    reward.custom_reward_function.*; the values stay the same.
python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  algorithm.use_kl_in_reward=False \
  data.train_files="$RUN_DIR/verl/train.parquet" \
  data.val_files="$RUN_DIR/verl/eval.parquet" \
  data.train_batch_size="$PROMPTS_PER_STEP" \
  data.max_prompt_length="$MAX_PROMPT_TOKENS" \
  data.max_response_length="$MAX_RESPONSE_TOKENS" \
  data.filter_overlong_prompts=True \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.model.use_remove_padding=True \
  actor_rollout_ref.model.enable_gradient_checkpointing=True \
  actor_rollout_ref.actor.optim.lr="$LEARNING_RATE" \
  actor_rollout_ref.actor.ppo_mini_batch_size="$MINI_BATCH_PROMPTS" \
  actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
  actor_rollout_ref.actor.clip_ratio="$CLIP_EPS" \
  actor_rollout_ref.actor.use_kl_loss=True \
  actor_rollout_ref.actor.kl_loss_coef="$KL_COEF" \
  actor_rollout_ref.actor.kl_loss_type=low_var_kl \
  actor_rollout_ref.actor.entropy_coeff=0 \
  actor_rollout_ref.actor.fsdp_config.param_offload=False \
  actor_rollout_ref.actor.fsdp_config.optimizer_offload=False \
  actor_rollout_ref.rollout.name=vllm \
  actor_rollout_ref.rollout.n="$GROUP_SIZE" \
  actor_rollout_ref.rollout.temperature="$TEMPERATURE" \
  actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
  actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
  actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
  actor_rollout_ref.ref.fsdp_config.param_offload=True \
  reward_model.reward_manager=batch \
  custom_reward_function.path=recipes/verl/codereasoner_reward.py \
  custom_reward_function.name=compute_score_batch \
  trainer.critic_warmup=0 \
  trainer.logger='["console"]' \
  trainer.project_name=codereasoner \
  trainer.experiment_name=grpo-qwen2.5-coder-7b \
  trainer.n_gpus_per_node="$GPUS_PER_NODE" \
  trainer.nnodes="$NNODES" \
  trainer.default_local_dir="$RUN_DIR/verl/checkpoints" \
  trainer.save_freq=50 \
  trainer.test_freq=25 \
  trainer.total_epochs="$EPOCHS" "$@"

# 4. Benchmarks on the trained model, served by vLLM (merge the FSDP checkpoint to Hugging Face
#    format first: python3 -m verl.model_merger merge --backend fsdp --local_dir <actor dir>
#    --target_dir "$RUN_DIR/verl/hf").
#    vllm serve "$RUN_DIR/verl/hf" --served-model-name codereasoner-grpo --port 8000 &
#    $CR bench --endpoint http://127.0.0.1:8000/v1 --model codereasoner-grpo \
#      --benchmarks ../shared/benchmarks --prompt-style protocol --strict-literals
