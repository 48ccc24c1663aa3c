import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const buffer = await readFile(path);
  return { sha256: createHash('sha256').update(buffer).digest('hex'), bytes: buffer.length };
}

const require = createRequire(import.meta.url);

function versionOf(name: string): string | undefined {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    // Packages whose exports map hides package.json: walk up from the resolved entry.
    try {
      let dir = dirname(require.resolve(name));
      for (let i = 0; i < 6; i += 1) {
        try {
          const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
            name?: string;
            version?: string;
          };
          if (pkg.name === name) return pkg.version;
        } catch {
          // keep walking up
        }
        dir = dirname(dir);
      }
    } catch {
      return undefined;
    }
    return undefined;
  }
}

/** Versions of bench, the packages it uses and their main third-party dependencies, as installed. */
export function packageVersions(): Record<string, string> {
  const own = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    name: string;
    version: string;
  };
  const out: Record<string, string> = { [own.name]: own.version };
  for (const name of [
    '@codereasoner/sandbox',
    '@codereasoner/protocol',
    '@codereasoner/core-tensors',
    'openai',
    'ajv',
  ]) {
    const version = versionOf(name);
    if (version !== undefined) out[name] = version;
  }
  // The sandbox's Python comes from pyodide, a dependency of @codereasoner/sandbox.
  try {
    const sandboxRequire = createRequire(require.resolve('@codereasoner/sandbox'));
    out.pyodide = (sandboxRequire('pyodide/package.json') as { version: string }).version;
  } catch {
    // not installed beside sandbox
  }
  return out;
}
