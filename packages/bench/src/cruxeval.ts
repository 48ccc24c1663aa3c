import { isArgumentList, isSingleExpression } from '@codereasoner/data';
import { BenchmarkDataError } from './errors.js';
import { extractCruxInput, extractCruxOutput } from './extract.js';
import { parseJsonl, readDataFile } from './jsonl.js';
import {
  OFFICIAL_SYSTEM_MESSAGE,
  cruxCotInputPrompt,
  cruxCotOutputPrompt,
  cruxDirectInputPrompt,
  cruxDirectOutputPrompt,
} from './official-prompts.js';
import { protocolCompletion, protocolExtract, protocolMessages } from './protocol.js';
import type { SandboxLike } from './sandbox-types.js';
import { cruxEvalRecordSchema, validate, type CruxEvalRecord } from './schemas.js';
import type { BenchItem, PromptStyle, SampleVerdict } from './types.js';

/** The harness's time limit per check (`check_correctness(..., 3)`). */
export const CRUXEVAL_TIMEOUT_MS = 3000;

/** Reads and validates `cruxeval.jsonl` (800 records; the file has no final newline). */
export async function loadCruxEval(path: string): Promise<CruxEvalRecord[]> {
  const text = await readDataFile(path, 'CRUXEval data file');
  const records: CruxEvalRecord[] = [];
  const seen = new Map<string, number>();
  for (const { line, value } of parseJsonl(text, path)) {
    const id =
      typeof (value as { id?: unknown })?.id === 'string'
        ? (value as { id: string }).id
        : undefined;
    const issues = validate(cruxEvalRecordSchema, value);
    if (issues.length > 0) throw new BenchmarkDataError(path, line, issues, { recordId: id });
    const record = value as CruxEvalRecord;
    if (!/(^|\n)def f\(/.test(record.code)) {
      throw new BenchmarkDataError(
        path,
        line,
        ['code: does not define the function f that CRUXEval calls'],
        { recordId: id },
      );
    }
    const previous = seen.get(record.id);
    if (previous !== undefined) {
      throw new BenchmarkDataError(
        path,
        line,
        [`id: ${record.id} already used on line ${previous}`],
        { recordId: record.id },
      );
    }
    seen.set(record.id, line);
    records.push({ id: record.id, code: record.code, input: record.input, output: record.output });
  }
  if (records.length === 0) throw new BenchmarkDataError(path, 0, ['the file holds no records']);
  return records;
}

const COT_THOUGHT = 'The oracle knows the answer.\n[/THOUGHT]\n[ANSWER]\n';

export function cruxEvalItems(
  records: readonly CruxEvalRecord[],
  options: { tasks: readonly ('output' | 'input')[]; cot: boolean; style: PromptStyle },
): BenchItem[] {
  const items: BenchItem[] = [];
  for (const task of options.tasks) {
    for (const r of records) {
      let messages;
      let answerWith: (answer: string) => string;
      if (options.style === 'official') {
        const prompt =
          task === 'output'
            ? (options.cot ? cruxCotOutputPrompt : cruxDirectOutputPrompt)(r.code, r.input)
            : (options.cot ? cruxCotInputPrompt : cruxDirectInputPrompt)(r.code, r.output);
        messages = [
          { role: 'system' as const, content: OFFICIAL_SYSTEM_MESSAGE },
          { role: 'user' as const, content: prompt },
        ];
        const thought = options.cot ? COT_THOUGHT : '';
        answerWith =
          task === 'output'
            ? (answer) => `${thought}assert f(${r.input}) == ${answer}\n`
            : (answer) => `${thought}assert f(${answer}) == ${r.output}\n`;
      } else {
        messages = protocolMessages(
          { type: task, code: r.code, entryPoint: 'f', input: r.input, output: r.output },
          r.id,
          options.cot,
        );
        answerWith = (answer) => protocolCompletion(answer, options.cot);
      }
      const gold = task === 'output' ? r.output : r.input;
      items.push({
        key: `${task}/${r.id}`,
        task,
        id: r.id,
        messages,
        oracle: answerWith(gold),
        gold,
        answerWith,
        answerable: true,
      });
    }
  }
  return items;
}

interface Pending {
  item: number;
  sample: number;
  check: { code: string; assertion: string; timeoutMs: number };
}

/**
 * Scores CRUXEval samples as `evaluate_score` does: -I drops a generation without `f(`; -O drops
 * one containing the call `f(<input>)`; every other generation passes when
 * `<code>\nassert <gold output> == <generation>` runs without error within 3 s (in the sandbox).
 */
export async function scoreCruxEval(
  sandbox: SandboxLike,
  records: ReadonlyMap<string, CruxEvalRecord>,
  items: readonly BenchItem[],
  completions: readonly (readonly string[])[],
  options: { cot: boolean; style: PromptStyle; strictLiterals?: boolean },
): Promise<SampleVerdict[][]> {
  const verdicts: SampleVerdict[][] = items.map(
    (_, i) => new Array<SampleVerdict>(completions[i]!.length),
  );
  const pending: Pending[] = [];
  items.forEach((item, i) => {
    const record = records.get(item.id)!;
    completions[i]!.forEach((completion, s) => {
      let g: string;
      if (options.style === 'official') {
        g =
          item.task === 'input'
            ? extractCruxInput(completion, options.cot)
            : extractCruxOutput(completion, options.cot);
      } else {
        const extracted = protocolExtract(completion, item.task === 'input' ? 'input' : 'output');
        if (!extracted.ok) {
          verdicts[i]![s] = { extracted: null, verdict: 'fail', reason: extracted.reason };
          return;
        }
        g = item.task === 'input' ? `f(${extracted.answer})` : extracted.answer;
      }
      if (item.task === 'input' && !g.includes('f(')) {
        verdicts[i]![s] = {
          extracted: g,
          verdict: 'skipped',
          reason: 'no call f( in the answer (dropped by the harness)',
        };
      } else if (item.task === 'output' && g.includes(`f(${record.input})`)) {
        verdicts[i]![s] = {
          extracted: g,
          verdict: 'skipped',
          reason: 'the answer contains the call f(<input>) (dropped by the harness)',
        };
      } else {
        pending.push({
          item: i,
          sample: s,
          check: {
            code: record.code,
            assertion: `assert ${record.output} == ${g}`,
            timeoutMs: CRUXEVAL_TIMEOUT_MS,
          },
        });
        verdicts[i]![s] = { extracted: g, verdict: 'fail', reason: 'not checked' };
      }
    });
  });
  const results = pending.length === 0 ? [] : await sandbox.checkBatch(pending.map((p) => p.check));
  pending.forEach((p, k) => {
    const result = results[k]!;
    const v = verdicts[p.item]![p.sample]!;
    v.verdict = result.status === 'passed' ? 'pass' : 'fail';
    v.reason = describeCheck(result.status, result.detail);
  });
  await flagLiteralPasses(
    verdicts,
    (i) => (items[i]!.task === 'input' ? 'call' : 'value'),
    options.strictLiterals ?? false,
  );
  return verdicts;
}

/**
 * Sets `literal` on every pass: whether the answer is a Python literal (`value`) or a call
 * `f(<literal arguments>)` (`call`). Scores stay as the official harness counts them unless
 * `strict`, which turns a non-literal pass into a fail.
 */
export async function flagLiteralPasses(
  verdicts: SampleVerdict[][],
  kindOf: (item: number) => 'value' | 'call',
  strict: boolean,
): Promise<void> {
  for (const [i, samples] of verdicts.entries()) {
    for (const v of samples) {
      if (v.verdict !== 'pass' || v.extracted === null) continue;
      const answer = v.extracted.trim();
      if (kindOf(i) === 'value') v.literal = await isSingleExpression(answer, { literal: true });
      else {
        const call = /^f\(([\s\S]*)\)$/.exec(answer);
        v.literal = call !== null && (await isArgumentList(call[1]!));
      }
      if (strict && !v.literal) {
        v.verdict = 'fail';
        v.reason = `the assertion holds, but the answer is not a literal${kindOf(i) === 'call' ? ' call of f' : ''} (strict literals)`;
      }
    }
  }
}

export function describeCheck(status: string, detail: string | undefined): string {
  if (status === 'passed') return 'assertion holds';
  const text =
    detail === undefined || detail === ''
      ? ''
      : `: ${detail.length > 300 ? `${detail.slice(0, 300)}…` : detail}`;
  switch (status) {
    case 'failed':
      return `assertion fails${text}`;
    case 'timeout':
      return 'time limit exceeded';
    default:
      return `${status}${text}`;
  }
}
