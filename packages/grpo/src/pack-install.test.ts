import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

/*
 * The published-package check: `pnpm pack` grpo and core-tensors (workspace:^ becomes a version
 * range), `npm install` both tarballs into a fresh project outside the workspace (third-party
 * dependencies come from the registry), and run the README's example there. The install is
 * reused across runs while the tarballs are byte-identical (keyed by their hash), so only a
 * changed package pays for a new install.
 */

const run = promisify(execFile);
const grpoDir = fileURLToPath(new URL('..', import.meta.url));
const coreDir = dirname(
  createRequire(import.meta.url).resolve('@codereasoner/core-tensors/package.json'),
);
const INSTALL_PREFIX = 'codereasoner-grpo-install-';
const packDirs: string[] = [];

afterAll(async () => {
  for (const dir of packDirs) await rm(dir, { recursive: true, force: true });
});

/** The environment without the npm_* variables a parent `pnpm run` sets (they would configure the child npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.toLowerCase().startsWith('npm_')),
  );
}

async function pnpmPack(cwd: string, destination: string): Promise<void> {
  const execPath = process.env['npm_execpath'];
  // Under `pnpm test` pnpm may not be on PATH (npx pnpm), but npm_execpath points at it.
  const [command, args] =
    execPath !== undefined && /pnpm/.test(execPath) ? [process.execPath, [execPath]] : ['pnpm', []];
  await run(command, [...args, 'pack', '--pack-destination', destination], {
    cwd,
    env: cleanEnv(),
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function readmeExample(readme: string): string {
  const match = /## Example[\s\S]*?```js\n([\s\S]*?)```/.exec(readme);
  if (match === null) throw new Error('README.md has no ```js block under "## Example"');
  return match[1]!;
}

it('installs from packed tarballs outside the workspace and runs the README example', async () => {
  const packDir = await mkdtemp(join(tmpdir(), 'grpo-pack-'));
  packDirs.push(packDir);
  await pnpmPack(coreDir, packDir);
  await pnpmPack(grpoDir, packDir);
  const tarballs = (await readdir(packDir)).filter((f) => f.endsWith('.tgz')).sort();
  expect(tarballs).toEqual(
    ['codereasoner-core-tensors-0.1.0.tgz', 'codereasoner-grpo-0.1.0.tgz'].sort(),
  );

  const hash = createHash('sha256');
  for (const name of tarballs) hash.update(await readFile(join(packDir, name)));
  const key = hash.digest('hex').slice(0, 16);
  const project = join(tmpdir(), `${INSTALL_PREFIX}${key}`);
  // Stale installs of earlier tarballs are removed.
  for (const name of await readdir(tmpdir())) {
    if (name.startsWith(INSTALL_PREFIX) && name !== `${INSTALL_PREFIX}${key}`) {
      await rm(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
  if (!(await exists(join(project, '.installed')))) {
    await rm(project, { recursive: true, force: true });
    await mkdir(project, { recursive: true });
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'grpo-consumer', private: true, type: 'module' }),
    );
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', ...tarballs.map((t) => join(packDir, t))],
      {
        cwd: project,
        env: cleanEnv(),
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    await writeFile(join(project, '.installed'), `${new Date().toISOString()}\n`);
  }
  const installed = JSON.parse(
    await readFile(join(project, 'node_modules/@codereasoner/grpo/package.json'), 'utf8'),
  ) as {
    dependencies: Record<string, string>;
  };
  expect(installed.dependencies['@codereasoner/core-tensors']).toBe('^0.1.0');
  // Nothing resolves back into the workspace.
  expect(await exists(join(project, 'node_modules/@codereasoner/core-tensors/dist/index.js'))).toBe(
    true,
  );

  // The example as published (the README inside the tarball).
  const example = readmeExample(
    await readFile(join(project, 'node_modules/@codereasoner/grpo/README.md'), 'utf8'),
  );
  await writeFile(join(project, 'example.mjs'), example);
  const { stdout } = await run(process.execPath, ['example.mjs'], {
    cwd: project,
    env: cleanEnv(),
    timeout: 240_000,
  });
  const summary = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    steps: number;
    first: number;
    last: number;
    greedy: string[];
  };
  expect(summary.steps).toBe(60);
  expect(stdout).toContain('step 60: reward');
  // The reward is earned: above 0.5, the most any constant answer gets, and the trained policy
  // gives each question its own answer.
  expect(summary.first).toBeLessThan(0.1);
  expect(summary.last).toBeGreaterThan(0.75);
  expect(summary.greedy).toEqual(['4', '7']);
}, 600_000);
