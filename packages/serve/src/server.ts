import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '@codereasoner/common';
import { verifyBatch, type TaskRecord } from '@codereasoner/protocol';
import type { Sandbox } from '@codereasoner/sandbox';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Admission } from './admission.js';
import { ServeError } from './errors.js';
import {
  getRewardRequestSchema,
  planGetReward,
  type GetRewardRequest,
  type GetRewardResponse,
} from './get-reward.js';
import { Metrics } from './metrics.js';
import { resolveServeOptions, type ResolvedServeOptions, type ServeOptions } from './options.js';
import {
  SANDBOX_FUSION_DEFAULT_TIMEOUT_SECONDS,
  runCodeRequestSchema,
  sandboxErrorResponse,
  toRunCodeResponse,
  unsupported,
  type RunCodeRequest,
} from './run-code.js';
import { TaskStore } from './task-store.js';
import {
  TaskResolutionError,
  resolveTasks,
  verifyRequestSchema,
  type VerifyRequest,
  type VerifyResponse,
} from './verify-endpoint.js';

/** What the service needs from a sandbox (a `Sandbox` fits). */
export type ServeSandbox = Pick<Sandbox, 'run' | 'checkBatch' | 'info'>;

export interface CreateServerParams {
  sandbox: ServeSandbox;
  /** Tasks that `/verify` (by id) and `/get_reward` (labels) can name. */
  tasks?: TaskStore | Iterable<TaskRecord>;
  options?: ServeOptions;
  logger?: Logger;
}

export interface VerificationServer {
  readonly options: ResolvedServeOptions;
  readonly metrics: Metrics;
  readonly tasks: TaskStore;
  /** The fastify instance (e.g. `app.inject(...)` in tests). */
  readonly app: FastifyInstance;
  /** Binds host:port; resolves with the URL the service answers on. */
  listen(): Promise<{ url: string; host: string; port: number }>;
  /**
   * Drains: new requests get 503 (and `/health` says draining, so a load balancer stops sending),
   * queued and running requests finish, then the socket closes. After `drainTimeoutMs` the
   * remaining connections are cut. Does not close the sandbox (the caller owns it).
   */
  close(): Promise<void>;
}

/** An answered error: `error` for our clients, `detail` as FastAPI (SandboxFusion, OpenRLHF's server) words it. */
function errorBody(code: string, message: string, issues?: string[]): Record<string, unknown> {
  return {
    error: { code, message, ...(issues ? { issues } : {}) },
    detail: issues && issues.length > 0 ? issues : message,
  };
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What the request timer resolves to. */
const EXPIRED: unique symbol = Symbol('expired');

/**
 * Creates the verification service over a sandbox pool and the task protocol: SandboxFusion's
 * `POST /run_code`, OpenRLHF's `POST /get_reward`, a batch `POST /verify`, `GET /health` and
 * `GET /metrics`. Stateless apart from counters: run N instances behind a load balancer.
 */
export function createVerificationServer(params: CreateServerParams): VerificationServer {
  const options = resolveServeOptions(params.options);
  const { sandbox, logger } = params;
  const tasks =
    params.tasks instanceof TaskStore ? params.tasks : TaskStore.from(params.tasks ?? []);
  const admission = new Admission(options.maxConcurrent, options.maxQueue);
  const metrics = new Metrics({
    queueDepth: () => admission.queued,
    inFlight: () => admission.inFlight,
    workerRestarts: () => sandbox.info().restarts,
    draining: () => admission.isDraining,
  });

  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    // Slow or stalled clients cannot hold a connection past the request limit (plus a margin).
    requestTimeout: options.requestTimeoutMs + 5000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });

  app.addHook('onRequest', async (request, reply) => {
    if (options.token === undefined || request.url === '/health') return;
    const header = request.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(header);
    if (!match || !sameToken(match[1]!, options.token)) {
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send(
          errorBody(
            'unauthorized',
            'missing or wrong bearer token: send Authorization: Bearer <the token cr serve was started with>',
          ),
        );
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const issues = error.validation.map((issue) => {
        const where =
          issue.instancePath === '' ? '(body)' : issue.instancePath.slice(1).replaceAll('/', '.');
        return `${where}: ${issue.message ?? 'is invalid'}`;
      });
      // FastAPI (SandboxFusion) answers schema violations with 422.
      const status = request.routeOptions.url === '/run_code' ? 422 : 400;
      return reply
        .code(status)
        .send(errorBody('invalid_request', 'the request body is invalid', issues));
    }
    const status =
      error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500;
    if (status >= 500) logger?.warn(`cr serve: ${request.method} ${request.url}: ${error.message}`);
    return reply
      .code(status)
      .send(
        errorBody(
          error.code ?? 'internal_error',
          status === 500 ? `internal error: ${error.message}` : error.message,
        ),
      );
  });

  /** Runs work under admission control and the request time limit; answers 429/503/504 itself. */
  async function guarded<T>(reply: FastifyReply, work: () => Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<typeof EXPIRED>((resolve) => {
      timer = setTimeout(() => resolve(EXPIRED), options.requestTimeoutMs);
    });
    try {
      const acquiring = admission.acquire();
      const admitted = await Promise.race([acquiring, expired]);
      if (admitted === EXPIRED) {
        // The slot, when it comes, goes straight back.
        void acquiring.then((late) => ('release' in late ? late.release() : undefined));
        metrics.observeTimeout('request');
        await reply
          .code(504)
          .send(errorBody('timeout', `waited ${options.requestTimeoutMs} ms for a free slot`));
        return undefined;
      }
      if ('refused' in admitted) {
        metrics.observeRefusal(admitted.refused);
        if (admitted.refused === 'queue_full') {
          await reply
            .code(429)
            .header('retry-after', '1')
            .send(
              errorBody(
                'queue_full',
                `the queue is full (${options.maxQueue} waiting, ${options.maxConcurrent} running): retry shortly or add instances`,
              ),
            );
        } else {
          await reply
            .code(503)
            .header('retry-after', '1')
            .send(errorBody('draining', 'the service is shutting down: retry on another instance'));
        }
        return undefined;
      }
      const running = work();
      // The slot is held until the sandbox work really ends, even when the client got its 504.
      void running.then(admitted.release, admitted.release);
      const outcome = await Promise.race([running, expired]);
      if (outcome === EXPIRED) {
        metrics.observeTimeout('request');
        await reply
          .code(504)
          .send(errorBody('timeout', `the request ran past ${options.requestTimeoutMs} ms`));
        return undefined;
      }
      return outcome as T;
    } finally {
      clearTimeout(timer);
    }
  }

  app.post<{ Body: RunCodeRequest }>(
    '/run_code',
    { schema: { body: runCodeRequestSchema } },
    async (request, reply) => {
      const body = request.body;
      const refusal = unsupported(body);
      if (refusal !== undefined) {
        metrics.observeVerifications('run_code', 'refused', 1);
        return sandboxErrorResponse(refusal);
      }
      const seconds = body.run_timeout ?? SANDBOX_FUSION_DEFAULT_TIMEOUT_SECONDS;
      if (!(seconds > 0) || seconds > options.maxRunTimeoutSeconds) {
        return reply
          .code(422)
          .send(
            errorBody('invalid_request', 'run_timeout out of range', [
              `run_timeout: must be > 0 and <= ${options.maxRunTimeoutSeconds} seconds (this server's limit), got ${seconds}`,
            ]),
          );
      }
      const result = await guarded(reply, () =>
        sandbox.run({
          code: body.code,
          call: 'None',
          stdin: body.stdin ?? '',
          timeoutMs: Math.max(1, Math.round(seconds * 1000)),
        }),
      );
      if (result === undefined) return reply;
      if (result.status === 'timeout') metrics.observeTimeout('sandbox');
      const response = toRunCodeResponse(result);
      metrics.observeVerifications(
        'run_code',
        response.status === 'Success'
          ? 'passed'
          : response.status === 'Failed'
            ? 'failed'
            : 'error',
        1,
      );
      return response;
    },
  );

  function checkBatchSize(reply: FastifyReply, size: number): boolean {
    if (size <= options.maxBatch) return true;
    void reply
      .code(413)
      .send(
        errorBody(
          'batch_too_large',
          `${size} items in one request; at most ${options.maxBatch} (split the batch or raise --max-batch)`,
        ),
      );
    return false;
  }

  async function verifyItems(
    reply: FastifyReply,
    items: { task: TaskRecord; completion: string }[],
  ): Promise<{ correct: boolean; reason: string }[] | undefined> {
    const results = await guarded(reply, () =>
      verifyBatch(sandbox, items, { timeoutMs: options.verifyTimeoutMs }),
    );
    if (results === undefined) return undefined;
    const timeouts = results.filter((result) => result.reason.startsWith('timeout')).length;
    for (let index = 0; index < timeouts; index += 1) metrics.observeTimeout('sandbox');
    return results;
  }

  app.post<{ Body: VerifyRequest }>(
    '/verify',
    { schema: { body: verifyRequestSchema } },
    async (request, reply): Promise<VerifyResponse | FastifyReply> => {
      const { items } = request.body;
      if (!checkBatchSize(reply, items.length)) return reply;
      let resolved: TaskRecord[];
      try {
        resolved = resolveTasks(items, tasks);
      } catch (error) {
        if (!(error instanceof TaskResolutionError)) throw error;
        return reply
          .code(400)
          .send(errorBody('unknown_task', 'some items name no task', error.issues));
      }
      const results = await verifyItems(
        reply,
        items.map((item, index) => ({ task: resolved[index]!, completion: item.completion })),
      );
      if (results === undefined) return reply;
      const correct = results.filter((result) => result.correct).length;
      metrics.observeVerifications('verify', 'correct', correct);
      metrics.observeVerifications('verify', 'incorrect', results.length - correct);
      return {
        results: results.map((result, index) => ({
          task_id: resolved[index]!.id,
          correct: result.correct,
          reward: result.correct ? 1 : 0,
          reason: result.reason,
        })),
      };
    },
  );

  app.post<{ Body: GetRewardRequest }>(
    '/get_reward',
    { schema: { body: getRewardRequestSchema } },
    async (request, reply): Promise<GetRewardResponse | FastifyReply> => {
      if (!checkBatchSize(reply, request.body.query.length)) return reply;
      let items: { task: TaskRecord; completion: string }[];
      try {
        items = planGetReward(request.body, tasks);
      } catch (error) {
        if (!(error instanceof TaskResolutionError)) throw error;
        return reply
          .code(400)
          .send(errorBody('unknown_task', 'the request does not identify its tasks', error.issues));
      }
      const results = await verifyItems(reply, items);
      if (results === undefined) return reply;
      const rewards = results.map((result) => (result.correct ? 1 : 0));
      const correct = rewards.filter((reward) => reward === 1).length;
      metrics.observeVerifications('get_reward', 'correct', correct);
      metrics.observeVerifications('get_reward', 'incorrect', results.length - correct);
      return {
        rewards,
        scores: rewards,
        extra_logs: {
          correct: rewards,
          answered: results.map((result) => (result.reason.startsWith('no_answer') ? 0 : 1)),
        },
      };
    },
  );

  app.get('/health', async (_request, reply) => {
    const info = sandbox.info();
    const body = {
      status: admission.isDraining ? 'draining' : 'ok',
      engine: info.engine,
      workers: info.workers,
      python_version: info.pythonVersion,
      worker_restarts: info.restarts,
      tasks: tasks.size,
      in_flight: admission.inFlight,
      queued: admission.queued,
    };
    return reply.code(admission.isDraining ? 503 : 200).send(body);
  });

  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(metrics.render()),
  );

  let closing: Promise<void> | undefined;

  return {
    options,
    metrics,
    tasks,
    app,
    async listen() {
      try {
        const address = await app.listen({ host: options.host, port: options.port });
        const bound = app.server.address();
        const port = typeof bound === 'object' && bound !== null ? bound.port : options.port;
        logger?.info(
          `cr serve: listening on ${address} (${sandbox.info().engine}, ${sandbox.info().workers} workers, ${tasks.size} tasks)`,
        );
        const host = options.host.includes(':') ? `[${options.host}]` : options.host;
        return { url: `http://${host}:${port}`, host: options.host, port };
      } catch (error) {
        throw new ServeError(
          'SERVE_LISTEN_FAILED',
          `Could not listen on ${options.host}:${options.port}: ${error instanceof Error ? error.message : String(error)}. Pick another --port or stop what holds this one.`,
          { cause: error },
        );
      }
    },
    close() {
      closing ??= (async () => {
        admission.drain();
        logger?.info(
          `cr serve: draining (${admission.inFlight} running, ${admission.queued} queued)`,
        );
        let timer: NodeJS.Timeout | undefined;
        const cut = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            logger?.warn(
              `cr serve: drain took longer than ${options.drainTimeoutMs} ms; closing the remaining connections`,
            );
            app.server.closeAllConnections();
            resolve();
          }, options.drainTimeoutMs);
        });
        await Promise.race([app.close(), cut]);
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}
