/* global Buffer, performance, process, setTimeout */
// Load test of the verification service: 64 concurrent clients for 60 s on POST /verify, then on
// POST /run_code, against a service started here on 127.0.0.1, plus the same verification work
// in-process for comparison. Prints one JSON document.
//
//   node bench/load-test.mjs                 # full run: 64 clients, 60 s per endpoint
//   node bench/load-test.mjs --seconds 10    # short run
//   options: --clients N (<= 256) --seconds S (<= 300) --batch N (items per /verify request)
//            --workers N (sandbox workers, default: cores) --max-requests N (per round, <= 1e6)
//            --rounds N (in-process and HTTP verification alternate in N slices, default 6)
//
// Loopback only and bounded in time and count: nothing leaves the machine, every phase stops at
// --seconds or --max-requests, and requests still unanswered 60 s after a phase ends count as lost.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyBatch } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';

const here = dirname(fileURLToPath(import.meta.url));
const CRUXEVAL = resolve(here, '../../../../shared/benchmarks/cruxeval/cruxeval.jsonl');

function parseArgs(argv) {
  const options = {
    clients: 64,
    seconds: 60,
    batch: 16,
    workers: availableParallelism(),
    maxRequests: 1_000_000,
    rounds: 6,
  };
  const limits = {
    clients: 256,
    seconds: 300,
    batch: 4096,
    workers: 64,
    maxRequests: 1_000_000,
    rounds: 60,
  };
  for (let index = 0; index < argv.length; index += 2) {
    const key = argv[index]?.replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = Number(argv[index + 1]);
    if (!(key in options) || !Number.isFinite(value) || value <= 0) {
      throw new Error(
        `bad option ${argv[index]} ${argv[index + 1] ?? ''}: use --clients --seconds --batch --workers --max-requests --rounds with positive numbers`,
      );
    }
    if (value > limits[key])
      throw new Error(`--${argv[index].slice(2)} is bounded at ${limits[key]}`);
    options[key] = value;
  }
  return options;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const round = (value, digits = 1) => (value === null ? null : Number(value.toFixed(digits)));

async function loadTasks() {
  const lines = (await readFile(CRUXEVAL, 'utf8')).trim().split('\n');
  return lines.map((line) => {
    const sample = JSON.parse(line);
    return {
      id: `cruxeval-${sample.id}`,
      programId: sample.id,
      callId: sample.id,
      type: 'output',
      split: 'eval',
      code: sample.code,
      entryPoint: 'f',
      input: sample.input,
      output: sample.output,
      answer: sample.output,
      meta: {},
    };
  });
}

/** Three completions per task: the gold answer (must verify), a wrong one, and no answer at all. */
function completionsFor(task) {
  return [
    { completion: `<think>trace the loop</think><answer>${task.output}</answer>`, expect: true },
    { completion: `<answer>${task.output} + [0]</answer>`, expect: false },
    { completion: 'I am not sure.', expect: false },
  ];
}

function makeItems(tasks) {
  const items = [];
  for (const task of tasks)
    for (const entry of completionsFor(task)) items.push({ task, ...entry });
  return items;
}

/** The same verification work without HTTP: `clients` concurrent verifyBatch calls of `batch` items. */
async function inProcessRound(sandbox, items, options, seconds, cursor) {
  let verified = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: options.clients }, async () => {
      while (performance.now() < deadline) {
        const batch = [];
        for (let k = 0; k < options.batch; k += 1) batch.push(items[cursor.next++ % items.length]);
        await verifyBatch(
          sandbox,
          batch.map(({ task, completion }) => ({ task, completion })),
        );
        verified += batch.length;
      }
    }),
  );
  return { verifications: verified, seconds: (performance.now() - started) / 1000 };
}

function post(agent, url, path, body) {
  return new Promise((resolvePromise) => {
    const payload = Buffer.from(JSON.stringify(body));
    const started = performance.now();
    const req = request(
      `${url}${path}`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode,
            body: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
        res.on('error', (error) =>
          resolvePromise({ status: 0, error: String(error), ms: performance.now() - started }),
        );
      },
    );
    req.on('error', (error) =>
      resolvePromise({ status: 0, error: String(error), ms: performance.now() - started }),
    );
    req.end(payload);
  });
}

async function metric(url, name) {
  const agent = new Agent();
  const text = await new Promise((resolvePromise, reject) => {
    request(`${url}/metrics`, { agent }, (res) => {
      let data = '';
      res.on('data', (chunk) => (data += chunk));
      res.on('end', () => resolvePromise(data));
    })
      .on('error', reject)
      .end();
  });
  agent.destroy();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

async function phase(url, options, kind, items, seconds, cursor) {
  const agent = new Agent({ keepAlive: true, maxSockets: options.clients });
  const latencies = [];
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let refused = 0;
  let wrongVerdicts = 0;
  let verifications = 0;
  const errorSamples = [];
  const outstanding = new Set();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const clients = Array.from({ length: options.clients }, async () => {
    while (performance.now() < deadline && sent < options.maxRequests) {
      sent += 1;
      let body;
      let expected;
      if (kind === 'verify') {
        const batch = [];
        for (let k = 0; k < options.batch; k += 1) batch.push(items[cursor.next++ % items.length]);
        body = { items: batch.map(({ task, completion }) => ({ task_id: task.id, completion })) };
        expected = batch.map((item) => item.expect);
      } else {
        const task = items[cursor.next++ % items.length];
        body = {
          code: `${task.code}\nprint(repr(f(${task.input})))\n`,
          language: 'python',
          run_timeout: 5,
        };
        expected = `${task.output}\n`;
      }
      const pending = post(agent, url, kind === 'verify' ? '/verify' : '/run_code', body);
      outstanding.add(pending);
      const result = await pending;
      outstanding.delete(pending);
      answered += 1;
      latencies.push(result.ms);
      if (result.status === 429 || result.status === 503) {
        refused += 1;
        continue;
      }
      if (result.status !== 200) {
        errors += 1;
        if (errorSamples.length < 5)
          errorSamples.push(`${result.status} ${(result.error ?? result.body).slice(0, 200)}`);
        continue;
      }
      const json = JSON.parse(result.body);
      if (kind === 'verify') {
        verifications += json.results.length;
        json.results.forEach((verdict, index) => {
          if (verdict.correct !== expected[index]) wrongVerdicts += 1;
        });
      } else {
        verifications += 1;
        if (json.status !== 'Success' || json.run_result.stdout !== expected) wrongVerdicts += 1;
      }
    }
  });
  // Clients stop issuing at the deadline; whatever is unanswered 60 s later is lost.
  const grace = new Promise((resolvePromise) =>
    setTimeout(resolvePromise, seconds * 1000 + 60_000).unref(),
  );
  await Promise.race([Promise.all(clients), grace]);
  agent.destroy();
  return {
    seconds: (performance.now() - started) / 1000,
    latencies,
    requests: answered,
    verifications,
    errors,
    refused,
    lost: sent - answered,
    wrongVerdicts,
    errorSamples,
  };
}

/** Sums the rounds of one endpoint into the reported figures. */
function summarize(endpoint, clients, rounds) {
  const total = (key) => rounds.reduce((sum, round) => sum + round[key], 0);
  const seconds = total('seconds');
  const latencies = rounds.flatMap((round) => round.latencies).sort((a, b) => a - b);
  return {
    endpoint,
    clients,
    seconds: round(seconds, 2),
    requests: total('requests'),
    requestsPerSecond: round(total('requests') / seconds),
    verifications: total('verifications'),
    verificationsPerSecond: round(total('verifications') / seconds),
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies.at(-1) ?? null),
    },
    errors: total('errors'),
    refused: total('refused'),
    lost: total('lost'),
    wrongVerdicts: total('wrongVerdicts'),
    errorSamples: rounds.flatMap((round) => round.errorSamples).slice(0, 5),
  };
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const tasks = await loadTasks();
  const load = { start: loadavg().map((value) => round(value, 2)) };
  const items = makeItems(tasks);
  const sandbox = await Sandbox.create({ workers: options.workers });
  // Warm-up pass: every program compiled once, as the service's warm-up below does.
  await verifyBatch(
    sandbox,
    items.map(({ task, completion }) => ({ task, completion })),
  );

  const dir = await mkdtemp(join(tmpdir(), 'cr-load-'));
  const tasksPath = join(dir, 'tasks.jsonl');
  await writeFile(tasksPath, `${tasks.map((task) => JSON.stringify(task)).join('\n')}\n`);
  const child = spawn(
    process.execPath,
    [join(here, 'serve-child.mjs'), tasksPath, String(options.workers), '32'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const url = await new Promise((resolvePromise, reject) => {
      let text = '';
      child.stdout.on('data', (chunk) => {
        text += chunk;
        const match = /^(http:\/\/127\.0\.0\.1:\d+)\n/m.exec(text);
        if (match) resolvePromise(match[1]);
      });
      child.on('exit', (code) =>
        reject(new Error(`the service exited (${code}) before listening`)),
      );
    });
    if (!/^http:\/\/127\.0\.0\.1:/.test(url))
      throw new Error(`refusing to load a non-loopback address: ${url}`);
    // Warm the service's workers the way the in-process baseline was warmed.
    const warm = new Agent({ keepAlive: true });
    for (let index = 0; index < items.length; index += 256) {
      await post(warm, url, '/verify', {
        items: items
          .slice(index, index + 256)
          .map(({ task, completion }) => ({ task_id: task.id, completion })),
      });
    }
    warm.destroy();
    const rssStart = await metric(url, 'process_resident_memory_bytes');
    // In-process and HTTP verification alternate in rounds, so that both see the same share of
    // a machine whose load changes from minute to minute; /run_code follows.
    const slice = options.seconds / options.rounds;
    const inProcessRounds = [];
    const verifyRounds = [];
    const cursors = { inProcess: { next: 0 }, verify: { next: 0 }, runCode: { next: 0 } };
    for (let index = 0; index < options.rounds; index += 1) {
      inProcessRounds.push(await inProcessRound(sandbox, items, options, slice, cursors.inProcess));
      verifyRounds.push(await phase(url, options, 'verify', items, slice, cursors.verify));
    }
    const rssAfterVerify = await metric(url, 'process_resident_memory_bytes');
    const runCodeRounds = [];
    for (let index = 0; index < options.rounds; index += 1) {
      runCodeRounds.push(await phase(url, options, 'run_code', tasks, slice, cursors.runCode));
    }
    const rssEnd = await metric(url, 'process_resident_memory_bytes');
    const inProcessSeconds = inProcessRounds.reduce((sum, r) => sum + r.seconds, 0);
    const inProcessVerifications = inProcessRounds.reduce((sum, r) => sum + r.verifications, 0);
    const baseline = {
      verifications: inProcessVerifications,
      seconds: round(inProcessSeconds, 2),
      verificationsPerSecond: round(inProcessVerifications / inProcessSeconds),
    };
    const verify = summarize('/verify', options.clients, verifyRounds);
    const runCode = summarize('/run_code', options.clients, runCodeRounds);
    const restarts = await metric(url, 'cr_sandbox_worker_restarts_total');
    load.end = loadavg().map((value) => round(value, 2));
    process.stdout.write(
      `${JSON.stringify(
        {
          machine: { cpus: availableParallelism(), node: process.version, loadAverage: load },
          options,
          tasks: {
            source: 'CRUXEval (800 programs), 3 completions each: gold, wrong, none',
            count: tasks.length,
          },
          inProcess: baseline,
          verify,
          runCode,
          server: {
            rssStartMb: round(rssStart / 2 ** 20),
            rssAfterVerifyMb: round(rssAfterVerify / 2 ** 20),
            rssEndMb: round(rssEnd / 2 ** 20),
            workerRestarts: restarts,
          },
          httpVerifyFractionOfInProcess: round(
            verify.verificationsPerSecond / baseline.verificationsPerSecond,
            3,
          ),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await sandbox.close();
    child.kill('SIGTERM');
    await new Promise((resolvePromise) => child.on('exit', resolvePromise));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
