import {
  TASK_TYPES,
  readJsonLines,
  schemaIssues,
  type ChatMessage,
  type TaskType,
} from '@codereasoner/common';
import type { JSONSchemaType } from 'ajv';
import { SftDatasetError } from './errors.js';

/**
 * One line of an SFT data set: the chat "messages" layout Hugging Face TRL reads (`messages`),
 * plus the same task without the chain (`answer_messages`: the answer-only prompt and answer) so
 * one file serves both the reasoning run and the answers-only ablation, and the task's identity.
 */
export interface SftRecord {
  messages: ChatMessage[];
  answer_messages: ChatMessage[];
  id: string;
  type: TaskType;
  teacher: string;
}

const messageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['role', 'content'],
  properties: {
    role: { type: 'string', enum: ['system', 'user', 'assistant'] },
    content: { type: 'string' },
  },
} as const;

/** JSON Schema of one SFT data set line. */
export const sftRecordSchema: JSONSchemaType<SftRecord> = {
  $id: 'https://codereasoner.dev/schemas/sft-record.json',
  title: 'SFT record (chat messages layout)',
  type: 'object',
  additionalProperties: true,
  required: ['messages', 'answer_messages', 'id', 'type', 'teacher'],
  properties: {
    messages: { type: 'array', minItems: 2, items: messageSchema },
    answer_messages: { type: 'array', minItems: 2, items: messageSchema },
    id: { type: 'string', minLength: 1 },
    type: { type: 'string', enum: TASK_TYPES },
    teacher: { type: 'string' },
  },
} as unknown as JSONSchemaType<SftRecord>;

/** Throws `SftDatasetError` when `value` is not an SFT record whose last message is the assistant's. */
export function checkSftRecord(value: unknown, where: { path: string; line: number }): SftRecord {
  const issues = schemaIssues(sftRecordSchema, value);
  if (issues.length > 0)
    throw new SftDatasetError(where.path, where.line, `not an SFT record (${issues.join('; ')})`);
  const record = value as SftRecord;
  for (const key of ['messages', 'answer_messages'] as const) {
    if (record[key][record[key].length - 1]?.role !== 'assistant') {
      throw new SftDatasetError(
        where.path,
        where.line,
        `${key}: the last message must be the assistant's completion`,
      );
    }
  }
  return record;
}

/**
 * Reads an SFT JSONL file. Every line must be valid; with `allowTruncatedTail`, a last line
 * without its newline that does not parse (an interrupted append) is skipped and reported
 * through `onTruncated`, as a resuming reader does.
 */
export async function readSftDataset(
  path: string,
  options: { allowTruncatedTail?: boolean; onTruncated?: (line: number) => void } = {},
): Promise<SftRecord[]> {
  let read;
  try {
    read = await readJsonLines(path, {
      tornTail: options.allowTruncatedTail === true ? 'drop' : 'error',
      missingIsEmpty: false,
      ...(options.onTruncated === undefined ? {} : { onTornTail: options.onTruncated }),
      invalidLine: (line, message, cause) =>
        new SftDatasetError(path, line, `${message}; fix or delete the line`, { cause }),
    });
  } catch (error) {
    if (error instanceof SftDatasetError) throw error;
    throw new SftDatasetError(
      path,
      0,
      `cannot read the SFT data set (${String(error)}); run distillation first or pass records`,
      { cause: error },
    );
  }
  return read.values.map((value, index) =>
    checkSftRecord(value, { path, line: read.lines[index]! }),
  );
}

/** The conversation trained on: with the chain, or the answer only. */
export function trainingMessages(record: SftRecord, reasoning: boolean): ChatMessage[] {
  return reasoning ? record.messages : record.answer_messages;
}
