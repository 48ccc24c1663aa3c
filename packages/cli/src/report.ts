import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PAPER_ROWS } from '@codereasoner/bench';
import { TASK_TYPES, writeFileAtomic } from '@codereasoner/data';
import { escapeHtml, lineChart, type Series } from './charts.js';
import { formatSeconds } from './progress.js';
import { RunDirectory } from './run-dir.js';
import {
  accuracyGrid,
  baselineAnswersGrid,
  baselineLegend,
  collectSummary,
  diversityGrid,
  liftGrid,
  renderMarkdownSummary,
  type Grid,
  type RunSummary,
} from './summary.js';

type MetricRow = Record<string, unknown>;

/** Reads a metrics JSONL file, skipping a torn last line (a run killed while writing). */
export async function readMetrics(path: string): Promise<MetricRow[]> {
  if (!existsSync(path)) return [];
  const rows: MetricRow[] = [];
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (line.trim() === '') continue;
    try {
      rows.push(JSON.parse(line) as MetricRow);
    } catch {
      // a partial last line; the trainer rewrites it on resume
    }
  }
  return rows;
}

function series(rows: MetricRow[], name: string, x: string, y: string): Series {
  const points: [number, number][] = [];
  for (const row of rows) {
    const xv = row[x];
    const yv = row[y];
    if (typeof xv === 'number' && typeof yv === 'number') points.push([xv, yv]);
  }
  return { name, points };
}

export interface ReportFiles {
  html: string;
  markdown: string;
  json: string;
}

/** Writes report.html (self-contained, inline SVG charts), summary.md and summary.json into the run directory. */
export async function writeReport(runDir: string): Promise<ReportFiles> {
  const run = new RunDirectory(runDir);
  const summary = await collectSummary(run);
  const sftMetrics = await readMetrics(
    run.path(summary.artifacts['sft.metrics'] ?? 'sft/train/metrics.jsonl'),
  );
  const grpoMetrics = await readMetrics(
    run.path(summary.artifacts['grpo.metrics'] ?? 'grpo/train/metrics.jsonl'),
  );
  const files: ReportFiles = {
    html: run.path('report.html'),
    markdown: run.path('summary.md'),
    json: run.path('summary.json'),
  };
  await writeFileAtomic(files.markdown, renderMarkdownSummary(summary));
  await writeFileAtomic(files.json, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFileAtomic(files.html, renderHtml(summary, sftMetrics, grpoMetrics));
  return files;
}

function htmlTable(header: string[], rows: string[][]): string {
  const head = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const num = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1));

export function renderHtml(summary: RunSummary, sft: MetricRow[], grpo: MetricRow[]): string {
  const steps = sft.filter((row) => row.kind === 'step');
  const evals = sft.filter((row) => row.kind === 'eval');
  const evalSeries: Series[] = [
    ...TASK_TYPES.map((type) => ({
      name: type,
      points: evals.flatMap((row) => {
        const value = (row.accuracy as Record<string, number> | undefined)?.[type];
        return typeof value === 'number' && typeof row.step === 'number'
          ? [[row.step, value] as [number, number]]
          : [];
      }),
    })),
    series(evals, 'overall', 'step', 'overall'),
  ].filter((s) => s.points.length > 0);
  const charts = [
    lineChart({
      title: 'SFT loss',
      xLabel: 'step',
      yLabel: 'loss per assistant token',
      series: [series(steps, 'train loss', 'step', 'loss')],
    }),
    lineChart({
      title: 'SFT held-out accuracy',
      xLabel: 'step',
      yLabel: 'accuracy',
      series: evalSeries,
    }),
    lineChart({
      title: 'GRPO reward',
      xLabel: 'step',
      yLabel: 'mean reward',
      series: [series(grpo, 'reward', 'step', 'reward')],
    }),
    lineChart({
      title: 'GRPO KL to reference',
      xLabel: 'step',
      yLabel: 'KL (k3)',
      series: [series(grpo, 'kl', 'step', 'kl')],
    }),
    lineChart({
      title: 'GRPO completion length',
      xLabel: 'step',
      yLabel: 'tokens',
      series: [
        series(grpo, 'mean', 'step', 'completions/mean_length'),
        series(grpo, 'max', 'step', 'completions/max_length'),
      ],
    }),
  ];
  const grid = (value: Grid | undefined, title: string) =>
    value === undefined
      ? ''
      : `<h3>${escapeHtml(title)}</h3>\n${htmlTable(value.header, value.rows)}`;
  const accuracy =
    summary.evaluation.length === 0
      ? '<p class="note">No evaluation yet (the eval stage has not run).</p>'
      : [
          htmlTable(accuracyGrid(summary).header, accuracyGrid(summary).rows),
          grid(liftGrid(summary), 'Lift over the best baseline (points)'),
          grid(
            diversityGrid(summary),
            'Answer diversity (distinct answers / items, share of the most frequent answer)',
          ),
          grid(baselineAnswersGrid(summary), 'Baseline answers'),
          `<p class="note">${escapeHtml(baselineLegend(summary))}</p>`,
        ]
          .filter((part) => part !== '')
          .join('\n');
  const timing = htmlTable(
    ['stage', 'time'],
    [
      ...summary.stages.map((s) => [s.stage, formatSeconds(s.seconds)]),
      ['total', formatSeconds(summary.totalSeconds)],
    ],
  );
  const constant = (benchmark: string, task: string) =>
    summary.benchmarks.find((b) => b.benchmark === benchmark)?.baselines?.[task]?.bestConstant
      .score;
  const benchmarkRows = summary.benchmarks.length
    ? [
        ...PAPER_ROWS.map((row) => [
          `${row.model} (paper)`,
          num(row.cruxevalO),
          num(row.cruxevalI),
          num(row.livecodebench),
          num(row.revalAverage),
        ]),
        [
          `${summary.benchmarks[0]!.model} (this run)`,
          num(summary.benchmarks.find((b) => b.benchmark === 'cruxeval')?.headline['CRUXEval-O']),
          num(summary.benchmarks.find((b) => b.benchmark === 'cruxeval')?.headline['CRUXEval-I']),
          num(
            summary.benchmarks.find((b) => b.benchmark === 'livecodebench')?.headline[
              'LCB execution'
            ],
          ),
          num(summary.benchmarks.find((b) => b.benchmark === 'reval')?.headline['REval avg']),
        ],
        ...(summary.benchmarks.some((b) => b.baselines !== undefined)
          ? [
              [
                'best constant answer (same items)',
                num(constant('cruxeval', 'output')),
                num(constant('cruxeval', 'input')),
                num(constant('livecodebench', 'output')),
                '–',
              ],
            ]
          : []),
      ]
    : [];
  const benchmarks = benchmarkRows.length
    ? `<h2>Benchmarks</h2>${htmlTable(['model', 'CRUXEval-O', 'CRUXEval-I', 'LCB execution', 'REval avg'], benchmarkRows)}
       <p class="note">This run's model is small and trained from scratch in minutes; the paper's rows are 7B/14B models. Subsets: ${escapeHtml(
         summary.benchmarks.map((b) => `${b.benchmark} ${b.items.total} items`).join(', '),
       )}.</p>`
    : '<h2>Benchmarks</h2><p class="note">Not run (give <code>--benchmarks &lt;dir&gt;</code>).</p>';
  const artifacts = htmlTable(['artifact', 'path'], Object.entries(summary.artifacts));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CodeReasoner run report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#111;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f4f6}.charts{display:flex;flex-wrap:wrap;gap:1rem}
.note{color:#555;font-size:.9rem}code{background:#f3f4f6;padding:0 .2rem}
</style></head><body>
<h1>CodeReasoner run report</h1>
<p class="note">Run directory <code>${escapeHtml(summary.run)}</code>; generated ${escapeHtml(new Date().toISOString())}.</p>
<h2>Held-out accuracy (%)</h2>
<p class="note">Same ${summary.evalTasks ?? ''} held-out tasks for every model and baseline; answers verified by execution in the sandbox.</p>
${accuracy}
<h2>Training</h2>
<div class="charts">${charts.join('\n')}</div>
${benchmarks}
<h2>Time per stage</h2>
${timing}
<h2>Artifacts</h2>
${artifacts}
</body></html>
`;
}
