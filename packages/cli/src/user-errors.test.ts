import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cr, CR_BIN, STACK_LINE } from './testing/spawn-cr.js';

// `cr` as a new user meets it (issue 17): each case is a mistake or a damaged run directory, and
// the answer must be exit 2 (or a warning) with a message that names the file and what to do.

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A run directory whose given stages are marked finished, with no outputs to vouch for. */
async function runDirectory(finished: readonly string[]): Promise<string> {
  const dir = await tempDir('cr-state-');
  await writeFile(join(dir, 'config.json'), JSON.stringify({ preset: 'tiny', out: dir }));
  for (const stage of finished) {
    await mkdir(join(dir, stage), { recursive: true });
    await writeFile(
      join(dir, stage, '.done'),
      JSON.stringify({
        stage,
        seconds: 1,
        finishedAt: '2026-01-01T00:00:00.000Z',
        artifacts: {},
        figures: {},
        outputs: {},
      }),
    );
  }
  return dir;
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '') ?? '';
}

describe('cr --version and help', () => {
  it('prints the versions of cr and its packages', async () => {
    const result = await cr(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^cr \d+\.\d+\.\d+ \(@codereasoner\/cli; core-tensors \d+\.\d+\.\d+, .*bench \d+\.\d+\.\d+; node v\d+/,
    );
  }, 30_000);

  it("names the config sections each command reads and TRL's flag names", async () => {
    for (const command of ['run-all', 'data build', 'sft', 'grpo', 'eval', 'bench']) {
      const result = await cr([...command.split(' '), '--help']);
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toContain('Config sections read');
    }
    const grpo = await cr(['grpo', '--help']);
    for (const flag of [
      '--num-generations <n>',
      '--learning-rate <n>',
      '--max-steps <n>',
      '--beta <n>',
      '--loss-type <name>',
      '--temperature <n>',
      '--per-device-train-batch-size <n>',
      '--grpo-preset <name>',
    ])
      expect(grpo.stdout).toContain(flag);
    const sft = await cr(['sft', '--help']);
    for (const flag of ['--max-steps <n>', '--learning-rate <n>', '--max-length <n>'])
      expect(sft.stdout).toContain(flag);
  }, 60_000);

  it('stops quietly with 141 when its reader goes away (`cr sft --help | head -1`)', async () => {
    const child = spawn(process.execPath, [CR_BIN, 'sft', '--help'], {
      env: { ...process.env, CI: 'true', NO_COLOR: '1', CR_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // the reading end closes before cr writes: every write to stdout then fails with EPIPE
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(stderr).not.toMatch(STACK_LINE);
    expect(stderr).toBe('');
    expect(code).toBe(141);
  }, 30_000);
});

describe('TRL-named flags', () => {
  it('map onto the config sections', async () => {
    const dir = await tempDir('cr-flags-');
    const grpo = await cr([
      'grpo',
      '--preset',
      'tiny',
      '--out',
      dir,
      '--print-config',
      '--num-generations',
      '4',
      '--learning-rate',
      '2e-5',
      '--max-steps',
      '7',
      '--beta',
      '0.04',
      '--loss-type',
      'dr_grpo',
      '--temperature',
      '0.9',
      '--steps-per-generation',
      '2',
      '--per-device-train-batch-size',
      '8',
      '--grpo-preset',
      'dapo',
    ]);
    expect(grpo.code, grpo.stderr).toBe(0);
    expect(JSON.parse(grpo.stdout).grpo).toMatchObject({
      numGenerations: 4,
      learningRate: 2e-5,
      maxSteps: 7,
      beta: 0.04,
      lossType: 'dr_grpo',
      temperature: 0.9,
      stepsPerGeneration: 2,
      generationBatchSize: 16,
      preset: 'dapo',
    });
    const sft = await cr([
      'sft',
      '--preset',
      'tiny',
      '--out',
      dir,
      '--print-config',
      '--max-steps',
      '9',
      '--learning-rate',
      '0.001',
      '--per-device-train-batch-size',
      '4',
      '--max-length',
      '256',
    ]);
    expect(sft.code, sft.stderr).toBe(0);
    expect(JSON.parse(sft.stdout).sft).toMatchObject({
      steps: 9,
      learningRate: 0.001,
      batchSize: 4,
      maxSeqLen: 256,
    });
    // --print-config writes nothing
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  }, 60_000);

  it('are validated by the owning package, and enumerations list their values', async () => {
    const dir = await tempDir('cr-flags-bad-');
    const small = await cr(['grpo', '--out', dir, '--num-generations', '1']);
    expect(small.code).toBe(2);
    expect(small.stderr).toContain('/grpo/numGenerations: must be >= 2');
    const loss = await cr(['grpo', '--out', dir, '--loss-type', 'ppo']);
    expect(loss.code).toBe(2);
    expect(loss.stderr).toContain('Allowed choices are grpo, bnpo, dr_grpo, dapo.');
  }, 60_000);

  it('--onnx-threads and --onnx-weights set the onnx section, shown by --print-config; bad values exit 2', async () => {
    const dir = await tempDir('cr-onnx-');
    const shown = await cr([
      'eval',
      '--preset',
      'tiny',
      '--out',
      dir,
      '--print-config',
      '--onnx-threads',
      '2',
      '--onnx-weights',
      'inputs',
    ]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout).onnx).toEqual({ threads: 2, weights: 'inputs' });
    const defaults = await cr(['grpo', '--preset', 'tiny', '--out', dir, '--print-config']);
    expect(JSON.parse(defaults.stdout).onnx).toEqual({ threads: 1, weights: 'auto' });
    const mode = await cr(['grpo', '--out', dir, '--onnx-weights', 'graph']);
    expect(mode.code).toBe(2);
    expect(mode.stderr).toContain('Allowed choices are auto, initializers, inputs.');
    const config = join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ onnx: { threads: 0 } }));
    const threads = await cr(['sft', '--config', config, '--out', join(dir, 'run')]);
    expect(threads.code).toBe(2);
    expect(threads.stderr).toContain('  - /onnx/threads: must be >= 1');
    expect(threads.stderr).not.toMatch(STACK_LINE);
  }, 60_000);

  it('--preset with a GRPO preset points at --grpo-preset', async () => {
    const result = await cr(['grpo', '--preset', 'dapo', '--out', await tempDir('cr-preset-')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("'dapo' is a GRPO preset: use --grpo-preset dapo");
  }, 30_000);
});

describe('config errors', () => {
  it('come in one round, with did-you-mean hints, listed values and one line for a bad source', async () => {
    const dir = await tempDir('cr-config-');
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        unknown: 1,
        sft: { steps: 0 },
        grpo: { num_generations: 4, lossType: 'ppo' },
        data: { source: { kind: 'dir', path: 'x' } },
      }),
    );
    const result = await cr(['run-all', '--config', config, '--out', join(dir, 'run')]);
    expect(result.code).toBe(2);
    const issues = result.stderr.split('\n').filter((line) => line.startsWith('  - '));
    expect(issues).toEqual([
      expect.stringMatching(/^ {2}- \/: unknown property 'unknown'; known: preset, seed, /),
      '  - /data/source/kind: must be one of "generator", "directory", "jsonl" (got "dir")',
      '  - /sft/steps: must be >= 1',
      "  - /grpo: unknown property 'num_generations' (did you mean 'numGenerations'?)",
      '  - /grpo/lossType: must be one of "grpo", "bnpo", "dr_grpo", "dapo" (got "ppo")',
    ]);
    expect(existsSync(join(dir, 'run'))).toBe(false);
  }, 30_000);

  it('a missing --config file exits 2', async () => {
    const dir = await tempDir('cr-noconfig-');
    const result = await cr(['run-all', '--config', join(dir, 'nope.json'), '--out', dir]);
    expect(result.code).toBe(2);
    expect(firstLine(result.stderr)).toBe(
      `cr: Cannot read config file ${join(dir, 'nope.json')}: it does not exist; check the path given to --config`,
    );
  }, 30_000);
});

describe('the run directory', () => {
  it('--out naming a file exits 2 without a stack', async () => {
    const dir = await tempDir('cr-outfile-');
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const result = await cr(['run-all', '--preset', 'tiny', '--out', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(STACK_LINE);
    expect(firstLine(result.stderr)).toBe(
      `cr: --out ${file} is a file, not a directory: give the path of a run directory (new or existing)`,
    );
  }, 30_000);

  it('a damaged .done marker is named, exit 2', async () => {
    const dir = await runDirectory(['data', 'sft']);
    const marker = join(dir, 'sft', '.done');
    await writeFile(marker, (await readFile(marker, 'utf8')).slice(0, 20));
    const result = await cr(['grpo', '--out', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(STACK_LINE);
    expect(result.stderr).toContain(`cr: ${marker} is damaged`);
    expect(result.stderr).toContain(`cr sft --out ${dir}`);
  }, 30_000);

  it('a stage before the one it needs exits 2 with what to run, as text and as a --json event', async () => {
    const dir = await runDirectory(['data']);
    const result = await cr(['grpo', '--out', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(STACK_LINE);
    expect(firstLine(result.stderr)).toBe(
      `cr: cr grpo needs the sft stage, which has not finished in ${dir}: run \`cr sft --out ${dir}\` first, or \`cr run-all --out ${dir}\` for every stage`,
    );
    const json = await cr(['grpo', '--out', dir, '--json']);
    expect(json.code).toBe(2);
    const events = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({
      type: 'error',
      code: 'RUN_STATE',
      exitCode: 2,
      message: expect.stringContaining('cr grpo needs the sft stage'),
    });
    // nothing was stored: the failed command did not touch the run's config
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'))).toEqual({
      preset: 'tiny',
      out: dir,
    });
  }, 30_000);

  it('a bad --benchmarks directory exits 2 and never reaches the stored config', async () => {
    const dir = await runDirectory(['data', 'sft']);
    const stored = await readFile(join(dir, 'config.json'), 'utf8');
    const malformed = await tempDir('cr-badbench-');
    await mkdir(join(malformed, 'cruxeval'));
    await writeFile(
      join(malformed, 'cruxeval', 'cruxeval.jsonl'),
      '{"id": "sample_0", "code": "def f(x): return x", "input": "1", "output": "1"}\nnot json\n',
    );
    const bad = await cr(['bench', '--out', dir, '--benchmarks', malformed]);
    expect(bad.code).toBe(2);
    expect(firstLine(bad.stderr)).toMatch(/cruxeval\/cruxeval\.jsonl:2: not valid JSON/);
    const empty = await tempDir('cr-emptybench-');
    const none = await cr(['run-all', '--out', dir, '--benchmarks', empty]);
    expect(none.code).toBe(2);
    expect(firstLine(none.stderr)).toBe(`cr: no usable benchmark data in ${empty}:`);
    expect(await readFile(join(dir, 'config.json'), 'utf8')).toBe(stored);
  }, 60_000);

  it('an empty held-out split is warned about, not scored as 0.0', async () => {
    const dir = await runDirectory(['data', 'sft']);
    await mkdir(join(dir, 'data', 'tasks'), { recursive: true });
    await writeFile(join(dir, 'data', 'tasks', 'eval.jsonl'), '');
    const result = await cr(['eval', '--out', dir]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      'warning: eval: the held-out split data/tasks/eval.jsonl has no tasks, so no model is evaluated',
    );
    expect(result.stdout).not.toMatch(/\b0\.0\b/);
  }, 60_000);
});

describe('source files', () => {
  it('a .py file that is not UTF-8 is reported and left out; a damaged marker reruns its stage', async () => {
    const dir = await tempDir('cr-source-');
    const source = join(dir, 'src');
    await mkdir(source);
    await writeFile(
      join(source, 'latin.py'),
      Buffer.from('def f(x):\n    return "\xe9" + x\n', 'latin1'),
    );
    await writeFile(
      join(source, 'ok.py'),
      'def g(x):\n    if x > 1:\n        return x\n    return -x\n',
    );
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ data: { source: { kind: 'directory', path: source } } }),
    );
    const result = await cr([
      'data',
      'build',
      '--preset',
      'tiny',
      '--config',
      config,
      '--out',
      join(dir, 'run'),
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      'warning: corpus: left out latin.py: not valid UTF-8 (line 2) and no coding declaration',
    );

    // a damaged marker of the stage a command runs: the stage runs again and resumes, exit 0
    const marker = join(dir, 'run', 'data', '.done');
    await writeFile(marker, (await readFile(marker, 'utf8')).slice(0, 20));
    const again = await cr(['data', 'build', '--out', join(dir, 'run')]);
    expect(again.code, again.stderr).toBe(0);
    expect(firstLine(again.stderr)).toBe(
      `warning: ${marker} is damaged; running data again (it resumes from its outputs)`,
    );
    expect(JSON.parse(await readFile(marker, 'utf8')).stage).toBe('data');
  }, 120_000);
});
