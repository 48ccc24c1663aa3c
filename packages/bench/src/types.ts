import type { ChatMessage } from '@codereasoner/common';

export type {
  ChatMessage,
  ChatModel,
  ChatRequest,
  ChatResponse,
  Logger,
  ProgressEvent,
} from '@codereasoner/common';

import type { BenchmarkName } from '@codereasoner/common';
import type { Sandbox } from '@codereasoner/sandbox';

/**
 * The part of `@codereasoner/sandbox`'s `Sandbox` that bench uses: a real `Sandbox` is accepted as
 * is, and a test double implements two methods. Types only: bench takes the sandbox it is given.
 */
export type SandboxLike = Pick<Sandbox, 'runBatch' | 'checkBatch'>;

export type { BenchmarkName } from '@codereasoner/common';

/**
 * `official`: each benchmark's own harness prompts and answer extraction (for remote and other
 * general models; the scores are comparable with published ones). `protocol`: the project's task
 * protocol (`@codereasoner/protocol`'s prompts and `<answer>` format), the only format the project's
 * small trained model knows. Scoring by execution is the same in both.
 */
export type PromptStyle = 'official' | 'protocol';

/** The tasks of each benchmark, in report order. */
export const BENCHMARK_TASKS = {
  cruxeval: ['output', 'input'],
  livecodebench: ['output'],
  reval: ['coverage', 'state', 'path', 'output'],
} as const satisfies Record<BenchmarkName, readonly string[]>;

export type BenchmarkTask<B extends BenchmarkName = BenchmarkName> =
  (typeof BENCHMARK_TASKS)[B][number];

/** One question put to the model. */
export interface BenchItem {
  /** Unique within the benchmark: `<task>/<id>`. */
  key: string;
  task: string;
  /** The record's id (CRUXEval/LCB `sample_N`); REval: `DREval/N#input` for a group, `…@line:var` for a probe. */
  id: string;
  messages: ChatMessage[];
  /** The completion a perfect model gives (what the oracle adapter answers), in the prompt style's format. */
  oracle: string;
  /**
   * CRUXEval and LiveCodeBench: the gold answer (the output; for CRUXEval-I the input arguments),
   * and the completion that gives `answer` instead, in the same format as `oracle`
   * (`oracle === answerWith(gold)`). The constant baselines answer every item through it.
   */
  gold?: string;
  answerWith?: (answer: string) => string;
  /**
   * False when no answer can pass under the official rules (REval state values the official
   * parser cannot express); such items still count in the denominator, as in the official harness.
   */
  answerable: boolean;
  /** REval: the (problem, input) group the item belongs to, for the consistency score. */
  group?: string;
}

export type Verdict = 'pass' | 'fail' | 'skipped';

/** What scoring made of one sample. */
export interface SampleVerdict {
  /** The answer the scorer used (after the harness's extraction); null when none could be taken. */
  extracted: string | null;
  /** `skipped`: the harness drops this generation before execution (anti-copy / missing-call guard). */
  verdict: Verdict;
  reason: string;
  /**
   * CRUXEval and LiveCodeBench passes only: false when the answer is an expression rather than a
   * literal (input: a call of `f` on literals), such as `x or True`. The official harnesses run the
   * answer inside `assert <gold> == <answer>`, so such answers pass there too; the flag lets a
   * report show how many passes rest on them.
   */
  literal?: boolean;
}
