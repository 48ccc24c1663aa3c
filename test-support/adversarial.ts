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
