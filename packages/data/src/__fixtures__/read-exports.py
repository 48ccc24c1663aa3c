"""An independent reader of the OpenRLHF and TRL exports, written from those projects' documented
conventions (not from our exporter): prints what each engine would see, as JSON, or exits 1 with
the first violation.

  python3 read-exports.py openrlhf <file.jsonl>   # OpenRLHF preprocess_data with --input_key prompt
                                                  # --label_key label --apply_chat_template (ChatML,
                                                  # the Qwen2.5 template's layout)
  python3 read-exports.py trl <file.jsonl>        # TRL: conversational check (trl.data_utils
                                                  # is_conversational), one column set for the whole
                                                  # file (datasets/Arrow), GRPO reward kwargs
"""

import json
import sys

# GRPOTrainer passes every column except these as keyword arguments to reward functions, next to
# its own prompts=, completions=, completion_ids= and trainer_state=: a column with one of those
# names would collide.
TRL_RESERVED_KWARGS = {"prompts", "completions", "completion_ids", "trainer_state"}
TRL_CONVERSATIONAL_KEYS = ("prompt", "chosen", "rejected", "completion", "messages")


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                fail(f"{path}:{number}: not JSON: {error}")
    return rows


def is_message_list(value):
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value)
    )


def chatml(messages):
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + "<|im_start|>assistant\n"


def read_openrlhf(path):
    out = []
    for number, row in enumerate(read_rows(path), 1):
        chat = row.get("prompt")
        if isinstance(chat, str):
            chat = [{"role": "user", "content": chat}]
        if not is_message_list(chat):
            fail(f"{path}:{number}: 'prompt' is not a list of role/content messages")
        label = row.get("label")
        if not isinstance(label, str) or not label:
            fail(f"{path}:{number}: 'label' must be a non-empty string")
        out.append({"prompt": chatml(chat), "label": label})
    return out


def read_trl(path):
    rows = read_rows(path)
    if not rows:
        fail(f"{path}: no rows")
    columns = set(rows[0])
    for number, row in enumerate(rows, 1):
        if set(row) != columns:
            fail(f"{path}:{number}: columns {sorted(row)} differ from the first row's {sorted(columns)}")
        keys = [key for key in TRL_CONVERSATIONAL_KEYS if key in row]
        if not keys or not is_message_list(row[keys[0]]):
            fail(f"{path}:{number}: not conversational (needs prompt or messages as role/content messages)")
    clash = sorted(columns & TRL_RESERVED_KWARGS)
    if clash:
        fail(f"{path}: columns {clash} collide with GRPOTrainer's reward function arguments")
    kind = "sft" if "messages" in columns else "prompt-only"
    return {"rows": len(rows), "kind": kind, "columns": sorted(columns), "roles": [m["role"] for m in rows[0].get("messages", rows[0].get("prompt"))]}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("openrlhf", "trl"):
        fail("usage: read-exports.py openrlhf|trl FILE")
    kind, path = sys.argv[1], sys.argv[2]
    print(json.dumps(read_openrlhf(path) if kind == "openrlhf" else read_trl(path)))


if __name__ == "__main__":
    main()
