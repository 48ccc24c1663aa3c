import { meanPassAtK } from './pass-at-k.js';
import { incrementalConsistency, type ConsistencyPoint } from './reval/items.js';
import type { TaskBaselines } from './baselines.js';
import type { BenchmarkName, ChatMessage, Verdict } from './types.js';

/** One line of `items.jsonl`: a question, every sample's completion and what scoring made of it. */
export interface ItemRecord {
  key: string;
  task: string;
  id: string;
  group?: string;
  answerable: boolean;
  prompt: ChatMessage[];
  samples: {
    completion: string;
    finishReason: 'stop' | 'length';
    extracted: string | null;
    verdict: Verdict;
    reason: string;
    /** Present (false) on a pass whose answer is an expression, not a literal. */
    literal?: false;
  }[];
  /** Generations the harness counts (skipped ones dropped, per each benchmark's rule) and passes among them. */
  n: number;
  c: number;
}

export interface TaskMetrics {
  task: string;
  /** Column name used in reports, e.g. `CRUXEval-O`. */
  label: string;
  items: number;
  samples: number;
  /** pass@1 ×100 (CRUXEval, LiveCodeBench) or accuracy ×100 (REval); undefined without items. */
  score: number | undefined;
  /** pass@5 ×100, reported when every item has at least 5 samples. */
  passAt5?: number;
  passedSamples: number;
  skippedSamples: number;
  /** Items no answer can pass under the official rules (counted, as the official harness does). */
  unanswerable: number;
  /** Passed samples whose answer is an expression, not a literal (CRUXEval, LiveCodeBench). */
  nonLiteralPasses: number;
  /** REval coverage: the harness's other metrics (×100), positive = "executed". */
  coverage?: { accuracy: number; precision: number; recall: number; f1: number };
}

/** The paper's published rows (CodeReasoner, arXiv 2507.17548, Table 2). */
export const PAPER_ROWS: readonly {
  model: string;
  cruxevalO: number;
  cruxevalI: number;
  livecodebench: number;
  revalAverage: number;
}[] = [
  {
    model: 'CodeReasoner-7B',
    cruxevalO: 85.6,
    cruxevalI: 86.3,
    livecodebench: 81.0,
    revalAverage: 72.3,
  },
  {
    model: 'CodeReasoner-14B',
    cruxevalO: 91.2,
    cruxevalI: 86.8,
    livecodebench: 86.6,
    revalAverage: 81.1,
  },
  { model: 'GPT-4o', cruxevalO: 90.5, cruxevalI: 80.6, livecodebench: 84.8, revalAverage: 77.3 },
];

const LABELS: Record<BenchmarkName, Record<string, string>> = {
  cruxeval: { output: 'CRUXEval-O', input: 'CRUXEval-I' },
  livecodebench: { output: 'LCB execution' },
  reval: {
    coverage: 'REval coverage',
    state: 'REval state',
    path: 'REval path',
    output: 'REval output',
  },
};

/** Applies each benchmark's counting rule to one item's sample verdicts. */
export function officialCount(
  benchmark: BenchmarkName,
  verdicts: readonly Verdict[],
): { n: number; c: number } {
  const c = verdicts.filter((v) => v === 'pass').length;
  const kept = verdicts.filter((v) => v !== 'skipped').length;
  switch (benchmark) {
    case 'cruxeval':
      // evaluate_score: skipped generations are dropped; a sample with no pass is reset to all-False over n.
      return { n: c === 0 ? verdicts.length : kept, c };
    case 'livecodebench':
      // Dropped generations leave the denominator; only when all are dropped is the sample all-False.
      return { n: kept === 0 ? verdicts.length : kept, c };
    case 'reval':
      return { n: verdicts.length, c };
  }
}

export function taskMetrics(
  benchmark: BenchmarkName,
  task: string,
  records: readonly ItemRecord[],
): TaskMetrics {
  const samples = records.reduce((sum, r) => sum + r.samples.length, 0);
  const metrics: TaskMetrics = {
    task,
    label: LABELS[benchmark][task] ?? `${benchmark} ${task}`,
    items: records.length,
    samples,
    score: meanPassAtK(records, 1),
    passedSamples: records.reduce(
      (sum, r) => sum + r.samples.filter((s) => s.verdict === 'pass').length,
      0,
    ),
    skippedSamples: records.reduce(
      (sum, r) => sum + r.samples.filter((s) => s.verdict === 'skipped').length,
      0,
    ),
    unanswerable: records.filter((r) => !r.answerable).length,
    nonLiteralPasses: records.reduce(
      (sum, r) => sum + r.samples.filter((s) => s.verdict === 'pass' && s.literal === false).length,
      0,
    ),
  };
  if (benchmark !== 'reval' && records.length > 0 && records.every((r) => r.samples.length >= 5)) {
    metrics.passAt5 = meanPassAtK(records, 5);
  }
  if (benchmark === 'reval' && task === 'coverage' && records.length > 0) {
    let tp = 0;
    let tn = 0;
    let fp = 0;
    let fn = 0;
    for (const r of records) {
      for (const s of r.samples) {
        const predicted = s.extracted === 'YES';
        const correct = s.verdict === 'pass';
        if (predicted && correct) tp += 1;
        else if (!predicted && correct) tn += 1;
        else if (predicted && !correct) fp += 1;
        else fn += 1;
      }
    }
    const total = tp + tn + fp + fn;
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    metrics.coverage = {
      accuracy: total > 0 ? (100 * (tp + tn)) / total : 0,
      precision: 100 * precision,
      recall: 100 * recall,
      f1: precision + recall > 0 ? (100 * 2 * precision * recall) / (precision + recall) : 0,
    };
  }
  return metrics;
}

/**
 * REval's incremental consistency over the probe points whose coverage, state and path items and
 * whose group's output item were all run; averaged over sample indices when n > 1.
 */
export function revalConsistency(records: readonly ItemRecord[]): {
  score: number | undefined;
  points: number;
} {
  const byKey = new Map(records.map((r) => [r.key, r]));
  const probes = records.filter((r) => r.task === 'coverage');
  const aligned: { c: ItemRecord; s: ItemRecord; p: ItemRecord; o: ItemRecord }[] = [];
  for (const c of probes) {
    const rest = c.key.slice('coverage/'.length);
    const s = byKey.get(`state/${rest}`);
    const p = byKey.get(`path/${rest}`);
    const o = c.group === undefined ? undefined : byKey.get(`output/${c.group}`);
    if (s !== undefined && p !== undefined && o !== undefined) aligned.push({ c, s, p, o });
  }
  if (aligned.length === 0) return { score: undefined, points: 0 };
  const n = Math.min(
    ...aligned.flatMap(({ c, s, p, o }) => [
      c.samples.length,
      s.samples.length,
      p.samples.length,
      o.samples.length,
    ]),
  );
  if (n === 0) return { score: undefined, points: aligned.length };
  let total = 0;
  for (let j = 0; j < n; j += 1) {
    const points: ConsistencyPoint[] = aligned.map(({ c, s, p, o }) => ({
      coverage: c.samples[j]!.verdict === 'pass',
      state: s.samples[j]!.verdict === 'pass',
      path: p.samples[j]!.verdict === 'pass',
      output: o.samples[j]!.verdict === 'pass',
    }));
    total += incrementalConsistency(points)!;
  }
  return { score: total / n, points: aligned.length };
}

export interface ExcludedEntry {
  id: string;
  tasks: string[];
  /** Questions of each task that were left out. */
  questions: number;
  reason: string;
}

/** The settings and results of one benchmark run (`summary.json`). */
export interface BenchmarkSummary {
  benchmark: BenchmarkName;
  model: string;
  settings: {
    promptStyle: 'official' | 'protocol';
    cot: boolean;
    /** Non-literal passes counted as fails (false: the official rule). */
    strictLiterals: boolean;
    n: number;
    temperature: number;
    topP: number | undefined;
    maxTokens: number;
    seed: number;
    tasks: string[];
    ids: string[] | undefined;
    limit: number | undefined;
    stop: string[] | undefined;
  };
  dataFiles: { path: string; sha256: string; bytes: number }[];
  packages: Record<string, string>;
  runtime: { node: string; platform: string };
  startedAt: string;
  finishedAt: string;
  /** Wall time of this invocation (a resumed run counts only its own part). */
  durationMs: number;
  items: { total: number; resumed: number; scoredNow: number };
  tasks: Record<string, TaskMetrics>;
  /** The figure(s) set beside the paper's rows. */
  headline: Record<string, number | undefined>;
  /** CRUXEval and LiveCodeBench: constant-answer baselines per task (see `constantBaselines`). */
  baselines?: Record<string, TaskBaselines>;
  reval?: {
    average: number | undefined;
    consistency: number | undefined;
    consistencyPoints: number;
  };
  livecodebenchIndex?: {
    path: string;
    complete: boolean;
    expected: number;
    found: number;
    missing: number;
    unexpected: number;
    mismatched: number;
  };
  excluded: ExcludedEntry[];
  notes: string[];
  outputs: { items: string; summary: string; report: string };
}

function fmt(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(1);
}

/**
 * A Markdown report: the evaluated model beside the paper's rows (one row per model, the four
 * headline columns), then a per-task breakdown of every given benchmark run.
 */
export function renderMarkdownReport(summaries: readonly BenchmarkSummary[]): string {
  const by = (b: BenchmarkName) => summaries.find((s) => s.benchmark === b);
  const crux = by('cruxeval');
  const lcb = by('livecodebench');
  const reval = by('reval');
  const models = [...new Set(summaries.map((s) => s.model))];
  const lines: string[] = [];
  lines.push(`# Code-reasoning benchmarks: ${models.join(', ') || 'no runs'}`, '');
  lines.push(
    '| model | CRUXEval-O | CRUXEval-I | LCB execution | REval avg |',
    '|---|---:|---:|---:|---:|',
  );
  for (const row of PAPER_ROWS) {
    lines.push(
      `| ${row.model} (paper) | ${fmt(row.cruxevalO)} | ${fmt(row.cruxevalI)} | ${fmt(row.livecodebench)} | ${fmt(row.revalAverage)} |`,
    );
  }
  for (const model of models) {
    const of = (s: BenchmarkSummary | undefined) =>
      s !== undefined && s.model === model ? s : undefined;
    lines.push(
      `| **${model}** (this run) | ${fmt(of(crux)?.headline['CRUXEval-O'])} | ${fmt(of(crux)?.headline['CRUXEval-I'])} | ` +
        `${fmt(of(lcb)?.headline['LCB execution'])} | ${fmt(of(reval)?.headline['REval avg'])} |`,
    );
  }
  lines.push('');
  for (const s of summaries) {
    const st = s.settings;
    lines.push(`## ${s.benchmark} — ${s.model}`, '');
    lines.push(
      `Prompts: ${st.promptStyle}${st.cot ? ' + CoT' : ' (direct)'}${st.strictLiterals ? '; strict literals (non-literal answers fail)' : ''}; n = ${st.n}, temperature ${st.temperature}` +
        `${st.topP === undefined ? '' : `, top_p ${st.topP}`}, max tokens ${st.maxTokens}` +
        `${st.ids === undefined ? '' : `; ${st.ids.length} selected records`}${st.limit === undefined ? '' : `; first ${st.limit} records`}.`,
      '',
    );
    lines.push(
      '| task | items | samples | score | pass@5 | passed samples | skipped | unanswerable |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const t of Object.values(s.tasks)) {
      lines.push(
        `| ${t.label} | ${t.items} | ${t.samples} | ${fmt(t.score)} | ${fmt(t.passAt5)} | ${t.passedSamples} | ${t.skippedSamples} | ${t.unanswerable} |`,
      );
    }
    const baselines = Object.entries(s.baselines ?? {});
    if (baselines.length > 0) {
      const code = (answer: string) =>
        `\`${answer.length > 40 ? `${answer.slice(0, 39)}…` : answer}\``.replace(/\n/g, ' ');
      lines.push(
        '',
        `Constant baselines (one answer to every question, scored the same way): ${baselines
          .map(([task, b]) => {
            const label = s.tasks[task]?.label ?? task;
            return `${label}: the most frequent gold answer ${code(b.majority.answer)} (${b.majority.frequency} of ${b.majority.items} questions) scores ${fmt(b.majority.score)}; the best of the ${b.bestConstant.candidates} most frequent, ${code(b.bestConstant.answer)}, ${fmt(b.bestConstant.score)}`;
          })
          .join('. ')}.`,
      );
    }
    const nonLiteral = Object.values(s.tasks).filter((t) => t.nonLiteralPasses > 0);
    if (nonLiteral.length > 0) {
      lines.push(
        '',
        `Passes whose answer is an expression, not a literal (the official harness accepts them, as in \`x or True\`): ${nonLiteral
          .map((t) => `${t.label} ${t.nonLiteralPasses} of ${t.passedSamples}`)
          .join(', ')}.`,
      );
    }
    const cov = s.tasks.coverage?.coverage;
    if (cov !== undefined) {
      lines.push(
        '',
        `Coverage: accuracy ${fmt(cov.accuracy)}, precision ${fmt(cov.precision)}, recall ${fmt(cov.recall)}, F1 ${fmt(cov.f1)}.`,
      );
    }
    if (s.reval !== undefined) {
      lines.push(
        `REval average accuracy ${fmt(s.reval.average)}; incremental consistency ${fmt(s.reval.consistency)} over ${s.reval.consistencyPoints} probe points.`,
      );
    }
    if (s.livecodebenchIndex !== undefined) {
      const ix = s.livecodebenchIndex;
      lines.push(
        '',
        ix.complete
          ? `The export holds all ${ix.expected} indexed samples with matching question ids.`
          : `The export is **incomplete** against the id index: ${ix.found} records, ${ix.missing} missing, ${ix.unexpected} not in the index, ${ix.mismatched} with another question id.`,
      );
    }
    if (s.excluded.length > 0) {
      const questions = s.excluded.reduce((sum, e) => sum + e.questions, 0);
      lines.push(
        '',
        `Left out (cannot run in this sandbox; not in any denominator): ${s.excluded.length} groups, ${questions} questions.`,
      );
      const reasons = new Map<string, string[]>();
      for (const e of s.excluded) reasons.set(e.reason, [...(reasons.get(e.reason) ?? []), e.id]);
      for (const [reason, ids] of reasons) lines.push(`- ${reason}: ${ids.join(', ')}`);
    }
    for (const note of s.notes) lines.push('', note);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}
