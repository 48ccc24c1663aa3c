import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { resolveGrpoConfig, type GrpoConfigInput } from '@codereasoner/grpo';
import { resolveSftConfig, type SftConfigInput } from '@codereasoner/sft';
import { InvalidArgumentError } from 'commander';
import { escapeHtml, lineChart, type Series } from './charts.js';
import type { RunConfig } from './config.js';
import { UsageError } from './errors.js';
import { formatSeconds } from './progress.js';
import { htmlTable, readMetrics } from './report.js';
import { writeJsonAtomic, type RunDirectory, type StageMarker, type StageName } from './run-dir.js';
import {
  ACCURACY_COLUMNS,
  bestBaselineAccuracy,
  modelAccuracy,
  percent,
  table,
  type AccuracyColumn,
  type RunSummary,
} from './summary.js';

// `cr scale`: how held-out accuracy grows with training compute. Ordinary runs of one preset at
// several budgets, each a multiple of the preset's SFT and GRPO steps, on the same corpus and the
// same held-out items, then one table and one chart.

/**
 * Budgets of `cr scale` by default: half, one and one and a half times the default preset's
 * steps (SFT 540 / 1080 / 1620, GRPO 120 / 240 / 360); about 8 min of SFT and GRPO per unit on
 * the 2-core machine, so about 25 min in all (packages/cli/README.md, `cr scale`). The preset's
 * 1, 2, 3 would take about twice that.
 */
export const DEFAULT_BUDGETS: readonly number[] = [0.5, 1, 1.5];

/** `--budgets 1,2,3`: distinct positive multiples of the preset's steps, at least two, ascending. */
export function budgetList(value: string): number[] {
  const parts = value.split(',').map((part) => part.trim());
  const budgets: number[] = [];
  for (const part of parts) {
    const budget = Number(part);
    if (part === '' || !Number.isFinite(budget) || budget <= 0)
      throw new InvalidArgumentError(
        `'${part}' is not a positive number; give multiples of the preset's SFT and GRPO steps, e.g. 1,2,3`,
      );
    if (budgets.includes(budget))
      throw new InvalidArgumentError(`${part} is given twice; each budget runs once, e.g. 1,2,3`);
    budgets.push(budget);
  }
  if (budgets.length < 2)
    throw new InvalidArgumentError(
      'needs at least two budgets to show a trend, e.g. 1,2,3 (one budget is an ordinary `cr run-all`)',
    );
  return budgets.sort((a, b) => a - b);
}

/** The run directory of a budget under the command's directory: `budget-2`, `budget-0.5`. */
export function budgetDirName(budget: number): string {
  return `budget-${budget}`;
}

/** `×2`, `×0.5`. */
export function budgetLabel(budget: number): string {
  return `×${budget}`;
}

function scaledEvery(every: number, budget: number): number {
  return every === 0 ? 0 : Math.max(1, Math.round(every * budget));
}

/**
 * The sft and grpo settings of a budget: the preset's SFT steps and GRPO steps times the budget,
 * and their checkpoint and evaluation cadence with them (the same number of checkpoints and
 * in-training evaluations at every budget); the warm-up stays. Values are the resolved ones, so a
 * GRPO paper preset's steps scale too.
 */
export function scaledSections(
  base: Pick<RunConfig, 'sft' | 'grpo' | 'seed'>,
  budget: number,
): { sft: Record<string, unknown>; grpo: Record<string, unknown> } {
  const sft = resolveSftConfig(base.sft as SftConfigInput);
  const grpo = resolveGrpoConfig({ ...(base.grpo as GrpoConfigInput), seed: base.seed });
  const sftSteps = Math.round(sft.steps * budget);
  const grpoSteps = Math.round(grpo.maxSteps * budget);
  if (sftSteps < 1 || grpoSteps < 1)
    throw new UsageError(
      `--budgets ${budget}: ${sft.steps} SFT steps and ${grpo.maxSteps} GRPO steps times ${budget} leave ${sftSteps} and ${grpoSteps}; every budget needs at least one step of each: give larger budgets`,
    );
  if (sftSteps <= sft.warmupSteps)
    throw new UsageError(
      `--budgets ${budget}: ${sftSteps} SFT steps are not more than the ${sft.warmupSteps} warm-up steps (the warm-up is the same at every budget): give budgets of at least ${((sft.warmupSteps + 1) / sft.steps).toPrecision(2)}`,
    );
  return {
    sft: {
      steps: sftSteps,
      warmupSteps: sft.warmupSteps,
      evalEvery: scaledEvery(sft.evalEvery, budget),
      checkpointEvery: scaledEvery(sft.checkpointEvery, budget),
      ...(sft.maxSeconds > 0 ? { maxSeconds: sft.maxSeconds * budget } : {}),
    },
    grpo: { maxSteps: grpoSteps, saveSteps: scaledEvery(grpo.saveSteps, budget) },
  };
}

// ---------------------------------------------------------------------------------------------
// sharing what every budget computes alike

export interface BudgetRun {
  budget: number;
  config: RunConfig;
  run: RunDirectory;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null)
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/**
 * Everything the shared outputs depend on: the whole config but the run directory, GRPO, and the
 * SFT settings the budget scales. Two budgets with the same key build the same corpus, chains,
 * tokenizer and base model (all seeded) and score the base model on the same items.
 */
export function sharedKey(config: RunConfig): string {
  const { out: _out, grpo: _grpo, sft, ...rest } = config;
  const {
    steps: _steps,
    evalEvery: _evalEvery,
    checkpointEvery: _checkpointEvery,
    maxSeconds: _maxSeconds,
    ...sftRest
  } = sft;
  return canonical({ ...rest, sft: sftRest });
}

/** The stage's marker when it finished and its outputs are as it left them; else undefined. */
async function intactMarker(run: RunDirectory, stage: StageName): Promise<StageMarker | undefined> {
  let marker: StageMarker | undefined;
  try {
    marker = await run.marker(stage);
  } catch {
    return undefined; // a damaged marker: not a source to copy from
  }
  if (marker === undefined) return undefined;
  return (await run.changedOutputs(marker)).length === 0 ? marker : undefined;
}

/** Fills `<dir>.tmp-share` with `fill`, then renames it to `dir`: an interruption leaves no half copy. */
async function placeAtomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp-share`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await fill(tmp);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

/**
 * Copies into a budget's run what another budget of the same command has finished and this one
 * would compute identically, through the run directory's own mechanics: the data stage whole (its
 * `.done` marker, whose hashes then vouch for the copy, with `seconds: 0` and `sharedFrom`), and,
 * for a run whose SFT or evaluation has not started, SFT's distilled chains, tokenizer and base
 * model and the base model's evaluation and the baselines, which those stages resume from as from
 * their own earlier work. Returns what was copied, for the log.
 */
export async function shareFinished(
  target: BudgetRun,
  sources: readonly BudgetRun[],
): Promise<string[]> {
  const key = sharedKey(target.config);
  const copied: string[] = [];
  const candidates = sources.filter(
    (source) => source.run.root !== target.run.root && sharedKey(source.config) === key,
  );
  const find = async (stage: StageName) => {
    for (const source of candidates) {
      const marker = await intactMarker(source.run, stage);
      if (marker !== undefined) return { source, marker };
    }
    return undefined;
  };
  const from = (source: BudgetRun) => relative(target.run.root, source.run.root);

  if (!existsSync(target.run.markerPath('data'))) {
    const found = await find('data');
    if (found !== undefined) {
      await placeAtomically(target.run.stageDir('data'), async (tmp) => {
        await cp(found.source.run.stageDir('data'), tmp, { recursive: true });
        await writeJsonAtomic(join(tmp, '.done'), {
          ...found.marker,
          seconds: 0,
          figures: { ...found.marker.figures, sharedFrom: from(found.source) },
        });
      });
      copied.push(`data (from ${from(found.source)})`);
    }
  }

  if (!existsSync(target.run.stageDir('sft'))) {
    const found = await find('sft');
    if (found !== undefined) {
      const { source, marker } = found;
      const pieces = [marker.artifacts.tokenizer, marker.artifacts.baseCheckpoint]
        .filter((path): path is string => path !== undefined && path.startsWith('sft/'))
        .concat('sft/distill');
      await placeAtomically(target.run.stageDir('sft'), async (tmp) => {
        for (const piece of pieces) {
          const to = join(tmp, relative('sft', piece));
          if (piece.endsWith('.json')) await copyFile(source.run.path(piece), to);
          else await cp(source.run.path(piece), to, { recursive: true });
        }
      });
      copied.push(`${pieces.join(', ')} (from ${from(source)})`);
    }
  }

  if (!existsSync(target.run.stageDir('eval'))) {
    const found = await find('eval');
    const files = ['eval/base.json', 'eval/baselines.json'];
    if (found !== undefined && files.every((file) => existsSync(found.source.run.path(file)))) {
      await placeAtomically(target.run.stageDir('eval'), async (tmp) => {
        for (const file of files)
          await copyFile(found.source.run.path(file), join(tmp, relative('eval', file)));
      });
      copied.push(`${files.join(', ')} (from ${from(found.source)})`);
    }
  }
  return copied;
}

// ---------------------------------------------------------------------------------------------
// the table and the chart

export interface ScaleRun {
  budget: number;
  summary: RunSummary;
  /** Assistant (loss) tokens SFT trained on: the sum of its steps' `targetTokens`. */
  sftTokens: number | undefined;
  /** Prompt + completion tokens GRPO trained on: its last step's `num_tokens` (TRL's name). */
  grpoTokens: number | undefined;
}

/** The training tokens of a finished run, from its metrics files (each step counted once, as a resumed run may log a step twice). */
export async function trainingTokens(
  run: RunDirectory,
  summary: RunSummary,
): Promise<Pick<ScaleRun, 'sftTokens' | 'grpoTokens'>> {
  const perStep = (rows: Record<string, unknown>[], field: string) => {
    const byStep = new Map<number, number>();
    for (const row of rows)
      if (typeof row.step === 'number' && typeof row[field] === 'number')
        byStep.set(row.step, row[field] as number);
    return byStep;
  };
  const sftMetrics = summary.artifacts['sft.metrics'];
  const grpoMetrics = summary.artifacts['grpo.metrics'];
  const sft =
    sftMetrics === undefined
      ? undefined
      : perStep(
          (await readMetrics(run.path(sftMetrics))).filter((row) => row.kind === 'step'),
          'targetTokens',
        );
  const grpo =
    grpoMetrics === undefined
      ? undefined
      : perStep(await readMetrics(run.path(grpoMetrics)), 'num_tokens');
  return {
    sftTokens:
      sft === undefined || sft.size === 0 ? undefined : [...sft.values()].reduce((a, b) => a + b),
    grpoTokens:
      grpo === undefined || grpo.size === 0 ? undefined : grpo.get(Math.max(...grpo.keys())),
  };
}

const MODELS = [
  ['sft', 'SFT'],
  ['grpo', 'GRPO'],
] as const;

function steps(summary: RunSummary, stage: 'sft' | 'grpo'): string {
  const value = summary.figures[stage]?.steps;
  return typeof value === 'number' ? String(value) : '–';
}

function stageTime(summary: RunSummary, stage: StageName): string {
  const entry = summary.stages.find((s) => s.stage === stage);
  if (entry === undefined) return '–';
  if (summary.figures[stage]?.sharedFrom !== undefined) return 'shared';
  return formatSeconds(entry.seconds);
}

/** Rows of the accuracy table: per budget, the SFT and GRPO models; then the best baseline. */
export function accuracyRows(runs: readonly ScaleRun[]): string[][] {
  const rows: string[][] = [];
  for (const run of runs)
    for (const [model, label] of MODELS)
      rows.push([
        `${budgetLabel(run.budget)} · ${label}`,
        steps(run.summary, 'sft'),
        model === 'grpo' ? steps(run.summary, 'grpo') : '0',
        ...ACCURACY_COLUMNS.map((column) => percent(modelAccuracy(run.summary, model, column))),
      ]);
  // the budgets score the same items, so their baselines agree; should they not, each is shown
  const distinct = new Set(runs.map((run) => canonical(run.summary.baselines?.overall)));
  const baselineRuns = distinct.size === 1 ? runs.slice(0, 1) : runs;
  for (const run of baselineRuns)
    rows.push([
      distinct.size === 1
        ? 'best baseline (every budget)'
        : `${budgetLabel(run.budget)} · best baseline`,
      '–',
      '–',
      ...ACCURACY_COLUMNS.map((column) => percent(bestBaselineAccuracy(run.summary, column))),
    ]);
  return rows;
}

export const ACCURACY_HEADER = ['budget · model', 'SFT steps', 'GRPO steps', ...ACCURACY_COLUMNS];
export const COMPUTE_HEADER = [
  'budget',
  'SFT steps',
  'GRPO steps',
  'SFT tokens',
  'GRPO tokens',
  'data',
  'SFT',
  'GRPO',
  'eval',
  'total',
];

/** Rows of the compute table: per budget, steps, training tokens and the wall time of each stage. */
export function computeRows(runs: readonly ScaleRun[]): string[][] {
  const count = (value: number | undefined) => (value === undefined ? '–' : String(value));
  return runs.map((run) => [
    budgetLabel(run.budget),
    steps(run.summary, 'sft'),
    steps(run.summary, 'grpo'),
    count(run.sftTokens),
    count(run.grpoTokens),
    stageTime(run.summary, 'data'),
    stageTime(run.summary, 'sft'),
    stageTime(run.summary, 'grpo'),
    stageTime(run.summary, 'eval'),
    formatSeconds(run.summary.totalSeconds),
  ]);
}

const NOTE =
  'Every budget runs the same preset with its SFT and GRPO steps (and checkpoint and evaluation cadence) multiplied by the budget, the warm-up unchanged, on the same corpus and the same held-out items (same seed). SFT tokens: assistant tokens trained on; GRPO tokens: prompt + completion tokens trained on (TRL `num_tokens`). `shared`: copied from another budget (the corpus is built once). Times are this machine’s wall time.';

/** The scale tables as text (terminal) or Markdown. */
export function renderScale(runs: readonly ScaleRun[], markdown: boolean): string {
  const title = (text: string) => (markdown ? `### ${text}` : `${text}:`);
  return [
    title('Held-out accuracy (%) per budget, beside the best trivial baseline on the same items'),
    '',
    table(ACCURACY_HEADER, accuracyRows(runs), markdown),
    '',
    title('Compute per budget'),
    '',
    table(COMPUTE_HEADER, computeRows(runs), markdown),
    '',
    NOTE,
  ].join('\n');
}

/** The chart's lines for one column: SFT and GRPO per budget, the best baseline dashed. */
export function scaleSeries(runs: readonly ScaleRun[], column: AccuracyColumn): Series[] {
  const line = (name: string, value: (run: ScaleRun) => number | undefined, dashed = false) => ({
    name,
    points: runs.flatMap((run): [number, number][] => {
      const y = value(run);
      return y === undefined ? [] : [[run.budget, y]];
    }),
    ...(dashed ? { dashed } : {}),
  });
  return [
    ...MODELS.map(([model, label]) =>
      line(label, (run) => modelAccuracy(run.summary, model, column)),
    ),
    line('best baseline', (run) => bestBaselineAccuracy(run.summary, column), true),
  ];
}

const PANEL = { width: 480, height: 320 };

/** Two panels side by side, overall and output prediction: x the budget, y held-out accuracy. */
export function scaleChart(runs: readonly ScaleRun[]): string {
  const integerX = runs.every((run) => Number.isInteger(run.budget));
  const panels = (
    [
      ['overall', 'Held-out accuracy, overall'],
      ['output', 'Held-out accuracy, output prediction'],
    ] as const
  ).map(([column, title], index) =>
    lineChart({
      title,
      xLabel: "training budget (× the preset's SFT and GRPO steps)",
      yLabel: 'held-out accuracy',
      series: scaleSeries(runs, column),
      percent: true,
      integerX,
      ...PANEL,
    }).replace('<svg ', `<svg x="${index * PANEL.width}" `),
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * PANEL.width}" height="${PANEL.height}" role="img" aria-label="Held-out accuracy per training budget">${panels.join('')}</svg>`;
}

/** scale.html: the chart and the tables in one self-contained file. */
export function renderScaleHtml(out: string, runs: readonly ScaleRun[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cr scale: accuracy per training budget</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1180px;color:#111;padding:0 1rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f4f6}.note{color:#555;font-size:.9rem}
</style></head><body>
<h1>Accuracy per training budget</h1>
<p class="note">Directory <code>${escapeHtml(out)}</code>; one run per budget under <code>budget-&lt;k&gt;/</code>, each with its own report.html.</p>
${scaleChart(runs)}
<h2>Held-out accuracy (%)</h2>
${htmlTable(ACCURACY_HEADER, accuracyRows(runs))}
<h2>Compute per budget</h2>
${htmlTable(COMPUTE_HEADER, computeRows(runs))}
<p class="note">${escapeHtml(NOTE)}</p>
</body></html>
`;
}
