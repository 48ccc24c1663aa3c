import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractFunctions } from './extract.js';
import { stripComments } from '@codereasoner/protocol';
import { sliceUnit } from './slice.js';

// Fixtures: real-world-style functions with boilerplate. Each file lists its calls
// (`# call: f(...)`) and text that slicing must remove (`# removed:`) or keep (`# kept:`).
const fixtureDir = join(import.meta.dirname, '__fixtures__', 'slicing');
const fixtures = readdirSync(fixtureDir)
  .filter((name) => name.endsWith('.py'))
  .sort()
  .map((name) => {
    const text = readFileSync(join(fixtureDir, name), 'utf8');
    const directive = (kind: string): string[] =>
      [...text.matchAll(new RegExp(`^# ${kind}: (.*)$`, 'gm'))].map((m) => m[1]!);
    const calls = directive('call');
    return {
      name,
      text,
      calls,
      removed: directive('removed'),
      kept: directive('kept'),
      entry: calls[0]!.split('(')[0]!,
    };
  });

let sandbox: Sandbox;
beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 1 });
}, 60_000);
afterAll(async () => {
  await sandbox.close();
});

describe('sliceUnit on real-world-style fixtures', () => {
  it('has fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(6);
  });

  for (const fixture of fixtures) {
    it(`${fixture.name}: removes boilerplate and keeps behaviour`, async () => {
      const extracted = await extractFunctions(fixture.text);
      expect(extracted.status).toBe('ok');
      if (extracted.status !== 'ok') return;
      const outcome = extracted.outcomes.find(
        (o) => (o.ok ? o.unit.entryPoint : o.entryPoint) === fixture.entry,
      );
      expect(outcome?.ok).toBe(true);
      if (outcome === undefined || !outcome.ok) return;
      const sliced = await sliceUnit(outcome.unit.code, fixture.entry);
      expect(sliced.ok).toBe(true);
      if (!sliced.ok) return;
      expect(sliced.changed).toBe(true);
      expect(stripComments(sliced.code)).toBe(sliced.code);
      expect(sliced.code).not.toMatch(/"""|'''/);
      for (const text of fixture.removed)
        expect(sliced.code, `should remove ${text}`).not.toContain(text);
      for (const text of fixture.kept) expect(sliced.code, `should keep ${text}`).toContain(text);
      const runs = await sandbox.runBatch([
        ...fixture.calls.map((call) => ({ code: outcome.unit.code, call })),
        ...fixture.calls.map((call) => ({ code: sliced.code, call })),
      ]);
      const original = runs.slice(0, fixture.calls.length);
      const after = runs.slice(fixture.calls.length);
      for (const [index, run] of original.entries()) {
        expect(run.status).toBe('ok');
        expect(after[index]!.status).toBe('ok');
        expect(after[index]!.repr).toBe(run.repr);
        expect(after[index]!.stdout).toBe('');
      }
    });
  }
});

describe('sliceUnit details', () => {
  it('turns emptied blocks into pass and drops emptied else clauses', async () => {
    const code = [
      'def f(x):',
      '    y = 0',
      '    if x > 1:',
      '        print(x)',
      '    else:',
      '        print("small")',
      '    for i in range(3):',
      '        y += i',
      '    return y',
      '',
    ].join('\n');
    const sliced = await sliceUnit(code, 'f');
    expect(sliced).toMatchObject({
      ok: true,
      code: 'def f(x):\n    y = 0\n    for i in range(3):\n        y += i\n    return y\n',
    });
  });

  it('keeps a branch whose sibling matters, with pass in the emptied branch', async () => {
    const code =
      'def f(n):\n    out = []\n    if n < 0:\n        print("neg")\n    elif n < 5:\n        out.append(n)\n    return out\n';
    const sliced = await sliceUnit(code, 'f');
    expect(sliced.ok && sliced.code).toBe(
      'def f(n):\n    out = []\n    if n < 0:\n        pass\n    elif n < 5:\n        out.append(n)\n    return out\n',
    );
  });

  it('strips annotations of parameters, returns and assignments', async () => {
    const code =
      'def f(a: int, b: str = "x") -> str:\n    c: str = b * a\n    d: int\n    return c\n';
    const sliced = await sliceUnit(code, 'f');
    expect(sliced.ok && sliced.code).toBe('def f(a, b="x"):\n    c = b * a\n    return c\n');
    expect(sliced.ok && sliced.stats.annotations).toBe(5);
  });

  it('keeps multi-line strings intact, blank lines included', async () => {
    const code = 'def f(x):\n    text = """a\n\nb"""\n    return text + x\n';
    const sliced = await sliceUnit(code, 'f');
    expect(sliced.ok && sliced.code).toBe(code);
    expect(sliced.ok && sliced.changed).toBe(false);
  });

  it('does only the clean-up when dependency slicing is off', async () => {
    const code = 'def f(x):\n    unused = x * 2  # note\n    return x\n';
    expect(await sliceUnit(code, 'f', { dependencies: false })).toMatchObject({
      ok: true,
      code: 'def f(x):\n    unused = x * 2\n    return x\n',
    });
    expect(await sliceUnit(code, 'f')).toMatchObject({
      ok: true,
      code: 'def f(x):\n    return x\n',
    });
  });
});
