"""Loads recipes/trl/codereasoner_trl_reward.py and calls `execution_reward` the way TRL's
GRPOTrainer does (keyword arguments: prompts, completions as conversational message lists,
completion_ids, and the dataset columns, among them `id`); prints the rewards as JSON."""

import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("trl_reward", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

cases = json.load(sys.stdin)
rewards = module.execution_reward(
    prompts=[[{"role": "user", "content": "..."}] for _ in cases],
    completions=[[{"role": "assistant", "content": case["completion"]}] for case in cases],
    completion_ids=[[0] for _ in cases],
    id=[case["id"] for case in cases],
    type=["output" for _ in cases],
    trainer_state=None,
)
print(json.dumps(rewards))
