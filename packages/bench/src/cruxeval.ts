import { BenchmarkDataError } from './errors.js';
import { extractCruxInput, extractCruxOutput } from './extract.js';
import { readDataJsonl } from './jsonl.js';
import {
  OFFICIAL_SYSTEM_MESSAGE,
  cruxCotInputPrompt,
  cruxCotOutputPrompt,
  cruxDirectInputPrompt,
  cruxDirectOutputPrompt,
} from './official-prompts.js';
import { protocolCompletion, protocolExtract, protocolMessages } from './protocol.js';
import type { SandboxLike } from './types.js';
import { cruxEvalRecordSchema, validate, type CruxEvalRecord } from './schemas.js';
import type { BenchItem, PromptStyle, SampleVerdict } from './types.js';

/** The harness's time limit per check (`check_correctness(..., 3)`). */
export const CRUXEVAL_TIMEOUT_MS = 3000;

/** Reads and validates `cruxeval.jsonl` (800 records; the file has no final newline). */
export async function loadCruxEval(path: string): Promise<CruxEvalRecord[]> {
  const records: CruxEvalRecord[] = [];
  const seen = new Map<string, number>();
  for (const { line, value } of await readDataJsonl(path, 'CRUXEval data file')) {
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

/** One answer to score: the official assertion and what the judge needs for the same answer. */
export interface PendingAnswer {
  item: number;
  sample: number;
  code: string;
  /** The official harness's check, `assert <gold output> == <answer>`. */
  assertion: string;
  answer: string;
  /** `value`: a literal (-O, LiveCodeBench); `call`: `f(<literal arguments>)` (-I). */
  form: 'value' | 'call';
  goldOutput: string;
  timeoutMs: number;
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
  return scoreSamples(
    sandbox,
    items,
    completions,
    options.strictLiterals ?? false,
    (item, completion) => {
      const record = records.get(item.id)!;
      let g: string;
      if (options.style === 'official') {
        g =
          item.task === 'input'
            ? extractCruxInput(completion, options.cot)
            : extractCruxOutput(completion, options.cot);
      } else {
        const extracted = protocolExtract(completion, item.task === 'input' ? 'input' : 'output');
        if (!extracted.ok)
          return { verdict: { extracted: null, verdict: 'fail', reason: extracted.reason } };
        g = item.task === 'input' ? `f(${extracted.answer})` : extracted.answer;
      }
      if (item.task === 'input' && !g.includes('f('))
        return {
          verdict: {
            extracted: g,
            verdict: 'skipped',
            reason: 'no call f( in the answer (dropped by the harness)',
          },
        };
      if (item.task === 'output' && g.includes(`f(${record.input})`))
        return {
          verdict: {
            extracted: g,
            verdict: 'skipped',
            reason: 'the answer contains the call f(<input>) (dropped by the harness)',
          },
        };
      return {
        pending: {
          code: record.code,
          assertion: `assert ${record.output} == ${g}`,
          answer: g,
          form: item.task === 'input' ? 'call' : 'value',
          goldOutput: record.output,
          timeoutMs: CRUXEVAL_TIMEOUT_MS,
        },
      };
    },
  );
}

/** What one sample comes to before the sandbox: a verdict already, or an answer for the harness. */
export type SampleTriage =
  { verdict: SampleVerdict } | { pending: Omit<PendingAnswer, 'item' | 'sample'> };

/**
 * The scoring loop CRUXEval and LiveCodeBench share: `triage` each sample of each item (extraction
 * and the harness's drop rules, per benchmark), mark the answers that go on as 'not checked' until
 * `scorePending` has run them all in one batch, and give the verdicts per item and sample.
 */
export async function scoreSamples(
  sandbox: SandboxLike,
  items: readonly BenchItem[],
  completions: readonly (readonly string[])[],
  strict: boolean,
  triage: (item: BenchItem, completion: string) => SampleTriage,
): Promise<SampleVerdict[][]> {
  const verdicts: SampleVerdict[][] = items.map(
    (_, i) => new Array<SampleVerdict>(completions[i]!.length),
  );
  const pending: PendingAnswer[] = [];
  items.forEach((item, i) => {
    completions[i]!.forEach((completion, s) => {
      const outcome = triage(item, completion);
      if ('verdict' in outcome) {
        verdicts[i]![s] = outcome.verdict;
        return;
      }
      verdicts[i]![s] = {
        extracted: outcome.pending.answer,
        verdict: 'fail',
        reason: 'not checked',
      };
      pending.push({ item: i, sample: s, ...outcome.pending });
    });
  });
  await scorePending(sandbox, verdicts, pending, strict);
  return verdicts;
}

/**
 * Scores the answers that reach the harness. Official (default): the official assertion decides,
 * then every pass is judged again by the sandbox's judge (CPython parses the answer there; see
 * `JudgeRequest`) and flagged `literal: false` when the judge rejects it, so such passes are
 * counted (`nonLiteralPasses`). `strict`: the judge alone decides, as
 * for training rewards: the answer must be a literal (for -I a call `f(<literal arguments>)`) and
 * only its value is compared with the gold output; nothing of the answer's text runs.
 */
export async function scorePending(
  sandbox: SandboxLike,
  verdicts: SampleVerdict[][],
  pending: readonly PendingAnswer[],
  strict: boolean,
): Promise<void> {
  if (pending.length === 0) return;
  const judge = (p: PendingAnswer, golds: string[]) => ({
    code: p.code,
    answer: p.answer,
    answerForm: p.form,
    ...(p.form === 'call' ? { function: 'f' } : {}),
    golds,
    timeoutMs: p.timeoutMs,
  });
  if (strict) {
    const results = await sandbox.checkBatch(pending.map((p) => judge(p, [p.goldOutput])));
    pending.forEach((p, k) => {
      const result = results[k]!;
      const v = verdicts[p.item]![p.sample]!;
      v.literal = result.literal === true;
      v.verdict = result.status === 'passed' && v.literal ? 'pass' : 'fail';
      v.reason = v.literal
        ? describeCheck(result.status, result.detail)
        : `the answer is not a literal${p.form === 'call' ? ' call of f' : ''} (strict literals): ${result.detail ?? ''}`;
    });
    return;
  }
  const results = await sandbox.checkBatch(
    pending.map((p) => ({ code: p.code, assertion: p.assertion, timeoutMs: p.timeoutMs })),
  );
  const passed: PendingAnswer[] = [];
  pending.forEach((p, k) => {
    const result = results[k]!;
    const v = verdicts[p.item]![p.sample]!;
    v.verdict = result.status === 'passed' ? 'pass' : 'fail';
    v.reason = describeCheck(result.status, result.detail);
    if (v.verdict === 'pass') passed.push(p);
  });
  if (passed.length === 0) return;
  // The strict judge on the same answers: a pass it rejects is flagged, whether the answer is an
  // expression (`x or True`) or a literal the harness misreads (`'a', 0`, read as
  // `assert gold == 'a', 0`: an assertion with a message).
  const flags = await sandbox.checkBatch(passed.map((p) => judge(p, [p.goldOutput])));
  passed.forEach((p, k) => {
    const flag = flags[k]!;
    verdicts[p.item]![p.sample]!.literal = flag.literal === true && flag.status === 'passed';
  });
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
