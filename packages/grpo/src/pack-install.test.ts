import { execFile } from 'node:child_process';
import {
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';

/*
 * The published-package check: `pnpm pack` grpo and every workspace package it depends on
 * (workspace:^ becomes a version range), install the tarballs into a fresh project outside the
 * workspace, and run the README's example there. No registry is asked: each tarball is
 * unpacked as npm would place it, and the third-party dependencies it declares are linked, in
 * its own node_modules, to the copies this workspace already installed (the same versions,
 * resolved from the same ranges). So a file missing from `files`, a workspace dependency left
 * undeclared or a third-party one the tarball does not declare fails here as it would for a user.
 */

const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL('../..', import.meta.url));
const WORKSPACE_SCOPE = '@codereasoner/';
const tempDirs: string[] = [];

afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

interface Manifest {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
}

async function manifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** The environment without the npm_* variables a parent `pnpm run` sets (they would configure the child). */
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

/** The name `pnpm pack` gives a package's tarball. */
function tarballName({ name, version }: Manifest): string {
  return `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
}

/** grpo and the workspace packages it depends on, directly or not: directory per package name. */
async function workspaceClosure(start: string): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  const pending = [start];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const { name, dependencies = {} } = await manifest(dir);
    if (dirs.has(name)) continue;
    dirs.set(name, dir);
    for (const [dep, range] of Object.entries(dependencies))
      if (range.startsWith('workspace:'))
        pending.push(join(packagesDir, dep.slice(WORKSPACE_SCOPE.length)));
  }
  return dirs;
}

function readmeExample(readme: string): string {
  const match = /## Example[\s\S]*?```js\n([\s\S]*?)```/.exec(readme);
  if (match === null) throw new Error('README.md has no ```js block under "## Example"');
  return match[1]!;
}

it('installs from packed tarballs outside the workspace and runs the README example', async () => {
  const sources = await workspaceClosure(join(packagesDir, 'grpo'));
  expect([...sources.keys()]).toContain('@codereasoner/core-tensors');
  const packDir = await mkdtemp(join(tmpdir(), 'grpo-pack-'));
  const project = await mkdtemp(join(tmpdir(), 'grpo-consumer-'));
  tempDirs.push(packDir, project);
  for (const dir of sources.values()) await pnpmPack(dir, packDir);
  const expected = await Promise.all(
    [...sources.values()].map(async (dir) => tarballName(await manifest(dir))),
  );
  expect((await readdir(packDir)).sort()).toEqual(expected.sort());

  await writeFile(
    join(project, 'package.json'),
    JSON.stringify({ name: 'grpo-consumer', private: true, type: 'module' }),
  );
  for (const [name, sourceDir] of sources) {
    const source = await manifest(sourceDir);
    const target = join(project, 'node_modules', name);
    await mkdir(target, { recursive: true });
    // npm's tarballs hold one top folder, `package/`.
    await run('tar', [
      '-xzf',
      join(packDir, tarballName(source)),
      '-C',
      target,
      '--strip-components=1',
    ]);
    const packed = await manifest(target);
    for (const [dep, range] of Object.entries(packed.dependencies ?? {})) {
      const declared = source.dependencies?.[dep];
      if (dep.startsWith(WORKSPACE_SCOPE)) {
        // workspace:^ became a caret range on the version in that package's package.json.
        const { version } = await manifest(sources.get(dep)!);
        expect(declared, `${name} -> ${dep}`).toBe('workspace:^');
        expect(range, `${name} -> ${dep}`).toBe(`^${version}`);
        continue;
      }
      expect(range, `${name} -> ${dep}`).toBe(declared);
      const link = join(target, 'node_modules', dep);
      await mkdir(join(link, '..'), { recursive: true });
      await symlink(await realpath(join(sourceDir, 'node_modules', dep)), link, 'dir');
    }
  }
  // The workspace packages are the unpacked tarballs, not links back into the workspace.
  expect(await exists(join(project, 'node_modules/@codereasoner/core-tensors/dist/index.js'))).toBe(
    true,
  );
  expect(await exists(join(project, 'node_modules/@codereasoner/core-tensors/src'))).toBe(false);

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
