"""verl reward function that scores CodeReasoner completions with `cr serve`'s POST /verify.

Wire it into verl (custom_reward_function, see verl/trainer/ppo/reward.py: the function is loaded
from `path` and called by the reward manager):

  # one HTTP request per completion (reward_model.reward_manager=naive, verl's default)
  custom_reward_function.path=recipes/verl/codereasoner_reward.py
  custom_reward_function.name=compute_score

  # one HTTP request per batch (reward_model.reward_manager=batch): much less overhead
  custom_reward_function.path=recipes/verl/codereasoner_reward.py
  custom_reward_function.name=compute_score_batch

The data comes from `cr export --format verl`: `extra_info.task_id` names the task, which the
service loaded with `cr serve --tasks <the same tasks.jsonl>`. The reward is 1.0 when the
completion's answer verifies by execution (strict literals), else 0.0.

Settings (environment, or reward_kwargs of the same names in lower case):
  CR_SERVE_URL    base URL of cr serve (default http://127.0.0.1:8080); several URLs separated by
                  commas are used round-robin (no load balancer needed for a few instances)
  CR_SERVE_TOKEN  bearer token, when cr serve was started with --token
  CR_SERVE_TIMEOUT  seconds per HTTP request (default 120)

Standard library only, so it runs in any verl environment.
"""

import itertools
import json
import os
import time
import urllib.error
import urllib.request

# Statuses worth retrying: the queue is full (429), an instance is draining (503), a request ran
# past the service's limit (504). Anything else is a configuration error and is raised at once.
_RETRY_STATUSES = (429, 503, 504)
_ATTEMPTS = 5
_counter = itertools.count()


def _settings(url=None, token=None, timeout=None):
    urls = [u.strip().rstrip("/") for u in (url or os.environ.get("CR_SERVE_URL") or "http://127.0.0.1:8080").split(",") if u.strip()]
    return urls, token or os.environ.get("CR_SERVE_TOKEN") or None, float(timeout or os.environ.get("CR_SERVE_TIMEOUT") or 120)


def _task_id(extra_info):
    if not isinstance(extra_info, dict) or not isinstance(extra_info.get("task_id"), str):
        raise ValueError(
            "extra_info.task_id is missing: this reward scores data written by `cr export --format verl` "
            f"(got extra_info={extra_info!r})"
        )
    return extra_info["task_id"]


def verify(items, url=None, token=None, timeout=None):
    """POST {"items": [{"task_id", "completion"}, ...]} to /verify; returns the service's results."""
    urls, token, timeout = _settings(url, token, timeout)
    body = json.dumps({"items": items}).encode("utf-8")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    last_error = None
    for attempt in range(_ATTEMPTS):
        base = urls[next(_counter) % len(urls)]
        request = urllib.request.Request(f"{base}/verify", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read().decode("utf-8"))["results"]
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:2000]
            if error.code not in _RETRY_STATUSES:
                raise RuntimeError(f"cr serve {base}/verify answered {error.code}: {detail}") from error
            last_error = f"{error.code}: {detail}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = str(error)
        time.sleep(min(8.0, 0.5 * 2**attempt))
    raise RuntimeError(f"cr serve at {', '.join(urls)} did not answer after {_ATTEMPTS} attempts: {last_error}")


def compute_score(data_source, solution_str, ground_truth, extra_info=None, url=None, token=None, timeout=None, **kwargs):
    """verl's per-sample signature (naive reward manager): 1.0 if the completion verifies, else 0.0."""
    [result] = verify([{"task_id": _task_id(extra_info), "completion": solution_str}], url, token, timeout)
    return float(result["reward"])


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos, url=None, token=None, timeout=None, **kwargs):
    """verl's batch signature (reward_model.reward_manager=batch): one request for the whole batch."""
    items = [{"task_id": _task_id(info), "completion": text} for text, info in zip(solution_strs, extra_infos)]
    return [float(result["reward"]) for result in verify(items, url, token, timeout)]
