import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { renderMarkdownReport, type BenchmarkSummary } from '@codereasoner/bench';
import { TASK_TYPES } from '@codereasoner/data';
import { formatSeconds } from './progress.js';
import { STAGES, type RunDirectory, type StageMarker, type StageName } from './run-dir.js';
import type { ModelEvaluation } from './stages.js';

export interface RunSummary {
  run: string;
  stages: { stage: StageName; seconds: number; finishedAt: string }[];
  totalSeconds: number;
  evaluation: ModelEvaluation[];
  evalTasks: number | undefined;
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
    const { items: _items, ...record } = JSON.parse(
      await readFile(path, 'utf8'),
    ) as ModelEvaluation & { items?: unknown };
    evaluation.push(record);
  }
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
    evalTasks: markers.eval?.figures.tasks as number | undefined,
    benchmarks,
    artifacts,
    figures,
  };
}

function isBenchmarkKey(key: string): boolean {
  return /^(cruxeval|livecodebench|reval)$/.test(key);
}

function percent(value: number | undefined): string {
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
    const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
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

export function accuracyTable(summary: RunSummary, markdown: boolean): string {
  const header = ['model', ...TASK_TYPES, 'overall'];
  const rows = summary.evaluation.map((e) => [
    e.model,
    ...TASK_TYPES.map((t) => percent(e.accuracy[t])),
    percent(e.overall),
  ]);
  return table(header, rows, markdown);
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

/** What `cr run-all` prints at the end. */
export function renderTerminalSummary(summary: RunSummary, reportPath: string): string {
  const parts = [
    summary.evaluation.length > 0
      ? `Held-out accuracy (%)${summary.evalTasks ? `, ${summary.evalTasks} tasks` : ''}:\n${accuracyTable(summary, false)}`
      : 'Held-out accuracy: no evaluation yet (the eval stage has not run).',
    '',
    timingTable(summary, false),
    '',
    artifactTable(summary, false),
  ];
  for (const bench of summary.benchmarks) {
    const scores = Object.entries(bench.headline)
      .map(([name, value]) => `${name} ${value === undefined ? '–' : value.toFixed(1)}`)
      .join(', ');
    parts.push('', `${bench.benchmark}: ${scores}`);
  }
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
      ? `Base (untrained), SFT and GRPO models on the same ${summary.evalTasks ?? ''} held-out tasks, verified by execution.\n\n${accuracyTable(summary, true)}`
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
