// Hand-made RunSummary pieces for the tests of the tables built from several runs' summaries
// (`cr compare`, `cr scale`): one evaluation row and one baselines block, written once.
import type { RunSummary } from '../summary.js';

type Evaluation = RunSummary['evaluation'][number];
type Baselines = NonNullable<RunSummary['baselines']>;

export const score = (correct: number, total: number) => ({
  correct,
  total,
  accuracy: correct / total,
});

const noDiversity = {
  byType: {},
  overall: { items: 0, distinct: 0, top: { answer: null, count: 0, share: 0 } },
};

/** An evaluated model with output and coverage accuracies (fractions); overall is their mean. */
export function evaluationOf(name: string, output: number, coverage: number): Evaluation {
  return {
    model: name,
    checkpoint: `${name}/final`,
    accuracy: { output, coverage },
    counts: {},
    overall: (output + coverage) / 2,
    diversity: noDiversity,
    seconds: 1,
  };
}

/** Baselines over 10 output items (best constant 1/10) and, with `coverage`, 10 coverage items (5/10). */
export function baselinesOf(coverage: boolean): Baselines {
  const byType: Baselines['byType'] = {
    output: {
      total: 10,
      bestConstant: { ...score(1, 10), answer: '0', candidates: 5, exhaustive: true },
      random: score(0, 10),
      best: { ...score(1, 10), baseline: 'bestConstant' },
    },
  };
  if (coverage) {
    byType.coverage = {
      total: 10,
      bestConstant: { ...score(5, 10), answer: 'yes', candidates: 2, exhaustive: true },
      random: score(5, 10),
      best: { ...score(5, 10), baseline: 'bestConstant' },
    };
  }
  return {
    seed: 1,
    trainTasks: 10,
    seconds: 1,
    byType,
    overall: {
      majority: score(5, 20),
      bestConstant: score(6, 20),
      random: score(5, 20),
      best: score(6, 20),
    },
  };
}
