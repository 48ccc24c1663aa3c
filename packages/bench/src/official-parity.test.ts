import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cruxEvalItems, loadCruxEval, scoreCruxEval } from './cruxeval.js';
import { liveCodeBenchItems, loadLiveCodeBench, scoreLiveCodeBench } from './livecodebench.js';
import { revalGroupItems, scoreReval, type RevalItemContext } from './reval/items.js';
import { useTracedRevalFixture } from './reval/test-fixture.js';
import { runBenchmark } from './run-benchmark.js';
import { FIXTURES } from './test-paths.js';
import type {
  BenchItem,
  BenchmarkName,
  ChatModel,
  ChatRequest,
  SampleVerdict,
  Verdict,
} from './types.js';

// Official-style scoring must give the official harness's verdict on every completion, quirks
// included. The completions and their expected verdicts (derived by hand from the official code,
// see the fixture's "about") live in __fixtures__/official-parity/completions.json; they are
// replayed here through the same scorers a benchmark run uses, on the package's data fixtures.

type Part = string | { repeat: string; times: number };

interface ParityCase {
  benchmark: 'cruxeval' | 'livecodebench' | 'reval';
  task: string;
  /** CRUXEval/LCB record id; REval probe id `DREval/N#i@k:Lline:var` (or the group for output). */
  item: string;
  cot: boolean;
  completion: string | Part[];
  verdict: Verdict;
  /** The answer the official parser keeps (REval path: the lines it maps to, or -1/-2). */
  extracted?: string;
  rule: string;
}

interface Fixture {
  cases: ParityCase[];
  prompts: { key: string; contains: string; rule: string }[];
}

function completionText(completion: string | Part[]): string {
  if (typeof completion === 'string') return completion;
  return completion.map((p) => (typeof p === 'string' ? p : p.repeat.repeat(p.times))).join('');
}

let fixture: Fixture;
const reval = useTracedRevalFixture();

beforeAll(async () => {
  fixture = JSON.parse(
    await readFile(join(FIXTURES, 'official-parity/completions.json'), 'utf8'),
  ) as Fixture;
});

function revalItems(cot: boolean): { item: BenchItem; context: RevalItemContext }[] {
  let t = 0;
  return reval.problems.flatMap((problem) =>
    problem.groups.flatMap((group) =>
      revalGroupItems(problem, group, reval.truths[t++]!, ['coverage', 'state', 'path', 'output'], {
        cot,
        style: 'official',
      }),
    ),
  );
}

/** Scores the fixture's cases of one benchmark and CoT mode; returns the verdicts in case order. */
async function score(benchmark: ParityCase['benchmark'], cot: boolean) {
  const cases = fixture.cases.filter((c) => c.benchmark === benchmark && c.cot === cot);
  const completions = cases.map((c) => [completionText(c.completion)]);
  let items: BenchItem[];
  let verdicts: SampleVerdict[][];
  if (benchmark === 'cruxeval') {
    const records = await loadCruxEval(join(FIXTURES, 'cruxeval/cruxeval.jsonl'));
    const all = cruxEvalItems(records, { tasks: ['output', 'input'], cot, style: 'official' });
    items = cases.map((c) => all.find((i) => i.key === `${c.task}/${c.item}`)!);
    verdicts = await scoreCruxEval(
      reval.sandbox,
      new Map(records.map((r) => [r.id, r])),
      items,
      completions,
      { cot, style: 'official' },
    );
  } else if (benchmark === 'livecodebench') {
    const records = await loadLiveCodeBench(join(FIXTURES, 'livecodebench/execution-v2.jsonl'));
    const all = liveCodeBenchItems(records, { cot, style: 'official' });
    items = cases.map((c) => all.find((i) => i.key === `${c.task}/${c.item}`)!);
    verdicts = await scoreLiveCodeBench(
      reval.sandbox,
      new Map(records.map((r) => [r.id, r])),
      items,
      completions,
      { cot, style: 'official' },
    );
  } else {
    const all = revalItems(cot);
    const picked = cases.map((c) => all.find((i) => i.item.key === `${c.task}/${c.item}`)!);
    items = picked.map((p) => p.item);
    verdicts = await scoreReval(
      reval.sandbox,
      items,
      picked.map((p) => p.context),
      completions,
      { cot, style: 'official' },
    );
  }
  items.forEach((item, i) => expect(item, `${cases[i]!.task}/${cases[i]!.item}`).toBeDefined());
  return cases.map((c, i) => ({ case: c, verdict: verdicts[i]![0]! }));
}

describe('official-style verdicts equal the official harnesses on a fixed completion set', () => {
  const runs = [
    ['cruxeval', false],
    ['cruxeval', true],
    ['livecodebench', false],
    ['livecodebench', true],
    ['reval', false],
    ['reval', true],
  ] as const;
  for (const [benchmark, cot] of runs) {
    it(`${benchmark} ${cot ? 'CoT' : 'direct'}`, async () => {
      const results = await score(benchmark, cot);
      expect(results.length).toBeGreaterThan(0);
      for (const { case: c, verdict } of results) {
        const label = `${c.task}/${c.item} ${JSON.stringify(completionText(c.completion).slice(0, 60))}: ${c.rule} (${verdict.reason})`;
        expect(verdict.verdict, label).toBe(c.verdict);
        if (c.extracted === undefined) continue;
        const extracted =
          benchmark === 'reval' && c.task === 'coverage'
            ? verdict.extracted
            : benchmark === 'reval' && c.task === 'path'
              ? (verdict.extracted ?? '-2')
              : verdict.extracted;
        expect(extracted, label).toBe(c.extracted);
      }
    }, 120_000);
  }

  it('covers every quirk the official parsers have', () => {
    const rules = fixture.cases.map((c) => `${c.benchmark} ${c.task} ${c.rule}`).join('\n');
    for (const pattern of [
      /reval path .*strips only when it finds a tag/,
      /reval coverage .*upper-cases before looking for tags/,
      /reval coverage .*\[\/thought\] counts/,
      /cruxeval output .*CoT without \[ANSWER\]: the last line as it is/,
      /cruxeval input .*CoT without \[ANSWER\]/,
      /several \[ANSWER\] blocks/,
      /CRLF/,
      /empty/,
      /very long/,
      /reval output .*leading spaces/,
      /Python's strip/,
    ]) {
      expect(rules).toMatch(pattern);
    }
  });

  it('REval ClassEval prompts show the setUp text as the official prompt does', () => {
    const all = revalItems(false);
    for (const { key, contains, rule } of fixture.prompts) {
      const found = all.find((i) => i.item.key === key);
      expect(found, key).toBeDefined();
      expect(found!.item.messages[1]!.content, `${key}: ${rule}`).toContain(contains);
    }
  });
});

describe('requests as the official harnesses send them', () => {
  it('asks for the stop word each harness requests from a chat model', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bench-parity-'));
    try {
      const stops: Record<string, (string[] | undefined)[]> = {};
      for (const benchmark of ['cruxeval', 'livecodebench', 'reval'] as BenchmarkName[]) {
        const seen: (string[] | undefined)[] = [];
        const model: ChatModel = {
          id: 'recorder',
          async complete(requests: ChatRequest[]) {
            for (const r of requests) seen.push(r.stop);
            return requests.map(() => ({ texts: [''], finishReasons: ['stop' as const] }));
          },
        };
        await runBenchmark({
          benchmark,
          dataPath: FIXTURES,
          model,
          sandbox: reval.sandbox,
          outDir: join(root, benchmark),
          limit: 1,
          ...(benchmark === 'reval' ? { tasks: ['coverage' as const] } : {}),
        });
        stops[benchmark] = [...new Set(seen.map((s) => JSON.stringify(s)))].map((s) =>
          s === undefined ? undefined : (JSON.parse(s) as string[]),
        );
      }
      // openai_run.py and REval's model classes: stop=['[/ANSWER]']; LiveCodeBench's
      // OpenAIRunner sends no stop ("stop is only used for base models currently").
      expect(stops).toEqual({
        cruxeval: [['[/ANSWER]']],
        livecodebench: [undefined],
        reval: [['[/ANSWER]']],
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 120_000);
});
