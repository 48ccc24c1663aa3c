import type { TaskType } from '@codereasoner/common';

export { TASK_TYPES } from '@codereasoner/common';
export type { ChatMessage, TaskType } from '@codereasoner/common';

export type Split = 'train' | 'eval';

/** One question about one call of one program (schema: `schemas/task.schema.json`). */
export interface TaskRecord {
  id: string;
  programId: string;
  callId: string;
  type: TaskType;
  split: Split;
  /** Definitions only; `line` refers to this text, 1-based. */
  code: string;
  entryPoint: string;
  /** Call arguments source: the text between the parentheses of `entryPoint(...)`. */
  input: string;
  /** repr of the return value. */
  output: string;
  /** Coverage, state and path questions: the line asked about. */
  line?: number;
  /** State questions: the local variable asked about. */
  variable?: string;
  /** Gold answer text in the protocol's answer format. */
  answer: string;
  meta: Record<string, unknown>;
}

/** One kept program (schema: `schemas/program.schema.json`). */
export interface ProgramRecord {
  id: string;
  split: Split;
  code: string;
  entryPoint: string;
  params: string[];
  originalCode: string;
  originalEntryPoint: string;
  origin: { kind: 'generator' | 'directory' | 'jsonl'; ref: string; function?: string };
  hash: string;
  meta: Record<string, unknown>;
}

/** One kept call (schema: `schemas/call.schema.json`). */
export interface CallRecord {
  id: string;
  programId: string;
  split: Split;
  input: string;
  output: string;
  steps: number;
  coverage: number[];
  pathLength: number;
}

export interface SplitCount {
  train: number;
  eval: number;
  total: number;
}

export type TaskCount = Record<TaskType, number>;

/** What a corpus build did (schema: `schemas/manifest.schema.json`). */
export interface CorpusManifest {
  formatVersion: 1;
  /** false while a build runs or after it was interrupted. */
  complete: boolean;
  seed: number;
  source: Record<string, unknown>;
  options: Record<string, unknown>;
  versions: {
    data: string;
    sandbox?: string;
    node: string;
    engine: string;
    python: string;
    treeSitterPython: string;
    webTreeSitter: string;
  };
  /** Program counts after each stage, in pipeline order. */
  stages: { name: string; count: number }[];
  calls: { generated: number; executed: number; kept: number };
  rejections: { programs: Record<string, number>; calls: Record<string, number> };
  counts: {
    programs: SplitCount;
    calls: SplitCount;
    tasks: { train: TaskCount; eval: TaskCount; total: number };
  };
  files: { programs: string; calls: string; tasks: { train: string; eval: string } };
}
