// Times scoring the oracle (gold answers) on all three benchmarks, end to end: loading, prompts,
// REval ground truth by tracing, extraction, scoring by execution in the sandbox, reports.
// Usage: pnpm --filter @codereasoner/bench bench [-- --data <dir> --workers N --null]
// <dir> holds cruxeval/, reval/ and (when exported) livecodebench-execution/execution-v2.jsonl;
// default: ../shared/benchmarks of the checkout. Without an LCB export, the package's fixture is used.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '@codereasoner/sandbox';
import { createNullModel, createOracleModel, runBenchmark } from '../dist/index.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : fallback;
};
const dataDir = option(
  'data',
  process.env.CR_BENCHMARKS_DIR ??
    fileURLToPath(new URL('../../../../shared/benchmarks', import.meta.url)),
);
const workers = Number(option('workers', String(cpus().length)));
const withNull = args.includes('--null');
const fixtures = fileURLToPath(new URL('../src/__fixtures__', import.meta.url));

const sources = {
  cruxeval: existsSync(join(dataDir, 'cruxeval/cruxeval.jsonl')) ? dataDir : fixtures,
  reval: existsSync(join(dataDir, 'reval/DREval_data.jsonl')) ? dataDir : fixtures,
  livecodebench: existsSync(join(dataDir, 'livecodebench-execution/execution-v2.jsonl'))
    ? dataDir
    : fixtures,
};

const started = performance.now();
const sandbox = await Sandbox.create({ workers });
const info = await sandbox.info();
const root = await mkdtemp(join(tmpdir(), 'bench-oracle-'));
const result = {
  loadBefore: loadavg().map((v) => Number(v.toFixed(2))),
  cpus: cpus().length,
  node: process.version,
  sandbox: {
    engine: info.engine,
    python: info.pythonVersion,
    workers: info.workers,
    startupMs: info.startupMs.map((v) => Math.round(v)),
  },
  benchmarks: {},
};
try {
  for (const benchmark of ['cruxeval', 'livecodebench', 'reval']) {
    for (const which of withNull ? ['oracle', 'null'] : ['oracle']) {
      const t0 = performance.now();
      const summary = await runBenchmark({
        benchmark,
        dataPath: sources[benchmark],
        model: which === 'oracle' ? createOracleModel() : createNullModel(),
        sandbox,
        outDir: join(root, `${benchmark}-${which}`),
        batchSize: 256,
        // timed as before: the constant baselines would add ten scorings of every task
        baselineCandidates: 0,
      });
      result.benchmarks[`${benchmark}${which === 'null' ? ':null' : ''}`] = {
        data:
          sources[benchmark] === fixtures
            ? 'package fixture'
            : summary.dataFiles.map((f) => f.path),
        questions: summary.items.total,
        seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
        headline: summary.headline,
        tasks: Object.fromEntries(
          Object.values(summary.tasks).map((t) => [
            t.task,
            { items: t.items, score: t.score, unanswerable: t.unanswerable },
          ]),
        ),
        ...(summary.reval === undefined ? {} : { consistency: summary.reval.consistency }),
        excludedGroups: summary.excluded.length,
        excludedQuestions: summary.excluded.reduce((sum, e) => sum + e.questions, 0),
      };
    }
  }
} finally {
  await sandbox.close();
  await rm(root, { recursive: true, force: true });
}
result.totalSeconds = Number(((performance.now() - started) / 1000).toFixed(2));
result.loadAfter = loadavg().map((v) => Number(v.toFixed(2)));
console.log(JSON.stringify(result, null, 2));
