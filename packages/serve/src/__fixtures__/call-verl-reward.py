"""Loads recipes/verl/codereasoner_reward.py the way verl does (importlib from a path) and calls
both signatures with the cases given as JSON on stdin; prints the scores as JSON."""

import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("custom_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

cases = json.load(sys.stdin)
single = [
    module.compute_score(
        data_source=case["data_source"],
        solution_str=case["completion"],
        ground_truth=case["ground_truth"],
        extra_info=case["extra_info"],
    )
    for case in cases
]
batch = module.compute_score_batch(
    data_sources=[case["data_source"] for case in cases],
    solution_strs=[case["completion"] for case in cases],
    ground_truths=[case["ground_truth"] for case in cases],
    extra_infos=[case["extra_info"] for case in cases],
)
try:
    module.compute_score("codereasoner/output", "<answer>1</answer>", "1", extra_info={"index": 0})
    missing = "accepted"
except ValueError as error:
    missing = str(error)
print(json.dumps({"single": single, "batch": batch, "missing_task_id": missing}))
