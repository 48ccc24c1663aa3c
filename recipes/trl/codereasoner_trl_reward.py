"""TRL reward function that scores CodeReasoner completions with `cr serve`'s POST /verify.

GRPOTrainer calls reward functions as f(prompts=..., completions=..., completion_ids=...,
**columns): every dataset column but `prompt` arrives as a keyword argument, so the `id` column of
`cr export --format trl --kind grpo` names each completion's task. Conversational completions are
lists of messages; the last one is the assistant's answer.

The HTTP client is the verl reward module's `verify` (retries on 429/503/504, several
comma-separated CR_SERVE_URLs round-robin, CR_SERVE_TOKEN), loaded by path so both engines use
one client.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "codereasoner_reward", Path(__file__).resolve().parents[1] / "verl" / "codereasoner_reward.py"
)
_client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_client)


def execution_reward(prompts, completions, id, **kwargs):  # noqa: A002 - TRL passes the column by its name
    """1.0 when the completion's answer verifies by execution (strict literals), else 0.0."""
    texts = [completion[-1]["content"] if isinstance(completion, list) else completion for completion in completions]
    results = _client.verify([{"task_id": task_id, "completion": text} for task_id, text in zip(id, texts)])
    return [float(result["reward"]) for result in results]
