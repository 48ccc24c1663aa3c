#!/usr/bin/env bash
# Starts the verifiers on this node: one `cr serve` per CPU group, each on its own port, all
# loading the same task files (the service is stateless, so any instance answers any request).
# Usage: recipes/serve.sh [instances]   (default 4; see docs/scaling-out.md for how many)
set -euo pipefail
source "$(dirname "$0")/settings.env"
INSTANCES=${1:-4}
WORKERS=${WORKERS:-$(( $(nproc) / INSTANCES ))}
urls=()
mkdir -p "$RUN_DIR"
: > "$RUN_DIR/serve.pids"
for i in $(seq 0 $((INSTANCES - 1))); do
  port=$((CR_SERVE_PORT + i))
  $CR serve --port "$port" --workers "$WORKERS" --tasks "$TRAIN_TASKS" "$EVAL_TASKS" \
    > "$RUN_DIR/serve-$port.log" 2>&1 &
  echo $! >> "$RUN_DIR/serve.pids"   # stop with: kill -TERM $(cat "$RUN_DIR/serve.pids") (drains)
  urls+=("http://127.0.0.1:$port")
done
# Wait until every instance answers /health.
for url in "${urls[@]}"; do
  until curl -sf "$url/health" > /dev/null; do sleep 1; done
done
# Comma-separated: the verl reward module and the TRL reward use the instances round-robin.
(IFS=,; echo "${urls[*]}")
