// The benchmark judges (CRUXEval-O/-I and LiveCodeBench, official and strict) against the
// adversarial corpus on both engines, and issue 12's strict-mode bypass on all 800 CRUXEval
// records. Official scoring keeps the official verdict; a pass the strict judge rejects is
// flagged (`literal: false`). An attack is "accepted" when it passes unflagged (official) or
// passes at all (strict): none may be.
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adversarialCorpus,
  callAttacks,
  fill,
  judgeEngines,
} from '../../../test-support/adversarial.js';
import { cruxEvalItems, loadCruxEval, scoreCruxEval } from './cruxeval.js';
import { liveCodeBenchItems, scoreLiveCodeBench } from './livecodebench.js';
import type { CruxEvalRecord, LiveCodeBenchRecord } from './schemas.js';
import { BUNDLED } from './test-paths.js';
import type { SampleVerdict } from './types.js';

const { task: target } = adversarialCorpus;
const record: CruxEvalRecord = {
  id: 'sample_0',
  code: target.code,
  input: target.input,
  output: target.output,
};
const lcbRecord: LiveCodeBenchRecord = {
  id: 'sample_0',
  question_id: 0,
  function_name: 'f',
  code: target.code,
  input: `f(${target.input})`,
  output: target.output,
};
const fillOutput = (text: string) => fill(text, { gold: target.output, wrong: target.wrongOutput });
const valueAttacks = adversarialCorpus.value.map((entry) => fillOutput(entry.text));
const valueGolds = adversarialCorpus.golds.value.map(fillOutput);
const inputAttacks = callAttacks('f').map((entry) =>
  fill(entry.text, { gold: target.input, wrong: '[0], "-"' }),
);
const inputGolds = [
  ...adversarialCorpus.golds.arguments.map((args) => `f(${args})`),
  ...adversarialCorpus.golds.call,
];

function accepted(verdicts: SampleVerdict[], strict: boolean): number[] {
  return verdicts.flatMap((v, i) =>
    v.verdict === 'pass' && (strict || v.literal !== false) ? [i] : [],
  );
}

async function judgeAll(sandbox: Sandbox, strict: boolean) {
  const records = new Map([[record.id, record]]);
  const style = 'official' as const;
  const out: Record<string, { attacks: string[]; golds: SampleVerdict[] }> = {};
  for (const task of ['output', 'input'] as const) {
    const [item] = cruxEvalItems([record], { tasks: [task], cot: false, style });
    const attacks = task === 'output' ? valueAttacks : inputAttacks;
    const golds = task === 'output' ? valueGolds : inputGolds;
    const [verdicts] = await scoreCruxEval(
      sandbox,
      records,
      [item!],
      [[...attacks, ...golds].map((text) => `${text}\n[/ANSWER]`)],
      { cot: false, style, strictLiterals: strict },
    );
    out[`cruxeval-${task}`] = {
      attacks: accepted(verdicts!.slice(0, attacks.length), strict).map((i) => attacks[i]!),
      golds: verdicts!.slice(attacks.length),
    };
  }
  const [lcbItem] = liveCodeBenchItems([lcbRecord], { cot: false, style });
  const [lcb] = await scoreLiveCodeBench(
    sandbox,
    new Map([[lcbRecord.id, lcbRecord]]),
    [lcbItem!],
    [[...valueAttacks, ...valueGolds].map((text) => `${text}\n[/ANSWER]`)],
    { cot: false, style, strictLiterals: strict },
  );
  out['livecodebench'] = {
    attacks: accepted(lcb!.slice(0, valueAttacks.length), strict).map((i) => valueAttacks[i]!),
    golds: lcb!.slice(valueAttacks.length),
  };
  return out;
}

for (const { engine, skip } of judgeEngines) {
  describe.skipIf(skip !== false)(`benchmark judges, ${engine} engine${skip || ''}`, () => {
    let sandbox: Sandbox;
    beforeAll(async () => {
      sandbox = await Sandbox.create({ engine, workers: 1 });
    }, 60_000);
    afterAll(async () => {
      await sandbox?.close();
    });

    for (const strict of [false, true]) {
      it(`accepts no adversarial answer and every gold (${strict ? 'strict' : 'official'})`, async () => {
        const results = await judgeAll(sandbox, strict);
        console.log(
          `adversarial answers accepted (${engine}, ${strict ? 'strict' : 'official'}):`,
          Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.attacks.length])),
        );
        for (const [name, { attacks, golds }] of Object.entries(results)) {
          expect({ name, attacks }).toEqual({ name, attacks: [] });
          for (const gold of golds) {
            expect({ name, gold }).toMatchObject({ name, gold: { verdict: 'pass' } });
            expect(gold.literal).toBe(true);
          }
        }
      }, 300_000);
    }
  });
}

describe('CRUXEval strict literals on all 800 records (the copy the package ships)', () => {
  let sandbox: Sandbox;
  beforeAll(async () => {
    sandbox = await Sandbox.create({ workers: 1 });
  }, 60_000);
  afterAll(async () => {
    await sandbox?.close();
  });

  it("refuses issue 12's fixed -I answer and passes every gold (a perfect model scores 100)", async () => {
    const records = await loadCruxEval(join(BUNDLED, 'cruxeval/cruxeval.jsonl'));
    expect(records).toHaveLength(800);
    const byId = new Map(records.map((r) => [r.id, r]));
    const style = 'official' as const;
    const items = cruxEvalItems(records, { tasks: ['input', 'output'], cot: false, style });
    // Issue 12's fixed answer: a lone \r ends the comment for CPython, so the harness runs
    // `assert <gold> == f(0) if 0 else (1)`, i.e. `assert 1`, on every record.
    const completions = items.map((item) => {
      const r = byId.get(item.id)!;
      return item.task === 'input'
        ? [`f(0 #\r) if 0 else (1\r)\n[/ANSWER]`, `f(${r.input})\n[/ANSWER]`]
        : [`${r.output}\n[/ANSWER]`];
    });
    const strict = await scoreCruxEval(sandbox, byId, items, completions, {
      cot: false,
      style,
      strictLiterals: true,
    });
    const official = await scoreCruxEval(sandbox, byId, items, completions, {
      cot: false,
      style,
    });
    const inputs = items.flatMap((item, i) => (item.task === 'input' ? [i] : []));
    const outputs = items.flatMap((item, i) => (item.task === 'output' ? [i] : []));
    // strict: the attack never passes, every gold input and output does
    expect(inputs.filter((i) => strict[i]![0]!.verdict === 'pass')).toEqual([]);
    expect(
      inputs.filter((i) => strict[i]![1]!.verdict !== 'pass').map((i) => items[i]!.id),
    ).toEqual([]);
    expect(
      outputs.filter((i) => strict[i]![0]!.verdict !== 'pass').map((i) => items[i]!.id),
    ).toEqual([]);
    // official: the harness passes the attack everywhere, and every such pass is flagged
    expect(inputs.filter((i) => official[i]![0]!.verdict === 'pass')).toHaveLength(800);
    expect(inputs.filter((i) => official[i]![0]!.literal !== false)).toEqual([]);
    expect(inputs.filter((i) => official[i]![1]!.literal !== true)).toEqual([]);
  }, 600_000);
});
