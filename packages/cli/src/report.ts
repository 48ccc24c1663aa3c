import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { PAPER_ROWS } from '@codereasoner/bench';
import { TASK_TYPES, writeFileAtomic, type TaskType } from '@codereasoner/common';
import { readJsonlAll, renderPrompt, taskRecordSchema } from '@codereasoner/protocol';
import type { EvaluationItem } from '@codereasoner/sft';
import { escapeHtml, lineChart, type Series } from './charts.js';
import { levelGrid, taskLevel } from './levels.js';
import { formatSeconds } from './progress.js';
import { RunDirectory, readJsonIfExists } from './run-dir.js';
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
  const samples = await collectSamples(run, summary);
  await writeFileAtomic(files.html, renderHtml(summary, sftMetrics, grpoMetrics, samples));
  return files;
}

export function htmlTable(header: string[], rows: string[][]): string {
  const head = header.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const num = (v: number | undefined) => (v === undefined ? '–' : v.toFixed(1));

/** One held-out item of the final model, as the report's sample table shows it. */
export interface SampleRow {
  type: TaskType;
  level: string;
  prompt: string;
  completion: string;
  answer: string | null;
  gold: string;
  correct: boolean;
  reason: string;
}

/**
 * Up to `perType` held-out items per task type of the final model (GRPO, else SFT), in the
 * evaluation's order: the prompt's question as the model saw it, its completion and the verdict.
 */
export async function collectSamples(
  run: RunDirectory,
  summary: RunSummary,
  perType = 2,
): Promise<{ model: string; rows: SampleRow[] } | undefined> {
  const model = ['grpo', 'sft'].find((name) => summary.evaluation.some((e) => e.model === name));
  const splitPath = run.path('data', 'tasks', 'eval.jsonl');
  if (model === undefined || !existsSync(splitPath)) return undefined;
  const { items } = JSON.parse(await readFile(run.path('eval', `${model}.json`), 'utf8')) as {
    items?: EvaluationItem[];
  };
  if (items === undefined) return undefined;
  const config = await readJsonIfExists<{ sft?: { reasoning?: boolean } }>(run.path('config.json'));
  const reasoning = config?.sft?.reasoning ?? true;
  const tasks = new Map(
    (await readJsonlAll(splitPath, taskRecordSchema)).map((task) => [task.id, task]),
  );
  const rows: SampleRow[] = [];
  for (const type of TASK_TYPES) {
    for (const item of items.filter((i) => i.type === type).slice(0, perType)) {
      const task = tasks.get(item.taskId);
      if (task === undefined) continue;
      const prompt =
        renderPrompt(task, { reasoning }).find((m) => m.role === 'user')?.content ?? '';
      rows.push({
        type,
        level: taskLevel(task),
        prompt,
        completion: item.completion,
        answer: item.answer,
        gold: task.answer,
        correct: item.correct,
        reason: item.reason,
      });
    }
  }
  return { model, rows };
}

function clip(text: string, limit: number): string {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

function samplesTable(samples: { model: string; rows: SampleRow[] } | undefined): string {
  if (samples === undefined || samples.rows.length === 0) return '';
  const body = samples.rows
    .map(
      (row) =>
        `<tr><td>${escapeHtml(row.type)}<br><span class="note">${escapeHtml(row.level)}</span></td>` +
        `<td class="pre">${escapeHtml(clip(row.prompt, 700))}</td>` +
        `<td class="pre">${escapeHtml(clip(row.completion, 900))}</td>` +
        `<td>${row.correct ? '✔ correct' : '✘ wrong'}<br><span class="note">answer ${escapeHtml(clip(row.answer ?? '(none)', 60))}; gold ${escapeHtml(clip(row.gold, 60))}${row.correct ? '' : `; ${escapeHtml(clip(row.reason, 80))}`}</span></td></tr>`,
    )
    .join('');
  return `<h2>Sample completions (${escapeHtml(samples.model)}, held-out)</h2>
<p class="note">The first held-out items of each task type, greedy, as evaluated: the user prompt, the model's completion and the verifier's verdict.</p>
<table class="samples"><thead><tr><th>type</th><th>prompt</th><th>completion</th><th>verdict</th></tr></thead><tbody>${body}</tbody></table>`;
}

/** TRL's logged names for the curves a GRPO user watches; KL only where beta > 0 logged it. */
function grpoCharts(grpo: MetricRow[]): string[] {
  const common = { xLabel: 'step', integerX: true, smoothing: 0.6 } as const;
  const rewardKeys = [
    ...new Set(
      grpo.flatMap((row) => Object.keys(row).filter((key) => /^rewards\/.+\/mean$/.test(key))),
    ),
  ];
  const charts = [
    lineChart({
      ...common,
      title: 'GRPO reward per reward function',
      yLabel: 'mean reward',
      series: [
        series(grpo, 'total', 'step', 'reward'),
        ...rewardKeys.map((key) => series(grpo, key.slice(8, -5), 'step', key)),
      ],
    }),
    lineChart({
      ...common,
      title: 'GRPO groups with zero reward std',
      yLabel: 'frac_reward_zero_std',
      percent: true,
      series: [series(grpo, 'frac_reward_zero_std', 'step', 'frac_reward_zero_std')],
    }),
    lineChart({
      ...common,
      title: 'GRPO policy entropy',
      yLabel: 'entropy (nats/token)',
      series: [series(grpo, 'entropy', 'step', 'entropy')],
    }),
    lineChart({
      ...common,
      title: 'GRPO clip ratio',
      yLabel: 'share of tokens clipped',
      percent: true,
      series: [
        series(grpo, 'region', 'step', 'clip_ratio/region_mean'),
        series(grpo, 'low', 'step', 'clip_ratio/low_mean'),
        series(grpo, 'high', 'step', 'clip_ratio/high_mean'),
      ],
    }),
    lineChart({
      ...common,
      title: 'GRPO completion length',
      yLabel: 'tokens',
      series: [
        series(grpo, 'mean', 'step', 'completions/mean_length'),
        series(grpo, 'min', 'step', 'completions/min_length'),
        series(grpo, 'max', 'step', 'completions/max_length'),
      ],
    }),
  ];
  if (grpo.some((row) => typeof row.kl === 'number'))
    charts.push(
      lineChart({
        ...common,
        title: 'GRPO KL to reference',
        yLabel: 'KL (k3)',
        series: [series(grpo, 'kl', 'step', 'kl')],
      }),
    );
  return charts;
}

export function renderHtml(
  summary: RunSummary,
  sft: MetricRow[],
  grpo: MetricRow[],
  samples?: { model: string; rows: SampleRow[] },
): string {
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
  // the best baseline's overall accuracy beside the model's, over the same steps
  const bestOverall = summary.baselines?.overall.best.accuracy;
  const evalSteps = evals.map((row) => row.step).filter((x): x is number => typeof x === 'number');
  if (bestOverall !== undefined && evalSteps.length > 0)
    evalSeries.push({
      name: 'best baseline (overall)',
      dashed: true,
      points: [
        [Math.min(...evalSteps), bestOverall],
        [Math.max(...evalSteps), bestOverall],
      ],
    });
  const charts = [
    lineChart({
      title: 'SFT loss',
      xLabel: 'step',
      yLabel: 'loss per assistant token',
      integerX: true,
      smoothing: 0.6,
      series: [series(steps, 'train loss', 'step', 'loss')],
    }),
    lineChart({
      title: 'SFT held-out accuracy',
      xLabel: 'step',
      yLabel: 'accuracy',
      integerX: true,
      percent: true,
      series: evalSeries,
    }),
    ...(grpo.length > 0 ? grpoCharts(grpo) : []),
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
          grid(
            summary.levels !== undefined && summary.levels.levels.length > 1
              ? levelGrid(summary.levels)
              : undefined,
            'Accuracy per difficulty level (%, tasks per level in the header)',
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
.samples td{text-align:left;vertical-align:top}.pre{white-space:pre-wrap;font-family:monospace;font-size:.8rem;max-width:460px}
</style></head><body>
<h1>CodeReasoner run report</h1>
<p class="note">Run directory <code>${escapeHtml(summary.run)}</code>; generated ${escapeHtml(new Date().toISOString())}.</p>
<h2>Held-out accuracy (%)</h2>
<p class="note">Same ${summary.evalTasks ?? ''} held-out tasks for every model and baseline; answers verified by execution in the sandbox.</p>
${accuracy}
<h2>Training</h2>
<p class="note">Curves smoothed (exponential moving average, weight 0.6) with the raw values faint behind; dashed lines are baselines.</p>
<div class="charts">${charts.join('\n')}</div>
${samplesTable(samples)}
${benchmarks}
<h2>Time per stage</h2>
${timing}
<h2>Artifacts</h2>
${artifacts}
</body></html>
`;
}
