import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatCompletion, renderPrompt, type TaskRecord } from '@codereasoner/protocol';
import { Sandbox } from '@codereasoner/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerificationServer, type VerificationServer } from './server.js';

const fixture = (name: string): Record<string, unknown> =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`./__fixtures__/${name}`, import.meta.url)), 'utf8'),
  ) as Record<string, unknown>;

/** A fixture's `"<number>"` / `"<string>"` placeholders become type matchers. */
function shape(value: unknown): unknown {
  if (value === '<number>') return expect.any(Number);
  if (value === '<string>') return expect.any(String);
  if (Array.isArray(value)) return value.map(shape);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, shape(inner)]));
  }
  return value;
}

const code = 'def f(x):\n    y = x * 2\n    return y\n';
const base = { programId: 'p0', callId: 'c0', split: 'train', code, entryPoint: 'f' } as const;
const outputTask: TaskRecord = {
  ...base,
  id: 'p0-c0-output',
  type: 'output',
  input: '3',
  output: '6',
  answer: '6',
  meta: {},
};
const inputTask: TaskRecord = {
  ...base,
  id: 'p0-c0-input',
  type: 'input',
  input: '3',
  output: '6',
  answer: '3',
  meta: {},
};

let sandbox: Sandbox;
let server: VerificationServer;
let url: string;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: response.status, json, headers: response.headers };
}

async function runCode(codeText: string, extra: Record<string, unknown> = {}) {
  return post('/run_code', { code: codeText, language: 'python', ...extra });
}

beforeAll(async () => {
  sandbox = await Sandbox.create({ workers: 2, memoryLimitMb: 256 });
  server = createVerificationServer({
    sandbox,
    tasks: [outputTask, inputTask],
    options: { port: 0, verifyTimeoutMs: 2000 },
  });
  ({ url } = await server.listen());
}, 120_000);

afterAll(async () => {
  await server?.close();
  await sandbox?.close();
});

describe('GET /health and /metrics', () => {
  it('reports the sandbox and the loaded tasks', async () => {
    const response = await fetch(`${url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'ok',
      engine: 'pyodide',
      workers: 2,
      tasks: 2,
      in_flight: 0,
      queued: 0,
    });
  });

  it('binds 127.0.0.1 by default', () => {
    expect(server.options.host).toBe('127.0.0.1');
    expect(url.startsWith('http://127.0.0.1:')).toBe(true);
  });
});

describe('POST /run_code (SandboxFusion)', () => {
  it('answers the request verl sends with SandboxFusion’s response shape', async () => {
    const { status, json } = await post('/run_code', fixture('sandbox-fusion/verl-request.json'));
    expect(status).toBe(200);
    expect(json).toEqual(shape(fixture('sandbox-fusion/verl-response.json')));
    expect(Object.keys(json).sort()).toEqual(
      Object.keys(fixture('sandbox-fusion/verl-response.json')).sort(),
    );
  });

  it('reports exceptions, exit codes and syntax errors as a Python process would', async () => {
    const raised = await runCode('print("before")\n1 / 0');
    expect(raised.json).toMatchObject({
      status: 'Failed',
      run_result: { status: 'Finished', return_code: 1, stdout: 'before\n' },
    });
    expect((raised.json.run_result as { stderr: string }).stderr).toContain(
      'ZeroDivisionError: division by zero',
    );
    expect((await runCode('import sys\nsys.exit(3)')).json).toMatchObject({
      status: 'Failed',
      run_result: { status: 'Finished', return_code: 3 },
    });
    expect((await runCode('import sys\nprint(1)\nsys.exit(0)')).json).toMatchObject({
      status: 'Success',
      run_result: { return_code: 0, stdout: '1\n' },
    });
    const syntax = await runCode('def f(:\n    pass');
    expect(syntax.json).toMatchObject({ status: 'Failed', run_result: { return_code: 1 } });
    expect((syntax.json.run_result as { stderr: string }).stderr).toContain('SyntaxError');
  });

  it('stops a program at run_timeout: TimeLimitExceeded, status Failed', async () => {
    const { json } = await runCode('while True:\n    pass', { run_timeout: 0.5 });
    expect(json).toMatchObject({
      status: 'Failed',
      run_result: { status: 'TimeLimitExceeded', return_code: null },
    });
  });

  it('refuses other languages and files in SandboxFusion’s error shape', async () => {
    const cpp = await post('/run_code', { code: 'int main(){}', language: 'cpp' });
    expect(cpp.status).toBe(200);
    expect(cpp.json).toEqual(shape(fixture('sandbox-fusion/unsupported-language-response.json')));
    expect(cpp.json.message).toContain("language 'cpp' is not supported");
    const files = await runCode('print(1)', { files: { 'a.txt': 'aGk=' } });
    expect(files.json).toMatchObject({ status: 'SandboxError', run_result: null });
    expect(files.json.message).toContain('files are not supported');
  });

  it('answers schema violations with 422 and every issue, as FastAPI does', async () => {
    const missing = await post('/run_code', { language: 'python', run_timeout: 'x' });
    expect(missing.status).toBe(422);
    expect(missing.json.detail).toEqual(
      expect.arrayContaining([
        expect.stringContaining("must have required property 'code'"),
        expect.stringContaining('run_timeout: must be number'),
      ]),
    );
    const long = await runCode('print(1)', { run_timeout: 3600 });
    expect(long.status).toBe(422);
    expect(JSON.stringify(long.json.detail)).toContain('<= 30 seconds');
  });

  it('survives hostile programs and still answers correctly afterwards', async () => {
    const hostile = [
      'import os\nos.system("echo pwned > /tmp/cr-serve-pwned")',
      'print(open("/etc/passwd").read())',
      'import socket\nsocket.socket().connect(("127.0.0.1", 22))',
      'import subprocess\nsubprocess.run(["ls"])',
      'x = "a" * (2 ** 40)',
      'while True:\n    print("spam" * 1000)',
      'import js\nprint(js)',
      'import sys\nsys.setrecursionlimit(10**6)\ndef r(n):\n    return r(n + 1)\nr(0)',
    ];
    const results = await Promise.all(hostile.map((text) => runCode(text, { run_timeout: 2 })));
    for (const [index, result] of results.entries()) {
      expect(result.status, hostile[index]).toBe(200);
      expect(result.json.status, hostile[index]).not.toBe('Success');
    }
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect((await post('/run_code', fixture('sandbox-fusion/verl-request.json'))).json).toEqual(
      shape(fixture('sandbox-fusion/verl-response.json')),
    );
  });

  it('answers with an error when the worker running it is killed, and goes on', async () => {
    const before = sandbox.info().restarts;
    // A C-level loop ignores Python's interrupt: the sandbox terminates the worker mid-request.
    const killed = await runCode('print(sum(range(10**18)))', { run_timeout: 0.5 });
    expect(killed.status).toBe(200);
    expect(killed.json).toMatchObject({
      status: 'Failed',
      run_result: { status: 'TimeLimitExceeded' },
    });
    expect(sandbox.info().restarts).toBeGreaterThan(before);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^cr_sandbox_worker_restarts_total [1-9]/m);
    expect((await runCode('print(2 + 2)')).json).toMatchObject({
      status: 'Success',
      run_result: { stdout: '4\n' },
    });
  });
});

describe('POST /verify', () => {
  it('verifies by task id and by task record, with reasons', async () => {
    const { status, json } = await post('/verify', {
      items: [
        { task_id: 'p0-c0-output', completion: '<think>2*3</think><answer>6</answer>' },
        { task_id: 'p0-c0-output', completion: '<answer>7</answer>' },
        { task_id: 'p0-c0-output', completion: 'six' },
        { task_id: 'p0-c0-output', completion: "<answer>__import__('os').getcwd()</answer>" },
        { task: inputTask, completion: '<answer>3</answer>' },
        { task_id: 'p0-c0-input', completion: '<answer>1); import os; (2</answer>' },
      ],
    });
    expect(status).toBe(200);
    const results = json.results as {
      task_id: string;
      correct: boolean;
      reward: number;
      reason: string;
    }[];
    expect(results.map((result) => result.reward)).toEqual([1, 0, 0, 0, 1, 0]);
    expect(results[0]).toEqual({
      task_id: 'p0-c0-output',
      correct: true,
      reward: 1,
      reason: 'correct',
    });
    expect(results[1]!.reason).toMatch(/^wrong: /);
    expect(results[2]!.reason).toMatch(/^no_answer: /);
    expect(results[3]!.reason).toMatch(/^invalid: /);
    expect(results[5]!.reason).toMatch(/^(invalid|no_answer): /);
  });

  it('refuses unknown ids and malformed records with every issue listed', async () => {
    const { status, json } = await post('/verify', {
      items: [
        { task_id: 'nope', completion: '<answer>1</answer>' },
        { task: { id: 'x' }, completion: '<answer>1</answer>' },
        { completion: '<answer>1</answer>' },
      ],
    });
    expect(status).toBe(400);
    const issues = (json.error as { issues: string[] }).issues;
    expect(issues[0]).toContain("unknown task id 'nope'");
    expect(issues.some((issue) => issue.startsWith('items.1.task.'))).toBe(true);
    expect(issues).toContain('items.2: needs task_id or task');
  });
});

describe('POST /get_reward (OpenRLHF)', () => {
  const chatml = (task: TaskRecord): string =>
    renderPrompt(task)
      .map((message) => `<|im_start|>${message.role}\n${message.content}<|im_end|>\n`)
      .join('') + '<|im_start|>assistant\n';

  it('answers rewards, scores and extra_logs for query + prompts + labels', async () => {
    const prompt = chatml(outputTask);
    const responses = [formatCompletion('6', 'double 3'), formatCompletion('5'), 'I do not know'];
    const { status, json } = await post('/get_reward', {
      query: responses.map((response) => `${prompt}${response}<|im_end|><|endoftext|>`),
      prompts: responses.map(() => prompt),
      labels: responses.map(() => outputTask.id),
    });
    expect(status).toBe(200);
    expect(json).toEqual(fixture('openrlhf/get-reward-response.json'));
  });

  it('finds the response after the assistant turn when prompts are not sent', async () => {
    const { json } = await post('/get_reward', {
      query: [`${chatml(inputTask)}<answer>3</answer><|im_end|>`],
      labels: [inputTask.id],
    });
    expect(json.rewards).toEqual([1]);
  });

  it('refuses requests that do not identify the task or the response', async () => {
    const noLabels = await post('/get_reward', { query: ['x'] });
    expect(noLabels.status).toBe(400);
    expect(JSON.stringify(noLabels.json)).toContain('labels: required');
    const noResponse = await post('/get_reward', {
      query: ['<answer>6</answer>'],
      labels: [outputTask.id],
    });
    expect(noResponse.status).toBe(400);
    expect(JSON.stringify(noResponse.json)).toContain('cannot find the response');
  });
});

describe('limits', () => {
  it('answers 413 past the body limit and stays up', async () => {
    const small = createVerificationServer({ sandbox, options: { port: 0, bodyLimitBytes: 1024 } });
    const { url: smallUrl } = await small.listen();
    try {
      const response = await fetch(`${smallUrl}/run_code`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: `print(${'1'.repeat(2000)})`, language: 'python' }),
      });
      expect(response.status).toBe(413);
      expect((await fetch(`${smallUrl}/health`)).status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('answers 429 when the queue is full, 504 past the request limit, never drops', async () => {
    const tight = createVerificationServer({
      sandbox,
      options: { port: 0, maxConcurrent: 1, maxQueue: 1, requestTimeoutMs: 8000 },
    });
    const { url: tightUrl } = await tight.listen();
    const slow = (): Promise<number> =>
      fetch(`${tightUrl}/run_code`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          code: 'while True:\n    pass',
          language: 'python',
          run_timeout: 1.5,
        }),
      }).then((response) => response.status);
    try {
      const statuses = await Promise.all([slow(), slow(), slow()]);
      expect(statuses.sort()).toEqual([200, 200, 429]);
      expect(await (await fetch(`${tightUrl}/metrics`)).text()).toMatch(
        /^cr_rejected_total\{reason="queue_full"\} 1$/m,
      );
    } finally {
      await tight.close();
    }
    const short = createVerificationServer({
      sandbox,
      options: { port: 0, requestTimeoutMs: 300 },
    });
    const { url: shortUrl } = await short.listen();
    try {
      const response = await fetch(`${shortUrl}/run_code`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code: 'while True:\n    pass', language: 'python', run_timeout: 1 }),
      });
      expect(response.status).toBe(504);
      expect(await short.metrics.render()).toMatch(/^cr_timeouts_total\{kind="request"\} 1$/m);
    } finally {
      await short.close();
    }
  });

  it('needs the bearer token when one is set (except /health)', async () => {
    const token = 'a-long-enough-test-token';
    const guarded = createVerificationServer({ sandbox, options: { port: 0, token } });
    const { url: guardedUrl } = await guarded.listen();
    try {
      const request = (headers: Record<string, string>): Promise<Response> =>
        fetch(`${guardedUrl}/run_code`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ code: 'print(1)', language: 'python' }),
        });
      expect((await request({})).status).toBe(401);
      expect((await request({ authorization: 'Bearer wrong-token-of-some-length' })).status).toBe(
        401,
      );
      expect((await request({ authorization: `Bearer ${token}` })).status).toBe(200);
      expect((await fetch(`${guardedUrl}/health`)).status).toBe(200);
      expect((await fetch(`${guardedUrl}/metrics`)).status).toBe(401);
    } finally {
      await guarded.close();
    }
  });

  it('drains on close: the running request completes, then new connections are refused', async () => {
    const draining = createVerificationServer({ sandbox, options: { port: 0 } });
    const { url: drainUrl } = await draining.listen();
    const running = fetch(`${drainUrl}/run_code`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        // A busy wait: time.sleep is unavailable in the Pyodide sandbox.
        code: 'import time\nstart = time.time()\nwhile time.time() - start < 0.8:\n    pass\nprint("done")',
        language: 'python',
      }),
    });
    // Close once the request is inside the service.
    while (draining.metrics.render().match(/^cr_in_flight 1$/m) === null) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const closed = draining.close();
    expect(draining.metrics.render()).toMatch(/^cr_draining 1$/m);
    const response = await running;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'Success',
      run_result: { stdout: 'done\n' },
    });
    await closed;
    await expect(fetch(`${drainUrl}/health`)).rejects.toThrow();
  });
});

describe('metrics', () => {
  it('renders Prometheus text with requests, verifications, latency, queue and timeouts', async () => {
    const response = await fetch(`${url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain; version=0.0.4');
    const text = await response.text();
    for (const family of [
      'cr_http_requests_total',
      'cr_http_request_duration_seconds',
      'cr_verifications_total',
      'cr_verifications_per_second',
      'cr_queue_depth',
      'cr_sandbox_worker_restarts_total',
      'cr_timeouts_total',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toMatch(/^cr_http_requests_total\{route="\/verify",status="200"\} [1-9]/m);
    expect(text).toMatch(/^cr_verifications_total\{kind="verify",outcome="correct"\} [1-9]/m);
    expect(text).toMatch(
      /^cr_http_request_duration_seconds_bucket\{route="\/run_code",le="\+Inf"\} [1-9]/m,
    );
  });
});

const python = spawnSync('python3', ['--version']).status === 0;
const recipe = (path: string): string =>
  fileURLToPath(new URL(`../../../recipes/${path}`, import.meta.url));
const fixturePath = (name: string): string =>
  fileURLToPath(new URL(`./__fixtures__/${name}`, import.meta.url));

/** Runs a Python script without blocking the event loop the server answers on. */
async function runPython(
  args: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { spawn } = await import('node:child_process');
  // No __pycache__ beside the recipes: the modules are loaded from the source tree.
  const child = spawn('python3', args, {
    env: { ...process.env, CR_SERVE_URL: url, PYTHONDONTWRITEBYTECODE: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

describe.skipIf(!python)('the verl and TRL reward modules against a running cr serve', () => {
  it('verl: scores through /verify with both verl signatures', async () => {
    const cases = [
      { completion: '<answer>6</answer>', info: { index: 0, task_id: outputTask.id } },
      { completion: '<answer>12</answer>', info: { index: 1, task_id: outputTask.id } },
      { completion: '<answer>3</answer>', info: { index: 2, task_id: inputTask.id } },
    ].map((item) => ({
      data_source: 'codereasoner/output',
      completion: item.completion,
      ground_truth: '6',
      extra_info: item.info,
    }));
    const { code, stdout, stderr } = await runPython(
      [fixturePath('call-verl-reward.py'), recipe('verl/codereasoner_reward.py')],
      JSON.stringify(cases),
    );
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as {
      single: number[];
      batch: number[];
      missing_task_id: string;
    };
    expect(result.single).toEqual([1, 0, 1]);
    expect(result.batch).toEqual([1, 0, 1]);
    expect(result.missing_task_id).toContain('extra_info.task_id is missing');
  });

  it('TRL: execution_reward called with GRPOTrainer’s keyword arguments', async () => {
    const cases = [
      { id: outputTask.id, completion: '<think>3 * 2</think><answer>6</answer>' },
      { id: outputTask.id, completion: '<answer>3</answer>' },
      { id: inputTask.id, completion: '<answer>3</answer>' },
    ];
    const { code, stdout, stderr } = await runPython(
      [fixturePath('call-trl-reward.py'), recipe('trl/codereasoner_trl_reward.py')],
      JSON.stringify(cases),
    );
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toEqual([1, 0, 1]);
  });
});

if (!python) {
  describe('the verl and TRL reward modules against a running cr serve', () => {
    it.skip('skipped: python3 is not on PATH, so the Python reward modules cannot be run', () => {});
  });
}
