import { readFile } from 'node:fs/promises';
import { Ajv, type JSONSchemaType } from 'ajv';
import type { ChatMessage } from '@codereasoner/core-tensors';
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
  type: 'output' | 'input' | 'coverage' | 'state' | 'path';
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
    type: { type: 'string', enum: ['output', 'input', 'coverage', 'state', 'path'] },
    teacher: { type: 'string' },
  },
} as unknown as JSONSchemaType<SftRecord>;

const validateRecord = new Ajv({ allErrors: true }).compile(sftRecordSchema);

/** Throws `SftDatasetError` when `value` is not an SFT record whose last message is the assistant's. */
export function checkSftRecord(value: unknown, where: { path: string; line: number }): SftRecord {
  if (!validateRecord(value)) {
    const issues = (validateRecord.errors ?? []).map(
      (error) =>
        `${error.instancePath === '' ? '(root)' : error.instancePath.slice(1).replace(/\//g, '.')}: ${error.message ?? 'invalid'}`,
    );
    throw new SftDatasetError(where.path, where.line, `not an SFT record (${issues.join('; ')})`);
  }
  for (const key of ['messages', 'answer_messages'] as const) {
    if (value[key][value[key].length - 1]?.role !== 'assistant') {
      throw new SftDatasetError(
        where.path,
        where.line,
        `${key}: the last message must be the assistant's completion`,
      );
    }
  }
  return value;
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
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SftDatasetError(
      path,
      0,
      `cannot read the SFT data set (${String(error)}); run distillation first or pass records`,
      {
        cause: error,
      },
    );
  }
  const lines = text.split('\n');
  const records: SftRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      const isTail = i === lines.length - 1 && !text.endsWith('\n');
      if (isTail && options.allowTruncatedTail === true) {
        options.onTruncated?.(i + 1);
        break;
      }
      throw new SftDatasetError(
        path,
        i + 1,
        `invalid JSON (${String(error)}); fix or delete the line`,
        { cause: error },
      );
    }
    records.push(checkSftRecord(value, { path, line: i + 1 }));
  }
  return records;
}

/** The conversation trained on: with the chain, or the answer only. */
export function trainingMessages(record: SftRecord, reasoning: boolean): ChatMessage[] {
  return reasoning ? record.messages : record.answer_messages;
}
