#!/usr/bin/env bash
# GRPO on OpenRLHF for Qwen2.5-Coder-7B-Instruct, 1 node x 8 GPUs, rewards from `cr serve`
# through OpenRLHF's remote reward protocol (--remote_rm_url .../get_reward).
set -euo pipefail
source "$(dirname "$0")/../settings.env"

# 1. Prompts with the task id as label (OpenRLHF sends labels back to the reward server).
$CR export --format openrlhf --tasks "$TRAIN_TASKS" --out "$RUN_DIR/openrlhf/train.jsonl"

# 2. The verifier. OpenRLHF posts {query, prompts, labels} to one URL: put several instances
#    behind a load balancer for more throughput (docs/scaling-out.md), or start one with more workers.
$CR serve --port "$CR_SERVE_PORT" --tasks "$TRAIN_TASKS" "$EVAL_TASKS" > "$RUN_DIR/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill -TERM $SERVE_PID' EXIT   # SIGTERM drains in-flight requests, then exits
until curl -sf "$CR_SERVE_URL/health" > /dev/null; do sleep 1; done

# 3. GRPO (group_norm advantages, no critic), vLLM rollouts, all models colocated on 8 GPUs.
#    OpenRLHF >= 0.10.2 flags (dotted). Before 0.10.2 the same run was spelled --pretrain,
#    --remote_rm_url, --prompt_data, --input_key, --label_key, --n_samples_per_prompt, ...
ray start --head --num-gpus "$GPUS_PER_NODE" || true
ray job submit --address="http://127.0.0.1:8265" -- python3 -m openrlhf.cli.train_ppo_ray \
  --actor.num_nodes "$NNODES" --actor.num_gpus_per_node "$GPUS_PER_NODE" \
  --ref.num_nodes "$NNODES" --ref.num_gpus_per_node "$GPUS_PER_NODE" \
  --vllm.num_engines 4 --vllm.tensor_parallel_size 2 --vllm.gpu_memory_utilization 0.6 \
  --train.colocate_all --vllm.enable_sleep --ds.enable_sleep \
  --actor.model_name_or_path "$MODEL" \
  --reward.remote_url "$CR_SERVE_URL/get_reward" \
  --data.prompt_dataset "$RUN_DIR/openrlhf/train.jsonl" \
  --data.input_key prompt --data.label_key label --data.apply_chat_template \
  --data.max_len $((MAX_PROMPT_TOKENS + MAX_RESPONSE_TOKENS)) \
  --algo.advantage.estimator group_norm \
  --algo.kl.use_loss --algo.kl.estimator k3 --algo.kl.init_coef "$KL_COEF" \
  --actor.eps_clip "$CLIP_EPS" \
  --actor.adam.lr "$LEARNING_RATE" \
  --rollout.n_samples_per_prompt "$GROUP_SIZE" \
  --rollout.batch_size "$PROMPTS_PER_STEP" \
  --rollout.micro_batch_size 8 \
  --rollout.max_new_tokens "$MAX_RESPONSE_TOKENS" \
  --rollout.temperature "$TEMPERATURE" \
  --train.batch_size $((MINI_BATCH_PROMPTS * GROUP_SIZE)) \
  --train.micro_batch_size 4 \
  --train.max_epochs 1 --train.num_episodes "$EPOCHS" \
  --ds.zero_stage 3 --ds.param_dtype bf16 --actor.gradient_checkpointing_enable \
  --ckpt.output_dir "$RUN_DIR/openrlhf/final" --ckpt.path "$RUN_DIR/openrlhf/checkpoints" \
  --ckpt.save_steps 50 --ckpt.save_hf "$@"

# 4. Benchmarks on the result, served by vLLM:
#    vllm serve "$RUN_DIR/openrlhf/final" --served-model-name codereasoner-grpo --port 8000 &
#    $CR bench --endpoint http://127.0.0.1:8000/v1 --model codereasoner-grpo \
#      --benchmarks ../shared/benchmarks --prompt-style protocol --strict-literals
