import type { TaskRecord } from '@codereasoner/protocol';
import type { TaskStore } from './task-store.js';
import { TaskResolutionError, unknownTask } from './verify-endpoint.js';

// OpenRLHF's remote reward model protocol (OpenRLHF/OpenRLHF: openrlhf/utils/remote_rm_utils.py
// posts {"query": [...], "prompts": [...], "labels": [...]} to --remote_rm_url and reads
// "rewards"; openrlhf/cli/serve_rm.py is the reference server; examples/python/reward_func.py
// documents the reply: rewards (for advantages), scores (0-1, for dynamic filtering), extra_logs
// (logged to wandb)). `query` is prompt + response as the chat template renders them.

export interface GetRewardRequest {
  query: string[];
  prompts?: string[];
  labels?: string[];
}

export interface GetRewardResponse {
  rewards: number[];
  scores: number[];
  extra_logs: { correct: number[]; answered: number[] };
}

export const getRewardRequestSchema = {
  type: 'object',
  required: ['query'],
  properties: {
    query: { type: 'array', items: { type: 'string' } },
    prompts: { type: 'array', items: { type: 'string' } },
    labels: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** Where the assistant's turn starts in a ChatML rendering (Qwen2.5's template). */
const ASSISTANT_TURN = '<|im_start|>assistant\n';
/** Special tokens a decoded response may end with (ChatML end of turn, Qwen's end of text). */
const TRAILING_SPECIALS = /(?:<\|im_end\|>|<\|endoftext\|>|\s)+$/;

/**
 * The model's response inside a query: what follows the prompt when OpenRLHF sends prompts (the
 * query starts with it), else what follows the last assistant turn marker. Refused otherwise,
 * because the prompt itself shows the answer format, and verifying prompt text could reward a
 * response that never answered.
 */
export function responseOf(query: string, prompt: string | undefined): string | undefined {
  let response: string | undefined;
  if (prompt !== undefined && prompt.length > 0 && query.startsWith(prompt)) {
    response = query.slice(prompt.length);
  } else {
    const at = query.lastIndexOf(ASSISTANT_TURN);
    if (at >= 0) response = query.slice(at + ASSISTANT_TURN.length);
  }
  return response?.replace(TRAILING_SPECIALS, '');
}

/** The items to verify, or every problem with the request (answered 400). */
export function planGetReward(
  request: GetRewardRequest,
  store: TaskStore,
): { task: TaskRecord; completion: string }[] {
  const issues: string[] = [];
  const n = request.query.length;
  if (request.labels === undefined) {
    issues.push(
      'labels: required: each label is the CodeReasoner task id (export with cr export --format openrlhf and train with --label_key label)',
    );
  } else if (request.labels.length !== n) {
    issues.push(`labels: has ${request.labels.length} entries, query has ${n}`);
  }
  if (request.prompts !== undefined && request.prompts.length !== n) {
    issues.push(`prompts: has ${request.prompts.length} entries, query has ${n}`);
  }
  if (issues.length > 0) throw new TaskResolutionError(issues);
  const items = request.query.map((query, index) => {
    const id = request.labels![index]!;
    const task = store.get(id);
    if (!task) issues.push(unknownTask(`labels.${index}`, id, store));
    const completion = responseOf(query, request.prompts?.[index]);
    if (completion === undefined) {
      issues.push(
        `query.${index}: cannot find the response: the query does not start with prompts.${index} and has no '<|im_start|>assistant' turn`,
      );
    }
    return { task: task!, completion: completion ?? '' };
  });
  if (issues.length > 0) throw new TaskResolutionError(issues);
  return items;
}
