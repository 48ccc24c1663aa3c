// The adversarial answer corpus (adversarial-answers.json) as the judges' tests use it: every
// entry is text a policy could emit as its answer; none may score, every gold must. Test-only.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface AdversarialEntry {
  category: string;
  text: string;
}

export interface AdversarialCorpus {
  task: {
    code: string;
    entryPoint: string;
    input: string;
    output: string;
    wrongOutput: string;
    state: {
      line: number;
      variable: string;
      answer: string;
      acceptableAnswers: string[];
      wrong: string;
    };
  };
  value: AdversarialEntry[];
  arguments: AdversarialEntry[];
  call: AdversarialEntry[];
  golds: { value: string[]; arguments: string[]; call: string[] };
  coverage: { gold: string; wrong: string[]; golds: string[] };
  path: { gold: string; wrong: string[]; golds: string[] };
}

export const adversarialCorpus = JSON.parse(
  readFileSync(new URL('./adversarial-answers.json', import.meta.url), 'utf8'),
) as AdversarialCorpus;

/** Fills the corpus placeholders for one judge: `$GOLD`, `$WRONG` and `$GOLD_OUTPUT`. */
export function fill(
  text: string,
  values: { gold: string; wrong: string; goldOutput?: string },
): string {
  return text
    .replaceAll('$GOLD_OUTPUT', values.goldOutput ?? adversarialCorpus.task.output)
    .replaceAll('$GOLD', values.gold)
    .replaceAll('$WRONG', values.wrong);
}

/** Value answers, argument-list answers as `f(...)` calls, and the call-only attacks. */
export function callAttacks(entryPoint: string): AdversarialEntry[] {
  return [
    ...adversarialCorpus.arguments.map((entry) => ({
      ...entry,
      text: `${entryPoint}(${entry.text})`,
    })),
    ...adversarialCorpus.call,
  ];
}

const hasPython =
  spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 9)']).status === 0;

/** Engines the judges are tested on; the CPython one needs python3 (>= 3.9) on PATH. */
export const judgeEngines: { engine: 'pyodide' | 'cpython'; skip: string | false }[] = [
  { engine: 'pyodide', skip: false },
  {
    engine: 'cpython',
    skip: hasPython ? false : 'skipped: no python3 (>= 3.9) on PATH for the CPython engine',
  },
];

/** The task types of the protocol, one question each. */
type QuestionType = 'output' | 'input' | 'coverage' | 'state' | 'path';

/**
 * A task record on the corpus's program, ids under `prefix`: the protocol package's `TaskRecord` by
 * structure (its type is inferred here, so that test-support depends on no package).
 */
export function corpusTask<Split extends string>(
  prefix: string,
  split: Split,
  type: QuestionType,
  answer: string,
  extra: { line?: number; variable?: string; meta?: Record<string, unknown> } = {},
) {
  const { task } = adversarialCorpus;
  return {
    id: `${prefix}/${type}`,
    programId: prefix,
    callId: `${prefix}/0`,
    type,
    split,
    code: task.code,
    entryPoint: task.entryPoint,
    input: task.input,
    output: task.output,
    answer,
    meta: {} as Record<string, unknown>,
    ...extra,
  };
}

/** One question of each task type, with the corpus's attacks on it and its gold answers. */
export interface AdversarialQuestion<Split extends string> {
  name: QuestionType;
  task: ReturnType<typeof corpusTask<Split>>;
  /** Answers that must score 0. */
  attacks: string[];
  /** The task's own gold answer. */
  gold: string;
  /** Every written form of the gold answer the corpus lists (the gold among them): each must score. */
  golds: string[];
}

export function adversarialQuestions<Split extends string>(
  prefix: string,
  split: Split,
): AdversarialQuestion<Split>[] {
  const { task: target, golds } = adversarialCorpus;
  const output = { gold: target.output, wrong: target.wrongOutput };
  const state = { gold: target.state.answer, wrong: target.state.wrong };
  const input = { gold: target.input, wrong: '[0], "-"' };
  const task = (type: QuestionType, answer: string, extra?: Parameters<typeof corpusTask>[4]) =>
    corpusTask(prefix, split, type, answer, extra);
  return [
    {
      name: 'output',
      task: task('output', target.output),
      attacks: adversarialCorpus.value.map((entry) => fill(entry.text, output)),
      gold: target.output,
      golds: golds.value.map((text) => fill(text, output)),
    },
    {
      name: 'state',
      task: task('state', target.state.answer, {
        line: target.state.line,
        variable: target.state.variable,
        meta: { acceptableAnswers: target.state.acceptableAnswers },
      }),
      attacks: adversarialCorpus.value.map((entry) => fill(entry.text, state)),
      gold: target.state.answer,
      golds: golds.value.map((text) => fill(text, state)),
    },
    {
      name: 'input',
      task: task('input', target.input),
      attacks: [...adversarialCorpus.arguments, ...adversarialCorpus.call].map((entry) =>
        fill(entry.text, input),
      ),
      gold: target.input,
      golds: [...golds.arguments, ...golds.call],
    },
    {
      name: 'coverage',
      task: task('coverage', adversarialCorpus.coverage.gold, { line: 5 }),
      attacks: adversarialCorpus.coverage.wrong,
      gold: adversarialCorpus.coverage.gold,
      golds: adversarialCorpus.coverage.golds,
    },
    {
      name: 'path',
      task: task('path', adversarialCorpus.path.gold, { line: 5 }),
      attacks: adversarialCorpus.path.wrong,
      gold: adversarialCorpus.path.gold,
      golds: adversarialCorpus.path.golds,
    },
  ];
}
