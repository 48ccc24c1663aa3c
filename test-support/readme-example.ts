// Shared by the packages' readme.test.ts: run a README's example block as written, so that a
// documented name, option or result shape cannot drift from the code unnoticed. Test-only; no
// package ships it.
import { readFileSync } from 'node:fs';

/**
 * The first ```<lang> block of a README, after the heading `## <heading>` when one is given.
 * Throws when there is none, so a renamed section fails the test instead of running nothing.
 */
export function readmeBlock(
  readmeUrl: URL,
  options: { heading?: string; lang?: string } = {},
): string {
  const readme = readFileSync(readmeUrl, 'utf8');
  const start = options.heading === undefined ? 0 : readme.indexOf(`\n## ${options.heading}\n`);
  if (start === -1) throw new Error(`${readmeUrl.pathname} has no "## ${options.heading}" section`);
  const lang = options.lang ?? 'ts';
  const match = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(readme.slice(start));
  if (!match)
    throw new Error(
      `${readmeUrl.pathname} has no ${lang} block${options.heading ? ` under "## ${options.heading}"` : ''}`,
    );
  return match[1]!;
}

/** `import { a, b as c } from 'x';` → `const { a, b: c } = await __import('x');` (the block is an ES module). */
export function importsToLookups(code: string): string {
  return code.replace(
    /import\s*\{([^}]*)\}\s*from\s*'([^']+)';/g,
    (_, names: string, spec: string) =>
      `const {${names.replace(/\bas\b/g, ':')}} = await __import(${JSON.stringify(spec)});`,
  );
}

/**
 * Runs an example (ES-module source) with its imports served from `modules` (anything else is an
 * error naming it) and returns the arguments of every `console.log` call, in order.
 */
export async function runExample(
  code: string,
  modules: Record<string, unknown>,
): Promise<unknown[][]> {
  const logs: unknown[][] = [];
  const run = new Function(
    '__import',
    'console',
    `return (async () => {\n${importsToLookups(code)}\n})();`,
  ) as (
    load: (spec: string) => Promise<unknown>,
    log: { log: (...a: unknown[]) => void },
  ) => Promise<void>;
  await run(
    async (spec) => {
      if (!(spec in modules))
        throw new Error(`the README example imports unexpected module ${spec}`);
      return modules[spec];
    },
    { log: (...args: unknown[]) => logs.push(args) },
  );
  return logs;
}
