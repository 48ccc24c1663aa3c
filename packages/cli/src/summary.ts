import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { renderMarkdownReport, type BenchmarkSummary } from '@codereasoner/bench';
import { BENCHMARK_NAMES, TASK_TYPES, type TaskType } from '@codereasoner/common';
import {
  BASELINE_NAMES,
  type AnswerDiversity,
  type BaselineName,
  type BaselineScore,
} from '@codereasoner/sft';
import { collectLevelAccuracy, levelGrid, type LevelAccuracy } from './levels.js';
import { formatSeconds } from './progress.js';
import {
  STAGES,
  readJsonIfExists,
  type RunDirectory,
  type StageMarker,
  type StageName,
} from './run-dir.js';
import { withDiversity, type BaselineRecord, type ModelEvaluation } from './stages.js';

export interface RunSummary {
  run: string;
  stages: { stage: StageName; seconds: number; finishedAt: string }[];
  totalSeconds: number;
  evaluation: ModelEvaluation[];
  /** The trivial baselines on the same held-out tasks (absent for runs evaluated before they existed). */
  baselines: BaselineRecord | undefined;
  evalTasks: number | undefined;
  /** Accuracy per difficulty level (generated corpora record each task's level). */
  levels?: LevelAccuracy;
  benchmarks: BenchmarkSummary[];
  artifacts: Record<string, string>;
  figures: Partial<Record<StageName, Record<string, unknown>>>;
}

export async function readMarkers(
  run: RunDirectory,
): Promise<Partial<Record<StageName, StageMarker>>> {
  const markers: Partial<Record<StageName, StageMarker>> = {};
  for (const stage of STAGES) {
    const marker = await run.marker(stage);
    if (marker) markers[stage] = marker;
  }
  return markers;
}

export async function collectSummary(run: RunDirectory): Promise<RunSummary> {
  const markers = await readMarkers(run);
  const evaluation: ModelEvaluation[] = [];
  for (const name of ['base', 'sft', 'grpo']) {
    const path = run.path('eval', `${name}.json`);
    if (!existsSync(path)) continue;
    const { items: _items, ...record } = withDiversity(
      JSON.parse(await readFile(path, 'utf8')) as Parameters<typeof withDiversity>[0],
    ) as ModelEvaluation & { items?: unknown };
    evaluation.push(record);
  }
  const baselineFile = await readJsonIfExists<BaselineRecord & { items?: unknown }>(
    run.path('eval', 'baselines.json'),
  );
  const { items: _baselineItems, ...baselines } = baselineFile ?? {};
  const benchmarks = Object.values(markers.bench?.figures ?? {}).filter(
    (value): value is BenchmarkSummary =>
      typeof value === 'object' && value !== null && 'benchmark' in value,
  );
  const artifacts: Record<string, string> = {};
  const figures: RunSummary['figures'] = {};
  for (const [stage, marker] of Object.entries(markers) as [StageName, StageMarker][]) {
    for (const [name, path] of Object.entries(marker.artifacts))
      artifacts[`${stage}.${name}`] = path;
    figures[stage] = Object.fromEntries(
      Object.entries(marker.figures).filter(([key]) => key !== 'models' && !isBenchmarkKey(key)),
    );
  }
  const stages = STAGES.flatMap((stage) => {
    const marker = markers[stage];
    return marker ? [{ stage, seconds: marker.seconds, finishedAt: marker.finishedAt }] : [];
  });
  return {
    run: run.root,
    stages,
    totalSeconds: stages.reduce((sum, s) => sum + s.seconds, 0),
    evaluation,
    baselines: baselineFile === undefined ? undefined : (baselines as BaselineRecord),
    evalTasks: markers.eval?.figures.tasks as number | undefined,
    levels: await collectLevelAccuracy(run),
    benchmarks,
    artifacts,
    figures,
  };
}

function isBenchmarkKey(key: string): boolean {
  return (BENCHMARK_NAMES as readonly string[]).includes(key);
}

/** A fraction as a percentage with one decimal; '–' where there is no value. */
export function percent(value: number | undefined): string {
  return value === undefined ? '–' : (100 * value).toFixed(1);
}

/** Rows of cells → aligned plain-text table (for the terminal) or a Markdown table. */
export function table(
  header: string[],
  rows: string[][],
  markdown: boolean,
  numeric = true,
): string {
  const right = (i: number) => numeric && i > 0;
  if (markdown) {
    // a `|` inside a cell (a baseline's answer can hold one) would end it
    const line = (cells: string[]) =>
      `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    return [
      line(header),
      line(header.map((_, i) => (right(i) ? '---:' : '---'))),
      ...rows.map(line),
    ].join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A header and rows of cells, rendered by `table` (terminal, Markdown) or the report's HTML. */
export interface Grid {
  header: string[];
  rows: string[][];
}

export const BASELINE_LABELS: Record<BaselineName, string> = {
  majority: 'majority (train)',
  bestConstant: 'best constant',
  random: 'random (train)',
};

/** The columns of every held-out accuracy table: the five task types, then overall. */
export type AccuracyColumn = TaskType | 'overall';
export const ACCURACY_COLUMNS: AccuracyColumn[] = [...TASK_TYPES, 'overall'];

/** A model's held-out accuracy (a fraction) in one column; undefined if it was not evaluated. */
export function modelAccuracy(
  summary: RunSummary,
  model: string,
  column: AccuracyColumn,
): number | undefined {
  const evaluation = summary.evaluation.find((e) => e.model === model);
  return evaluation === undefined ? undefined : columnAccuracy(evaluation, column);
}

/** The best trivial baseline's accuracy in one column; undefined without baselines. */
export function bestBaselineAccuracy(
  summary: RunSummary,
  column: AccuracyColumn,
): number | undefined {
  const baselines = summary.baselines;
  return baselines === undefined ? undefined : baselineScore(baselines, 'best', column)?.accuracy;
}

function baselineScore(
  baselines: BaselineRecord,
  name: BaselineName | 'best',
  column: AccuracyColumn,
): BaselineScore | undefined {
  if (column === 'overall') return baselines.overall[name];
  const type = baselines.byType[column];
  return type === undefined ? undefined : type[name];
}

/** An evaluation's accuracy (a fraction) in one column. */
function columnAccuracy(evaluation: ModelEvaluation, column: AccuracyColumn): number | undefined {
  return column === 'overall' ? evaluation.overall : evaluation.accuracy[column];
}

/** Held-out accuracy (%) of every model, then of every baseline and the best baseline per column. */
export function accuracyGrid(summary: RunSummary): Grid {
  const rows = summary.evaluation.map((e) => [
    e.model,
    ...ACCURACY_COLUMNS.map((column) => percent(columnAccuracy(e, column))),
  ]);
  const baselines = summary.baselines;
  if (baselines !== undefined) {
    for (const name of BASELINE_NAMES) {
      rows.push([
        `baseline: ${BASELINE_LABELS[name]}`,
        ...ACCURACY_COLUMNS.map((column) =>
          percent(baselineScore(baselines, name, column)?.accuracy),
        ),
      ]);
    }
    rows.push([
      'best baseline',
      ...ACCURACY_COLUMNS.map((column) =>
        percent(baselineScore(baselines, 'best', column)?.accuracy),
      ),
    ]);
  }
  return { header: ['model', ...ACCURACY_COLUMNS], rows };
}

function points(value: number | undefined, base: number | undefined): string {
  if (value === undefined || base === undefined) return '–';
  const lift = 100 * (value - base);
  const text = lift.toFixed(1);
  return lift >= 0 && text !== '-0.0' ? `+${text}` : text === '-0.0' ? '+0.0' : text;
}

/** Each model's accuracy minus the best baseline's, in percentage points (undefined without baselines). */
export function liftGrid(summary: RunSummary): Grid | undefined {
  const baselines = summary.baselines;
  if (baselines === undefined || summary.evaluation.length === 0) return undefined;
  return {
    header: ['model', ...ACCURACY_COLUMNS],
    rows: summary.evaluation.map((e) => [
      e.model,
      ...ACCURACY_COLUMNS.map((column) =>
        points(columnAccuracy(e, column), baselineScore(baselines, 'best', column)?.accuracy),
      ),
    ]),
  };
}

function diversityCell(diversity: AnswerDiversity | undefined): string {
  if (diversity === undefined) return '–';
  return `${diversity.distinct}/${diversity.items} ${Math.round(100 * diversity.top.share)}%`;
}

/** Per model: distinct answers / items and the share of its most frequent answer, per type and overall. */
export function diversityGrid(summary: RunSummary): Grid {
  return {
    header: ['model', ...ACCURACY_COLUMNS],
    rows: summary.evaluation.map((e) => [
      e.model,
      ...ACCURACY_COLUMNS.map((column) =>
        diversityCell(column === 'overall' ? e.diversity.overall : e.diversity.byType[column]),
      ),
    ]),
  };
}

/** Greedy word wrap for the terminal. */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

function shortAnswer(answer: string): string {
  if (answer === '') return '(empty)';
  const flat = answer.replace(/\s+/g, ' ');
  return flat.length > 28 ? `${flat.slice(0, 27)}…` : flat;
}

/** Per type: which answers the constant baselines gave, and which baseline was best. */
export function baselineAnswersGrid(summary: RunSummary): Grid | undefined {
  const baselines = summary.baselines;
  if (baselines === undefined) return undefined;
  return {
    header: [
      'type',
      'items',
      'majority answer (share of train)',
      'best constant (constants tried)',
      'best baseline',
    ],
    rows: TASK_TYPES.flatMap((type) => {
      const entry = baselines.byType[type];
      if (entry === undefined) return [];
      const majority = entry.majority;
      const best = entry.bestConstant;
      return [
        [
          type,
          String(entry.total),
          majority === undefined
            ? '– (no training task)'
            : `${shortAnswer(majority.answer)} (${Math.round((100 * majority.trainCount) / majority.trainTotal)}%)`,
          `${shortAnswer(best.answer)} (${best.candidates}${best.exhaustive ? ', exhaustive' : ''})`,
          BASELINE_LABELS[entry.best.baseline],
        ],
      ];
    }),
  };
}

/** What the baselines are, in one paragraph (the same words in every rendering). */
export function baselineLegend(summary: RunSummary): string {
  const baselines = summary.baselines;
  if (baselines === undefined)
    return 'No baselines recorded for this run (evaluated before they existed; `cr eval --force` evaluates it again with them).';
  return [
    'Baselines answer from the task type alone and are scored by the same verifier (execution) on the same items:',
    `majority = the most frequent answer of that type among the ${baselines.trainTasks} training tasks;`,
    'best constant = the one answer that scores best on these held-out items, an oracle and so an upper bound for any constant answer',
    '(exact for output, state, coverage and path: every held-out gold answer is tried; for input, the best of the golds and the most frequent training answers);',
    `random = a training answer of that type drawn for each item (seed ${baselines.seed}).`,
    'With few items per type the best constant is high by construction (each gold answer is right on its own item).',
    "Best baseline = the best of the three per type; its overall combines each type's best.",
    'Lift = model accuracy minus the best baseline, in points.',
    'Diversity = distinct answers / items and the share of the most frequent answer (no answer counts as one).',
  ].join(' ');
}

function gridTable(grid: Grid, markdown: boolean, numeric = true): string {
  return table(grid.header, grid.rows, markdown, numeric);
}

export function accuracyTable(summary: RunSummary, markdown: boolean): string {
  return gridTable(accuracyGrid(summary), markdown);
}

/** The held-out section: accuracy with baselines, lift over the best baseline, answer diversity. */
export function heldOutTables(summary: RunSummary, markdown: boolean): string {
  const title = (text: string) => (markdown ? `### ${text}` : `${text}:`);
  const parts = [accuracyTable(summary, markdown)];
  const lift = liftGrid(summary);
  if (lift !== undefined)
    parts.push('', title('Lift over the best baseline (points)'), '', gridTable(lift, markdown));
  parts.push(
    '',
    title('Answer diversity (distinct answers / items, share of the most frequent answer)'),
    '',
    gridTable(diversityGrid(summary), markdown),
  );
  if (summary.levels !== undefined && summary.levels.levels.length > 1)
    parts.push(
      '',
      title('Accuracy per difficulty level (%, tasks per level in the header)'),
      '',
      gridTable(levelGrid(summary.levels), markdown),
    );
  const answers = baselineAnswersGrid(summary);
  if (answers !== undefined)
    parts.push('', title('Baseline answers'), '', gridTable(answers, markdown, false));
  parts.push('', markdown ? baselineLegend(summary) : wrap(baselineLegend(summary), 100));
  return parts.join('\n').replace(/\n\n\n/g, '\n\n');
}

export function timingTable(summary: RunSummary, markdown: boolean): string {
  const rows = summary.stages.map((s) => [s.stage, formatSeconds(s.seconds)]);
  rows.push(['total', formatSeconds(summary.totalSeconds)]);
  return table(['stage', 'time'], rows, markdown);
}

export function artifactTable(summary: RunSummary, markdown: boolean): string {
  return table(
    ['artifact', 'path (in the run directory)'],
    Object.entries(summary.artifacts).map(([name, path]) => [name, path]),
    markdown,
    false,
  );
}

/**
 * One benchmark's headline scores, then its best constant-answer baseline per task when it has
 * them: `cruxeval: CRUXEval-O 12.0, CRUXEval-I 3.0 (best constant answer: CRUXEval-O 5.0, …)`.
 */
export function benchmarkLine(bench: BenchmarkSummary): string {
  const fixed = (value: number | undefined) => (value === undefined ? '–' : value.toFixed(1));
  const scores = Object.entries(bench.headline)
    .map(([name, value]) => `${name} ${fixed(value)}`)
    .join(', ');
  const baselines = Object.entries(bench.baselines ?? {})
    .map(([task, b]) => `${bench.tasks[task]?.label ?? task} ${fixed(b.bestConstant.score)}`)
    .join(', ');
  return `${bench.benchmark}: ${scores}${baselines === '' ? '' : ` (best constant answer: ${baselines})`}`;
}

/** What `cr run-all` prints at the end. */
export function renderTerminalSummary(summary: RunSummary, reportPath: string): string {
  const parts = [
    summary.evaluation.length > 0
      ? `Held-out accuracy (%)${summary.evalTasks ? `, ${summary.evalTasks} tasks` : ''}:\n${heldOutTables(summary, false)}`
      : 'Held-out accuracy: no evaluation yet (the eval stage has not run).',
    '',
    timingTable(summary, false),
    '',
    artifactTable(summary, false),
  ];
  for (const bench of summary.benchmarks) parts.push('', benchmarkLine(bench));
  parts.push('', `Report: ${reportPath}`);
  return parts.join('\n');
}

export function renderMarkdownSummary(summary: RunSummary): string {
  const parts = [
    `# CodeReasoner run: ${summary.run}`,
    '',
    `## Held-out accuracy (%)`,
    '',
    summary.evaluation.length > 0
      ? `Base (untrained), SFT and GRPO models on the same ${summary.evalTasks ?? ''} held-out tasks, verified by execution, beside the trivial baselines.\n\n${heldOutTables(summary, true)}`
      : 'No evaluation yet.',
    '',
    '## Time per stage',
    '',
    timingTable(summary, true),
    '',
    '## Artifacts',
    '',
    artifactTable(summary, true),
  ];
  if (summary.benchmarks.length > 0) {
    parts.push('', '## Benchmarks', '', renderMarkdownReport(summary.benchmarks));
  }
  return `${parts.join('\n')}\n`;
}
