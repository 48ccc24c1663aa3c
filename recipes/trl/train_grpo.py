"""GRPO with TRL's GRPOTrainer for Qwen2.5-Coder-7B-Instruct, rewards from `cr serve`'s /verify.

Data: `cr export --format trl --kind grpo` (prompt-only, conversational `prompt`; the other
columns, among them `id`, reach reward functions as keyword arguments: TRL's dataset convention).
Launched by recipes/trl/run_grpo.sh (accelerate, 8 GPUs, vLLM colocated).
"""

import os
import sys
from pathlib import Path

from datasets import load_dataset
from trl import GRPOConfig, GRPOTrainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codereasoner_trl_reward import execution_reward  # noqa: E402 - after the path is set


def main():
    env = os.environ
    train = load_dataset("json", data_files=env["TRL_TRAIN"], split="train")
    group = int(env["GROUP_SIZE"])
    processes = int(env.get("WORLD_SIZE", "8"))
    config = GRPOConfig(
        output_dir=env["TRL_OUT"],
        learning_rate=float(env["LEARNING_RATE"]),
        num_generations=group,
        # Completions per optimizer step = prompts per step x group, spread over the processes.
        per_device_train_batch_size=int(env["MINI_BATCH_PROMPTS"]) * group // processes,
        steps_per_generation=int(env["PROMPTS_PER_STEP"]) // int(env["MINI_BATCH_PROMPTS"]),
        beta=float(env["KL_COEF"]),
        epsilon=float(env["CLIP_EPS"]),
        temperature=float(env["TEMPERATURE"]),
        max_prompt_length=int(env["MAX_PROMPT_TOKENS"]),
        max_completion_length=int(env["MAX_RESPONSE_TOKENS"]),
        num_train_epochs=float(env["EPOCHS"]),
        loss_type="grpo",
        scale_rewards="group",
        use_vllm=True,
        vllm_mode="colocate",
        vllm_gpu_memory_utilization=0.4,
        bf16=True,
        gradient_checkpointing=True,
        logging_steps=1,
        save_steps=50,
        report_to="none",
    )
    trainer = GRPOTrainer(model=env["MODEL"], reward_funcs=execution_reward, args=config, train_dataset=train)
    trainer.train()
    trainer.save_model(env["TRL_OUT"])


if __name__ == "__main__":
    main()
