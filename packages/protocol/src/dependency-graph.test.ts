import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The package graph this package exists for (docs/architecture.md): the task protocol loads
// without the corpus builder's tree-sitter, and the packages that only speak the protocol (sft,
// bench, serve, grpo) do not install the corpus builder. Read from the workspace's package.json
// files, production `dependencies` only (devDependencies are not installed for users).

const packagesDir = fileURLToPath(new URL('../..', import.meta.url));
const SCOPE = '@codereasoner/';

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
}

const manifests = new Map<string, Manifest>(
  readdirSync(packagesDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      try {
        const manifest = JSON.parse(
          readFileSync(join(packagesDir, entry.name, 'package.json'), 'utf8'),
        ) as Manifest;
        return [[manifest.name, manifest] as const];
      } catch {
        return []; // a folder without package.json is not a package
      }
    }),
);

/**
 * Every package a user gets by installing `name`: its production dependencies, and for the
 * workspace ones theirs, transitively. Third-party packages' own dependencies are not walked
 * (none of ours lists tree-sitter's as a transitive need; the direct names are what we control).
 */
function productionClosure(name: string): Set<string> {
  const seen = new Set<string>();
  const queue = [name];
  while (queue.length > 0) {
    const current = queue.pop()!;
    const manifest = manifests.get(current);
    if (manifest === undefined) throw new Error(`${current}: not a workspace package`);
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      if (dep.startsWith(SCOPE)) queue.push(dep);
    }
  }
  return seen;
}

describe('package graph', () => {
  it('reads the workspace packages', () => {
    // Guards the checks below against passing on an empty graph.
    for (const name of ['protocol', 'data', 'sft', 'bench', 'serve', 'grpo', 'cli'])
      expect(manifests.has(`${SCOPE}${name}`), name).toBe(true);
    expect(productionClosure('@codereasoner/data')).toContain('web-tree-sitter');
  });

  it('protocol installs neither tree-sitter nor the corpus builder', () => {
    const closure = productionClosure('@codereasoner/protocol');
    expect(closure).toContain('@codereasoner/sandbox');
    for (const forbidden of ['web-tree-sitter', 'tree-sitter-python', '@codereasoner/data'])
      expect(closure.has(forbidden), `${forbidden} in protocol's dependency closure`).toBe(false);
  });

  it('openai is only an optional peer of protocol (its chat-client entry)', () => {
    expect(productionClosure('@codereasoner/protocol').has('openai')).toBe(false);
  });

  it.each(['sft', 'bench', 'serve', 'grpo'])(
    '%s does not depend on @codereasoner/data or tree-sitter',
    (name) => {
      const closure = productionClosure(`${SCOPE}${name}`);
      for (const forbidden of ['@codereasoner/data', 'web-tree-sitter', 'tree-sitter-python'])
        expect(closure.has(forbidden), `${forbidden} in ${name}'s dependency closure`).toBe(false);
    },
  );
});
