// Measures how REval's ground truth depends on the Python that traces it: the same harness
// (a port of REval's dynamics.py) run by the sandbox's Pyodide engine (CPython 3.14) and by its
// CPython engine (the python3 on PATH; REval's README names 3.8-3.11), probe point by probe
// point. Also cross-checks the harness against the sandbox's own tracer (Sandbox.trace) on the
// function problems. Usage: pnpm --filter @codereasoner/bench bench:reval-versions [-- --data <dir>]
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '@codereasoner/sandbox';
import { computeRevalTruth, loadReval } from '../dist/index.js';

const args = process.argv.slice(2);
const at = args.indexOf('--data');
const dataDir =
  at >= 0
    ? args[at + 1]
    : (process.env.CR_BENCHMARKS_DIR ??
      fileURLToPath(new URL('../../../../shared/benchmarks', import.meta.url)));
const problems = await loadReval(
  join(dataDir, 'reval/DREval_data.jsonl'),
  join(dataDir, 'reval/DREval_tasks.jsonl'),
);
const groups = problems.flatMap((problem) => problem.groups.map((group) => ({ problem, group })));

const runs = {};
for (const engine of ['pyodide', 'cpython']) {
  let sandbox;
  try {
    sandbox = await Sandbox.create({ engine, workers: 2 });
  } catch (error) {
    runs[engine] = { error: error.message };
    continue;
  }
  const t0 = performance.now();
  const truths = await computeRevalTruth(sandbox, groups);
  runs[engine] = {
    python: (await sandbox.info()).pythonVersion,
    seconds: (performance.now() - t0) / 1000,
    truths,
  };
  if (engine === 'pyodide') {
    // The sandbox's own tracer on the function problems: coverage, next lines, plain-name values.
    const fn = groups
      .map((g, i) => ({ ...g, i }))
      .filter(({ problem }) => problem.kind === 'function');
    const traces = await sandbox.traceBatch(
      fn.map(({ problem, group }) => ({
        code: problem.code,
        call: `${problem.entryPoint}${problem.inputs[group.inputIdx].slice(0, -2)})`,
        maxSteps: 1_000_000,
        timeoutMs: 60_000,
      })),
    );
    const cmp = { probes: 0, coverage: 0, next: 0, plainNameValues: 0, valueDiffs: 0 };
    fn.forEach(({ group, i }, k) => {
      const t = traces[k];
      const mine = truths[i];
      if (!mine.ok || t.status !== 'ok') return;
      group.probes.forEach((probe, j) => {
        cmp.probes += 1;
        const covered = t.coverage.includes(probe.line);
        const next = new Set();
        t.path.forEach(
          (line, x) => line === probe.line && next.add(x + 1 < t.path.length ? t.path[x + 1] : -1),
        );
        if (!covered) next.add(-1);
        if (covered !== mine.probes[j].covered) cmp.coverage += 1;
        if ([...next].sort((a, b) => a - b).join() !== mine.probes[j].next.join()) cmp.next += 1;
        if (/^[A-Za-z_]\w*$/.test(probe.variable)) {
          cmp.plainNameValues += 1;
          const values = t.states
            .filter((s) => s.line === probe.line)
            .map((s) => s.locals[probe.variable])
            .filter((v) => v !== undefined);
          if (JSON.stringify(values.slice(0, 20)) !== JSON.stringify(mine.probes[j].values))
            cmp.valueDiffs += 1;
        }
      });
    });
    runs.sandboxTracerVsHarness = cmp;
  }
  await sandbox.close();
}

const out = {
  groups: groups.length,
  probes: groups.reduce((s, g) => s + g.group.probes.length, 0),
};
for (const engine of ['pyodide', 'cpython']) {
  const r = runs[engine];
  out[engine] = r.error
    ? { error: r.error }
    : {
        python: r.python,
        seconds: Number(r.seconds.toFixed(2)),
        untraceableGroups: r.truths.filter((t) => !t.ok).length,
      };
}
if (runs.pyodide?.truths && runs.cpython?.truths) {
  const a = runs.cpython.truths;
  const b = runs.pyodide.truths;
  const diff = {
    groupsCompared: 0,
    probesCompared: 0,
    coverage: 0,
    next: 0,
    stateValues: 0,
    stateGold: 0,
    outputGold: 0,
    stepCounts: 0,
  };
  const stateProbes = [];
  a.forEach((x, g) => {
    const y = b[g];
    if (!x.ok || !y.ok) return;
    diff.groupsCompared += 1;
    if (x.steps !== y.steps) diff.stepCounts += 1;
    if (x.outputGold !== y.outputGold) diff.outputGold += 1;
    x.probes.forEach((p, k) => {
      const q = y.probes[k];
      diff.probesCompared += 1;
      if (p.covered !== q.covered) diff.coverage += 1;
      if (p.next.join() !== q.next.join()) diff.next += 1;
      if (p.nil !== q.nil || JSON.stringify(p.values) !== JSON.stringify(q.values)) {
        diff.stateValues += 1;
        const probe = groups[g].group.probes[k];
        stateProbes.push({
          group: groups[g].group.key,
          line: probe.line,
          variable: probe.variable,
          cpython: p.nil ? 'Nil' : p.values.slice(0, 3),
          pyodide: q.nil ? 'Nil' : q.values.slice(0, 3),
        });
      }
      if (p.gold !== q.gold) diff.stateGold += 1;
    });
  });
  out.differences = diff;
  out.stateDifferences = stateProbes;
  out.onlyUntraceableUnder = {
    pyodide: b.map((t, g) => (!t.ok && a[g].ok ? groups[g].group.key : undefined)).filter(Boolean),
    cpython: a.map((t, g) => (!t.ok && b[g].ok ? groups[g].group.key : undefined)).filter(Boolean),
  };
}
if (runs.sandboxTracerVsHarness) out.sandboxTracerVsHarness = runs.sandboxTracerVsHarness;
console.log(JSON.stringify(out, null, 2));
