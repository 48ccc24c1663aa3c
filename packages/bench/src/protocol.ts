import {
  extractAnswer,
  formatCompletion,
  renderPrompt,
  systemPrompt,
  type TaskRecord,
  type TaskType,
} from '@codereasoner/protocol';
import type { ChatMessage } from './types.js';

// The project's task protocol (`@codereasoner/protocol`) applied to benchmark questions, for the
// project's own small model: it was trained only on these prompts and on `<answer>…</answer>`
// completions. The benchmark's gold and its execution-based scoring stay the official ones.

export interface ProtocolQuestion {
  type: TaskType;
  code: string;
  entryPoint: string;
  /** Call arguments source (between the parentheses). */
  input: string;
  output?: string;
  line?: number;
  variable?: string;
}

function toTaskRecord(q: ProtocolQuestion, id: string): TaskRecord {
  return {
    id,
    programId: id,
    callId: id,
    type: q.type,
    split: 'eval',
    code: q.code,
    entryPoint: q.entryPoint,
    input: q.input,
    output: q.output ?? '',
    ...(q.line === undefined ? {} : { line: q.line }),
    ...(q.variable === undefined ? {} : { variable: q.variable }),
    answer: '',
    meta: {},
  };
}

export function protocolMessages(q: ProtocolQuestion, id: string, cot: boolean): ChatMessage[] {
  return renderPrompt(toTaskRecord(q, id), { reasoning: cot });
}

/** A protocol completion holding `answer` (the oracle's reply). */
export function protocolCompletion(answer: string, cot: boolean): string {
  return formatCompletion(answer, cot ? 'The answer follows from executing the code.' : undefined);
}

export function protocolExtract(
  completion: string,
  type: TaskType,
): { ok: true; answer: string } | { ok: false; reason: string } {
  return extractAnswer(completion, type);
}

/** Splits `name(args)` into its arguments source; undefined when `call` is not a plain call of `name`. */
export function callArguments(call: string, name: string): string | undefined {
  const text = call.trim();
  if (!text.startsWith(`${name}(`) || !text.endsWith(')')) return undefined;
  return text.slice(name.length + 1, -1);
}

const ANSWER_BLOCK = /<answer>([\s\S]*?)<\/answer>/gi;

/**
 * Protocol prompt for a question with no single call to ask about (REval's ClassEval output
 * questions: a test snippet with several `??`). The answer is the completed snippet.
 */
export function protocolSnippetMessages(
  classCode: string,
  snippet: string,
  cot: boolean,
): ChatMessage[] {
  return [
    { role: 'system', content: systemPrompt(cot) },
    {
      role: 'user',
      content:
        `\`\`\`python\n${classCode.replace(/\n+$/, '')}\n\`\`\`\n` +
        `Complete this test code by replacing each ?? with the value it is checked against. ` +
        `Answer with the completed test code.\n\`\`\`python\n${snippet.replace(/\n+$/, '')}\n\`\`\``,
    },
  ];
}

/** The last non-empty `<answer>` block, verbatim (multi-line code kept). */
export function protocolAnswerBlock(
  completion: string,
): { ok: true; answer: string } | { ok: false; reason: string } {
  const blocks = [...completion.matchAll(ANSWER_BLOCK)]
    .map((m) => m[1] ?? '')
    .filter((b) => b.trim() !== '');
  if (blocks.length === 0) return { ok: false, reason: 'no <answer> block' };
  let text = blocks[blocks.length - 1]!.trim();
  const fence = /^```[\w+-]*[ \t]*\n([\s\S]*?)\n?```$/.exec(text);
  if (fence !== null) text = fence[1]!.trim();
  return { ok: true, answer: text };
}
