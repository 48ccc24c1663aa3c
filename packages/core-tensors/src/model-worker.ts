/*
 * Entry of a model worker thread (started by `createModelWorkerPool`, never imported). It
 * initialises the same backend as the main thread, builds a replica of the model from the shared
 * weight buffer, and answers one request at a time: the gradient of a loss on one shard, or one
 * batch of `generate`. Weights are re-read from the shared buffer whenever the request carries a
 * newer weight version than the replica holds.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend.js';
import { CausalLM } from './model.js';
import {
  loadLoss,
  shardGradient,
  toRemoteError,
  type WorkerInit,
  type WorkerLoss,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

const port = parentPort;
if (port === null)
  throw new Error('model-worker must run in a worker thread (use createModelWorkerPool)');
const init = workerData as WorkerInit;
const shared = new Float32Array(init.weights);

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function buildReplica(): CausalLM {
  const values = new Map<string, tf.Tensor>();
  try {
    // slice(): copies out of the shared buffer, which the main thread rewrites after each update.
    for (const entry of init.layout)
      values.set(
        entry.name,
        tf.tensor(shared.slice(entry.offset, entry.offset + entry.size), entry.shape, 'float32'),
      );
    const model = CausalLM.fromParameters(init.config, values, { trainable: true });
    model.attention = init.attention;
    return model;
  } finally {
    tf.dispose([...values.values()]);
  }
}

function reloadWeights(model: CausalLM): void {
  for (const entry of init.layout) {
    const variable = model.parameters.get(entry.name)!;
    tf.tidy(() =>
      variable.assign(
        tf.tensor(shared.slice(entry.offset, entry.offset + entry.size), entry.shape, 'float32'),
      ),
    );
  }
}

async function main(): Promise<void> {
  let model: CausalLM;
  try {
    const report = await initBackend({ backend: init.backend });
    if (report.active !== init.backend) {
      throw new Error(
        `backend '${init.backend}' did not start in the worker (${report.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')})`,
      );
    }
    model = buildReplica();
  } catch (error) {
    reply({ type: 'start-failed', error: toRemoteError(error) });
    return;
  }
  let version = 0;
  const losses = new Map<string, WorkerLoss<unknown>>();
  let chain: Promise<void> = Promise.resolve();
  const handle = async (request: WorkerRequest): Promise<void> => {
    try {
      if (request.version !== version) {
        reloadWeights(model);
        version = request.version;
      }
      if (request.kind === 'gradient') {
        const loss = await loadLoss(request.loss, losses, { allowTsx: true });
        const shard = shardGradient(
          model,
          init.layout,
          init.total,
          loss,
          request.data,
          request.options,
        );
        reply({ type: 'result', id: request.id, kind: 'gradient', shard }, [
          shard.grads.buffer as ArrayBuffer,
        ]);
      } else {
        const outputs = await model.generate(request.prompts, request.options);
        reply({
          type: 'result',
          id: request.id,
          kind: 'generate',
          outputs,
          engine: model.lastGenerationEngine,
        });
      }
    } catch (error) {
      reply({ type: 'error', id: request.id, error: toRemoteError(error) });
    }
  };
  port!.on('message', (request: WorkerRequest) => {
    chain = chain.then(() => handle(request));
  });
  reply({ type: 'ready', backend: init.backend });
}

void main();
