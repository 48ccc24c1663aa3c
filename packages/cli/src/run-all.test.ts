import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cr } from './testing/spawn-cr.js';

// End to end: the built `cr` binary, in a child process, exactly as a user runs it, on a clone
// of the repository alone: the benchmark stage uses the CRUXEval copy @codereasoner/bench ships.

describe('cr run-all (tiny preset)', () => {
  it('survives being killed mid-SFT, resumes, and writes every artifact and the summary', async () => {
    const out = await mkdtemp(join(tmpdir(), 'cr-run-'));
    // --benchmarks without a directory: the data the bench package ships
    const args = ['run-all', '--preset', 'tiny', '--out', out, '--benchmarks'];

    // first run: killed (SIGKILL, no chance to clean up) once SFT has written a checkpoint
    const killed = await cr(args, {
      killWhen: () =>
        existsSync(join(out, 'sft', 'train', 'checkpoints')) &&
        hasCheckpoint(join(out, 'sft', 'train', 'checkpoints')),
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'data', '.done'))).toBe(true);
    expect(existsSync(join(out, 'sft', '.done'))).toBe(false);

    // second run: skips the corpus, resumes SFT from its checkpoint; killed once evaluation has
    // saved some items of a model
    const killedInEval = await cr(args, { killWhen: () => evaluationSaved(join(out, 'eval')) });
    expect(killedInEval.signal, killedInEval.stderr).toBe('SIGKILL');
    expect(killedInEval.stderr).toMatch(/data skipped/);
    expect(existsSync(join(out, 'sft', '.done'))).toBe(true);

    // third run: evaluation resumes with the items saved before the kill, and everything finishes
    const resumed = await cr(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/eval (base|sft|grpo): resuming with \d+ items scored earlier/);
    expect(readdirSync(join(out, 'eval')).filter((name) => name.endsWith('.items.jsonl'))).toEqual(
      [],
    );
    const sftMetrics = (await readFile(join(out, 'sft', 'train', 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = sftMetrics.filter((m) => m.kind === 'step').map((m) => m.step as number);
    expect(steps.at(-1)).toBe(6);

    for (const stage of ['data', 'sft', 'grpo', 'eval', 'bench']) {
      expect(existsSync(join(out, stage, '.done')), `${stage} marker`).toBe(true);
    }
    for (const file of [
      'config.json',
      'data/manifest.json',
      'data/tasks/train.jsonl',
      'data/tasks/eval.jsonl',
      'sft/tokenizer.json',
      'sft/base/model.safetensors',
      'grpo/train/metrics.jsonl',
      'eval/base.json',
      'eval/sft.json',
      'eval/grpo.json',
      'eval/baselines.json',
      'summary.md',
      'summary.json',
      'report.html',
    ]) {
      expect(existsSync(join(out, file)), file).toBe(true);
    }
    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
    expect(summary.evaluation.map((e: { model: string }) => e.model)).toEqual([
      'base',
      'sft',
      'grpo',
    ]);
    for (const model of ['base', 'sft', 'grpo']) {
      const saved = JSON.parse(readFileSync(join(out, 'eval', `${model}.json`), 'utf8'));
      // 3 held-out tasks of each of the 5 types, each scored once across the interruption
      expect(saved.items.map((item: { taskId: string }) => item.taskId).length, model).toBe(15);
      expect(new Set(saved.items.map((item: { taskId: string }) => item.taskId)).size).toBe(15);
    }
    for (const evaluation of summary.evaluation) {
      expect(Object.keys(evaluation.accuracy).sort()).toEqual([
        'coverage',
        'input',
        'output',
        'path',
        'state',
      ]);
      expect(evaluation.overall).toBeGreaterThanOrEqual(0);
      expect(evaluation.overall).toBeLessThanOrEqual(1);
    }
    expect(summary.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'data',
      'sft',
      'grpo',
      'eval',
      'bench',
    ]);
    // every model beside the baselines, scored on the same items
    expect(Object.keys(summary.baselines.byType).sort()).toEqual(
      Object.keys(summary.evaluation[0].accuracy).sort(),
    );
    expect(summary.baselines.overall.best.total).toBe(summary.evalTasks);
    // the terminal summary names the table, every stage and the report
    expect(resumed.stdout).toMatch(/model\s+output\s+input\s+coverage\s+state\s+path\s+overall/);
    expect(resumed.stdout).toMatch(/\nbest baseline\s+\d/);
    expect(resumed.stdout).toContain('Lift over the best baseline (points):');
    expect(resumed.stdout).toContain(join(out, 'report.html'));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    // SFT loss and accuracy; GRPO reward, zero-std groups, entropy, clip ratio, length (no KL: beta 0)
    expect(html.match(/<svg /g)?.length).toBe(7);
    expect(html).not.toContain('GRPO KL to reference');
    expect(html).toContain('frac_reward_zero_std');
    expect(html).toContain('Sample completions (grpo, held-out)');
    expect(html).toContain('CodeReasoner-7B (paper)');

    // a third run does nothing but report
    const again = await cr([...args, '--json']);
    expect(again.code).toBe(0);
    const events = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.filter((e) => e.type === 'stage-end').every((e) => e.status === 'skipped')).toBe(
      true,
    );
    expect(events.at(-1).type).toBe('result');

    // `cr bench` on the run's own model: its flags override the run's bench settings
    const bench = await cr([
      'bench',
      '--out',
      out,
      '--only',
      'cruxeval',
      '--limit',
      '1',
      '--force',
    ]);
    expect(bench.code, bench.stderr).toBe(0);
    const cruxeval = JSON.parse(
      await readFile(join(out, 'bench', 'cruxeval', 'summary.json'), 'utf8'),
    );
    expect(cruxeval.settings.limit).toBe(1);
    expect(cruxeval.tasks.output.items).toBe(1);

    // a final checkpoint truncated after the run finished is caught before grpo is skipped
    const checkpoint = JSON.parse(await readFile(join(out, 'grpo', '.done'), 'utf8')).artifacts
      .checkpoint as string;
    const weights = join(out, checkpoint, 'model.safetensors');
    const size = statSync(weights).size;
    await truncate(weights, Math.floor(size / 2));
    const damaged = await cr(args);
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toContain(
      `${checkpoint}/model.safetensors has ${Math.floor(size / 2)} bytes, ${size} when the stage finished`,
    );
    expect(damaged.stderr).toContain(`--force grpo\` to redo grpo and every stage after it`);

    // forcing the first stage rebuilds it and deletes every later stage's outputs, which were made from it
    const rebuilt = await cr(['data', 'build', '--out', out, '--force']);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(existsSync(join(out, 'data', '.done'))).toBe(true);
    for (const stage of ['sft', 'grpo', 'eval', 'bench'])
      expect(existsSync(join(out, stage)), stage).toBe(false);
  }, 600_000);
});

/** Some items of a model's evaluation are saved, and that model has not finished. */
function evaluationSaved(dir: string): boolean {
  try {
    return readdirSync(dir).some(
      (name) => name.endsWith('.items.jsonl') && statSync(join(dir, name)).size > 0,
    );
  } catch {
    return false;
  }
}

function hasCheckpoint(dir: string): boolean {
  try {
    // the directory may vanish between the existence check and the read
    return readdirSync(dir).some((name) => /^step-\d{8}$/.test(name));
  } catch {
    return false;
  }
}

describe('cr errors', () => {
  it('exits 2 and lists each problem of a bad config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-bad-'));
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ seed: 'one', sft: { steps: 0 }, model: { hiddenSize: 3 }, unknown: 1 }),
    );
    const result = await cr(['run-all', '--config', config, '--out', join(dir, 'run')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("/: unknown property 'unknown'");
    expect(result.stderr).toContain('/seed: must be integer');
    expect(existsSync(join(dir, 'run'))).toBe(false);
  }, 30_000);

  it("exits 2 when cr bench on the run's own model gets a setting only --checkpoint takes", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-bench-flags-'));
    const result = await cr([
      'bench',
      '--benchmarks',
      dir,
      '--samples',
      '4',
      '--prompt-style',
      'official',
      '--out',
      join(dir, 'run'),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      "--samples, --prompt-style cannot be used when scoring the run's own model",
    );
  }, 30_000);

  it('refuses to continue a run directory with another preset', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-preset-'));
    await writeFile(join(dir, 'config.json'), JSON.stringify({ preset: 'tiny', out: dir }));
    const result = await cr(['run-all', '--preset', 'default', '--out', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`run directory ${dir} was made with --preset tiny`);
  }, 30_000);

  it('exits 2 with a clear message for a benchmark directory that does not exist', async () => {
    const result = await cr([
      'run-all',
      '--preset',
      'tiny',
      '--benchmarks',
      '/nonexistent/benchmarks',
      '--out',
      join(tmpdir(), 'cr-x'),
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('benchmark directory /nonexistent/benchmarks does not exist');
  }, 30_000);

  it('fails with the file and line of a malformed benchmark file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cr-bench-'));
    await mkdir(join(dir, 'cruxeval'));
    await writeFile(
      join(dir, 'cruxeval', 'cruxeval.jsonl'),
      '{"code": "def f(x): return x", "input": "1"}\nnot json\n',
    );
    const result = await cr([
      'bench',
      '--benchmarks',
      dir,
      '--only',
      'cruxeval',
      '--endpoint',
      'http://127.0.0.1:9/v1',
      '--model',
      'm',
      '--out',
      join(dir, 'out'),
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cruxeval\/cruxeval\.jsonl:2: not valid JSON/);
  }, 60_000);
});
