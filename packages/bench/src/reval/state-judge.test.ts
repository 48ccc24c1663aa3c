// REval state answers under the one judging rule (issue 12, item 4): the official harness evals
// each answer with full builtins, so an answer can rewrite the comparison for every answer after
// it. Here every value text is judged by CPython's parser in the sandbox first; literals reach the
// harness as rebuilt values, non-literals run (official scoring) only in a pass of their own and
// are flagged, and strict scoring refuses them.
import { describe, expect, it } from 'vitest';
import { adversarialCorpus, fill, judgeEngines } from '../../../../test-support/adversarial.js';
import type { SampleVerdict } from '../types.js';
import { revalGroupItems, scoreReval } from './items.js';
import { useTracedRevalFixture } from './test-fixture.js';

// Replaces the harness's comparison through the caller's frame, then is the int 1.
const REWRITE =
  "__import__('sys')._getframe(1).f_globals.__setitem__('_state_eq', lambda a, b: True) or 1; int";

for (const { engine, skip } of judgeEngines) {
  describe.skipIf(skip !== false)(`REval state judge, ${engine} engine${skip || ''}`, () => {
    const reval = useTracedRevalFixture(engine);

    /** Every state question of the fixture, with the texts per question made by `texts`. */
    async function scoreAll(
      texts: (gold: string) => string[],
      strict: boolean,
      style: 'official' | 'protocol' = 'official',
    ) {
      const items = [];
      const contexts = [];
      const golds: string[] = [];
      let g = 0;
      for (const problem of reval.problems) {
        for (const group of problem.groups) {
          for (const { item, context } of revalGroupItems(
            problem,
            group,
            reval.truths[g]!,
            ['state'],
            {
              cot: false,
              style: 'official',
            },
          )) {
            const gold = context.truth.probes[context.probe]!.gold;
            if (gold === null) continue;
            items.push(item);
            contexts.push(context);
            golds.push(gold);
          }
          g += 1;
        }
      }
      const completions = golds.map((gold) =>
        texts(gold).map((text) =>
          style === 'official' ? `[ANSWER]\n${text}\n[/ANSWER]` : `<answer>${text}</answer>`,
        ),
      );
      const verdicts = await scoreReval(reval.sandbox, items, contexts, completions, {
        cot: false,
        style,
        strictLiterals: strict,
      });
      return { golds, verdicts };
    }

    const wrongOf = (gold: string) =>
      gold === 'Nil' ? '0; int' : `${gold.slice(0, gold.lastIndexOf(';'))} + [0]; list`;
    const silentPasses = (verdicts: SampleVerdict[][], sample: number, strict: boolean) =>
      verdicts.filter(
        (v) => v[sample]!.verdict === 'pass' && (strict || v[sample]!.literal !== false),
      ).length;

    it('an answer that rewrites the comparison changes no other verdict, and is flagged', async () => {
      // Per question: the rewrite, then a plainly wrong literal, then the gold.
      const wrong = (gold: string) => (gold === 'Nil' ? '12345; int' : "'no such value'; str");
      const official = await scoreAll((gold) => [REWRITE, wrong(gold), gold], false);
      const n = official.golds.length;
      expect(n).toBeGreaterThan(5);
      expect(official.verdicts.map((v) => v[1]!.verdict)).toEqual(new Array(n).fill('fail'));
      expect(official.verdicts.map((v) => v[2]!.verdict)).toEqual(new Array(n).fill('pass'));
      // Official scoring evaluates it as the official harness would; every such pass is flagged.
      expect(silentPasses(official.verdicts, 0, false)).toBe(0);
      const strict = await scoreAll((gold) => [REWRITE, wrong(gold), gold], true);
      expect(strict.verdicts.map((v) => v.map((s) => s.verdict))).toEqual(
        new Array(n).fill(['fail', 'fail', 'pass']),
      );
      expect(strict.verdicts[0]![0]!.reason).toContain('not a literal');
    }, 300_000);

    it('follows the official parser: raw-text fallback for str, exact types', async () => {
      const { verdicts } = await scoreAll(() => ['True; bool', '1; int', 'hello; str'], false);
      expect(verdicts.length).toBeGreaterThan(0);
      // one probe of the fixture holds a bool; `1; int` must never pass for it
      for (const samples of verdicts) {
        if (samples[0]!.verdict === 'pass') expect(samples[1]!.verdict).toBe('fail');
        // `hello` does not evaluate: the official parser keeps the raw text as the string
        expect(samples[2]!.reason).not.toContain('unparsable');
      }
    }, 300_000);

    for (const strict of [false, true]) {
      it(`accepts no adversarial answer and every gold (${strict ? 'strict' : 'official'})`, async () => {
        const attacks = (gold: string) => {
          if (gold === 'Nil') return [];
          const semicolon = gold.lastIndexOf(';');
          const [value, type] = [gold.slice(0, semicolon), gold.slice(semicolon + 1).trim()];
          return [
            ...adversarialCorpus.value.map(
              (entry) => `${fill(entry.text, { gold: value, wrong: `${value} + [0]` })}; ${type}`,
            ),
            REWRITE,
          ];
        };
        const size = attacks("'x'; str").length;
        const { golds, verdicts } = await scoreAll(
          (gold) => [
            ...(gold === 'Nil' ? new Array(size).fill(wrongOf('1; int')) : attacks(gold)),
            gold,
          ],
          strict,
        );
        let accepted = 0;
        for (let sample = 0; sample < size; sample += 1)
          accepted += silentPasses(verdicts, sample, strict);
        console.log(
          `adversarial answers accepted (${engine}, REval state, ${strict ? 'strict' : 'official'}): ${accepted} over ${golds.length} questions`,
        );
        expect(accepted).toBe(0);
        expect(verdicts.map((v) => v[size]!.verdict)).toEqual(new Array(golds.length).fill('pass'));
      }, 300_000);
    }
  });
}
