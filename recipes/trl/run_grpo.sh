#!/usr/bin/env bash
# GRPO on TRL (GRPOTrainer + vLLM colocated) for Qwen2.5-Coder-7B-Instruct, 1 node x 8 GPUs.
set -euo pipefail
source "$(dirname "$0")/../settings.env"

# 1. Prompt-only conversational set (TRL's format); `id` reaches the reward function.
$CR export --format trl --kind grpo --tasks "$TRAIN_TASKS" --out "$RUN_DIR/trl/train.jsonl"

# 2. The verifiers.
export CR_SERVE_URL=$(recipes/serve.sh 4)
trap 'kill -TERM $(cat "$RUN_DIR/serve.pids") 2>/dev/null || true' EXIT   # SIGTERM drains each instance

# 3. GRPO.
export TRL_TRAIN="$RUN_DIR/trl/train.jsonl" TRL_OUT="$RUN_DIR/trl/final"
export MODEL GROUP_SIZE PROMPTS_PER_STEP MINI_BATCH_PROMPTS LEARNING_RATE KL_COEF CLIP_EPS \
  TEMPERATURE MAX_PROMPT_TOKENS MAX_RESPONSE_TOKENS EPOCHS
accelerate launch --num_processes "$GPUS_PER_NODE" --mixed_precision bf16 \
  "$(dirname "$0")/train_grpo.py"

# 4. Benchmarks on the result, served by vLLM:
#    vllm serve "$TRL_OUT" --served-model-name codereasoner-grpo --port 8000 &
#    $CR bench --endpoint http://127.0.0.1:8000/v1 --model codereasoner-grpo \
#      --benchmarks ../shared/benchmarks --prompt-style protocol --strict-literals
