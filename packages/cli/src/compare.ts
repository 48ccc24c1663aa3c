import { BASELINE_NAMES } from '@codereasoner/sft';
import { levelGrid } from './levels.js';
import { formatSeconds } from './progress.js';
import type { StageName } from './run-dir.js';
import {
  ACCURACY_COLUMNS,
  BASELINE_LABELS,
  bestBaselineAccuracy,
  modelAccuracy,
  percent,
  table,
  type AccuracyColumn,
  type RunSummary,
} from './summary.js';

// `cr compare`: the paper's two claims on one table. For each seed, two runs on the same corpus
// and held-out tasks: `chains` (SFT on verified reasoning chains, then GRPO) and `answers` (the
// same SFT on answers only, no GRPO). The chains run's baselines (same split and items, same
// seed) stand beside every row.

export type CompareVariant = 'chains' | 'answers';

/** What each variant runs, and how its config differs from the run's. */
export const COMPARE_VARIANTS: Record<
  CompareVariant,
  { stages: StageName[]; sft: { reasoning: boolean } }
> = {
  chains: { stages: ['data', 'sft', 'grpo', 'eval'], sft: { reasoning: true } },
  answers: { stages: ['data', 'sft', 'eval'], sft: { reasoning: false } },
};

export interface CompareRun {
  seed: number;
  variant: CompareVariant;
  summary: RunSummary;
}

/** Model rows of a compare: label, accuracy per column (fractions). */
function modelRows(runs: readonly CompareRun[]): {
  label: string;
  seed: number;
  model: string;
  values: Partial<Record<AccuracyColumn, number>>;
}[] {
  const rows: ReturnType<typeof modelRows> = [];
  for (const run of runs) {
    for (const evaluation of run.summary.evaluation) {
      if (evaluation.model === 'base' && run.variant === 'answers') continue;
      const model =
        evaluation.model === 'base'
          ? 'base (untrained)'
          : evaluation.model === 'sft'
            ? `SFT ${run.variant === 'chains' ? 'chains' : 'answers only'}`
            : 'GRPO (after SFT chains)';
      rows.push({
        label: `seed ${run.seed} · ${model}`,
        seed: run.seed,
        model,
        values: { ...evaluation.accuracy, overall: evaluation.overall },
      });
    }
  }
  return rows;
}

function runOf(
  runs: readonly CompareRun[],
  seed: number,
  variant: CompareVariant,
): RunSummary | undefined {
  return runs.find((run) => run.seed === seed && run.variant === variant)?.summary;
}

function accuracyOf(
  runs: readonly CompareRun[],
  seed: number,
  variant: CompareVariant,
  model: string,
  column: AccuracyColumn,
): number | undefined {
  const summary = runOf(runs, seed, variant);
  return summary === undefined ? undefined : modelAccuracy(summary, model, column);
}

/** The chains run's baselines (same split and items as the answers run). */
function bestBaseline(
  runs: readonly CompareRun[],
  seed: number,
  column: AccuracyColumn,
): number | undefined {
  const summary = runOf(runs, seed, 'chains');
  return summary === undefined ? undefined : bestBaselineAccuracy(summary, column);
}

function signed(points: number | undefined): string {
  if (points === undefined) return '–';
  const text = points.toFixed(1);
  return points >= 0 && text !== '-0.0' ? `+${text}` : text === '-0.0' ? '+0.0' : text;
}

/** The comparison as text (terminal) or Markdown. */
export function renderComparison(runs: readonly CompareRun[], markdown: boolean): string {
  const seeds = [...new Set(runs.map((run) => run.seed))].sort((a, b) => a - b);
  const title = (text: string) => (markdown ? `### ${text}` : `${text}:`);
  const rows: string[][] = [];
  for (const seed of seeds) {
    for (const row of modelRows(runs).filter((r) => r.seed === seed))
      rows.push([row.label, ...ACCURACY_COLUMNS.map((column) => percent(row.values[column]))]);
    const baselines = runs.find((run) => run.seed === seed && run.variant === 'chains')?.summary
      .baselines;
    if (baselines === undefined) continue;
    for (const name of BASELINE_NAMES)
      rows.push([
        `seed ${seed} · baseline: ${BASELINE_LABELS[name]}`,
        ...ACCURACY_COLUMNS.map((column) =>
          percent(
            column === 'overall'
              ? baselines.overall[name].accuracy
              : baselines.byType[column]?.[name]?.accuracy,
          ),
        ),
      ]);
  }
  const parts = [
    title('Held-out accuracy (%), per seed, with the trivial baselines on the same items'),
    '',
    table(['run · model', ...ACCURACY_COLUMNS], rows, markdown),
  ];

  // the two claims, in points
  const claims: string[][] = [];
  for (const seed of seeds) {
    const chains = (column: AccuracyColumn) => accuracyOf(runs, seed, 'chains', 'sft', column);
    const answers = (column: AccuracyColumn) => accuracyOf(runs, seed, 'answers', 'sft', column);
    const grpo = (column: AccuracyColumn) => accuracyOf(runs, seed, 'chains', 'grpo', column);
    const diff = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined ? undefined : 100 * (a - b);
    claims.push([
      `seed ${seed} · SFT chains − SFT answers only`,
      ...ACCURACY_COLUMNS.map((column) => signed(diff(chains(column), answers(column)))),
    ]);
    claims.push([
      `seed ${seed} · GRPO − SFT chains`,
      ...ACCURACY_COLUMNS.map((column) => signed(diff(grpo(column), chains(column)))),
    ]);
    claims.push([
      `seed ${seed} · GRPO − best baseline`,
      ...ACCURACY_COLUMNS.map((column) =>
        signed(diff(grpo(column), bestBaseline(runs, seed, column))),
      ),
    ]);
  }
  parts.push(
    '',
    title('Differences (points)'),
    '',
    table(['comparison', ...ACCURACY_COLUMNS], claims, markdown),
  );

  for (const run of runs) {
    if (run.summary.levels === undefined || run.summary.levels.levels.length < 2) continue;
    const grid = levelGrid(run.summary.levels);
    parts.push(
      '',
      title(`Seed ${run.seed}, ${run.variant}: accuracy per difficulty level (%, tasks per level)`),
      '',
      table(grid.header, grid.rows, markdown),
    );
  }
  const time = runs
    .map((run) => `seed ${run.seed} ${run.variant} ${formatSeconds(run.summary.totalSeconds)}`)
    .join(', ');
  parts.push('', `Stage time (sum of stages, this machine): ${time}.`);
  return parts.join('\n');
}
