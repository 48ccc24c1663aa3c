// `pnpm cr …`: build the CLI and what it depends on (turbo's cache makes this ~1 s when nothing
// changed), show the build log only if it fails, then run `cr` with the given arguments.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync(
  'pnpm',
  ['exec', 'turbo', 'run', 'build', '--filter=@codereasoner/cli...', '--output-logs=errors-only'],
  { cwd: root, encoding: 'utf8' },
);
if (build.status !== 0) {
  process.stderr.write(build.stdout + build.stderr);
  process.stderr.write('cr: building the packages failed (log above).\n');
  process.exit(build.status ?? 1);
}
const run = spawnSync(
  process.execPath,
  [join(root, 'packages/cli/dist/bin.js'), ...process.argv.slice(2)],
  {
    stdio: 'inherit',
  },
);
process.exit(run.status ?? 1);
