/*
 * Entry of an ONNX training worker thread (started by `OnnxTrainPool`, never imported). It opens
 * one single-threaded `OnnxTrainStep` over the config's training graph and answers one batch at
 * a time: its loss and every weight's gradient, with the weights read from the shared buffer the
 * main thread fills before each step.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxTrainStep } from './onnx-trainer.js';
import type {
  OnnxTrainWorkerInit,
  OnnxTrainWorkerReply,
  OnnxTrainWorkerRequest,
} from './onnx-train-pool.js';
import { toRemoteError } from './worker-protocol.js';

const port = parentPort;
if (port === null)
  throw new Error('onnx-train-worker must run in a worker thread (use OnnxTrainPool)');
const init = workerData as OnnxTrainWorkerInit;
const shared = new Float32Array(init.weights);
// onnxruntime-node refuses tensors over a SharedArrayBuffer ("Invalid argument"): each request
// copies the step's weights into the thread's own arrays (a memcpy of the model, ~1 ms at 1 M).
const weights = new Map(init.layout.map((entry) => [entry.name, new Float32Array(entry.size)]));
function readWeights(): void {
  for (const entry of init.layout)
    weights.get(entry.name)!.set(shared.subarray(entry.offset, entry.offset + entry.size));
}

function reply(message: OnnxTrainWorkerReply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

// No top-level await (published code): requests wait on the opened session.
const opened = OnnxTrainStep.create(init.config, 1, init.graph).then(
  (step) => {
    reply({ type: 'ready' });
    return step;
  },
  (error: unknown) => {
    reply({ type: 'start-failed', error: toRemoteError(error) });
    return undefined;
  },
);

port.on('message', (request: OnnxTrainWorkerRequest) => {
  void opened.then(async (step) => {
    if (request.type === 'close') {
      await step?.release();
      port.close();
      return;
    }
    if (step === undefined) return;
    try {
      // the main thread wrote them before sending the step's batches and waits for every answer
      readWeights();
      const result = await step.run(weights, request.batch);
      // slice(): onnxruntime's output buffers are copied into transferable ones
      const values = init.layout.map((entry) => result.gradients.get(entry.name)!.slice());
      const rows = {
        ...(result.logProbs === undefined ? {} : { logProbs: result.logProbs.slice() }),
        ...(result.entropy === undefined ? {} : { entropy: result.entropy.slice() }),
      };
      reply({ type: 'result', id: request.id, loss: result.loss, gradients: values, ...rows }, [
        ...values.map((v) => v.buffer as ArrayBuffer),
        ...Object.values(rows).map((v) => v.buffer as ArrayBuffer),
      ]);
    } catch (error) {
      reply({ type: 'error', id: request.id, error: toRemoteError(error) });
    }
  });
});
