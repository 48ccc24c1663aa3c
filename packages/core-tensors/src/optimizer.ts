import * as tf from '@tensorflow/tfjs';
import { CodeReasonerError } from './errors.js';
import { jsKernelsActive } from './kernels.js';
import { parameterNameOf, type CausalLM } from './model.js';

/** AdamW moments and step, keyed by stable parameter names (see `parameterNameOf`), so they load into any copy of the model. */
export interface OptimizerState {
  step: number;
  firstMoment: tf.NamedTensorMap;
  secondMoment: tf.NamedTensorMap;
}

export interface AdamWOptions {
  /** A constant, or a schedule of the 0-based update index (e.g. `warmupCosine`). */
  learningRate: number | ((step: number) => number);
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (Loshchilov & Hutter), applied as lr·wd·θ. Default 0.01. */
  weightDecay?: number;
  /** Which parameters decay; default: matrices (rank ≥ 2) yes, norms and biases (rank 1) no. */
  decay?: (parameterName: string, variable: tf.Variable) => boolean;
}

export class OptimizerError extends CodeReasonerError {
  constructor(message: string) {
    super('OPTIMIZER_INVALID', message);
    this.name = 'OptimizerError';
  }
}

function findVariable(name: string): tf.Variable {
  const variable = tf.engine().registeredVariables[name];
  if (variable === undefined)
    throw new OptimizerError(
      `gradient for unknown variable ${name}; key gradients by variable.name`,
    );
  return variable;
}

/** AdamW with decoupled weight decay; state keyed by stable parameter names. */
export class AdamW {
  private readonly schedule: (step: number) => number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;
  private readonly decay: (parameterName: string, variable: tf.Variable) => boolean;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private stepCount = 0;

  constructor(options: AdamWOptions) {
    const lr = options.learningRate;
    if (typeof lr === 'number' && !(lr >= 0))
      throw new OptimizerError(`learningRate must be >= 0, got ${lr}`);
    this.schedule = typeof lr === 'number' ? () => lr : lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    for (const [key, value] of [
      ['beta1', this.beta1],
      ['beta2', this.beta2],
    ] as const) {
      if (!(value >= 0 && value < 1))
        throw new OptimizerError(`${key} must be in [0, 1), got ${value}`);
    }
    if (!(this.epsilon > 0)) throw new OptimizerError(`epsilon must be > 0, got ${this.epsilon}`);
    if (!(this.weightDecay >= 0))
      throw new OptimizerError(`weightDecay must be >= 0, got ${this.weightDecay}`);
    this.decay = options.decay ?? ((_name, variable) => variable.rank >= 2);
  }

  /** Number of updates applied so far. */
  get step(): number {
    return this.stepCount;
  }

  /** The learning rate the next update will use. */
  get learningRate(): number {
    return this.schedule(this.stepCount);
  }

  /** One update from gradients keyed by variable name (as `computeGradients` returns them). Does not dispose `grads`. */
  applyGradients(grads: tf.NamedTensorMap): void {
    const lr = this.schedule(this.stepCount);
    if (!Number.isFinite(lr))
      throw new OptimizerError(`learning rate schedule returned ${lr} at step ${this.stepCount}`);
    this.stepCount += 1;
    const t = this.stepCount;
    const correction1 = 1 - Math.pow(this.beta1, t);
    const correction2 = 1 - Math.pow(this.beta2, t);
    for (const [name, grad] of Object.entries(grads)) {
      const variable = findVariable(name);
      const key = parameterNameOf(name);
      if (grad.shape.join(',') !== variable.shape.join(',')) {
        throw new OptimizerError(
          `gradient for ${name} has shape [${grad.shape.join(', ')}], the variable [${variable.shape.join(', ')}]`,
        );
      }
      let m = this.m.get(key);
      let v = this.v.get(key);
      if (m === undefined || v === undefined) {
        m = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
        v = tf.tidy(() => tf.variable(tf.zerosLike(variable), false));
        this.m.set(key, m);
        this.v.set(key, v);
      }
      const decay = this.weightDecay > 0 && this.decay(key, variable) ? this.weightDecay : 0;
      if (jsKernelsActive() && variable.dtype === 'float32') {
        const [p1, m1, v1] = tf.engine().runKernel(
          'CrAdamW',
          { param: variable, grad, m, v },
          {
            lr,
            beta1: this.beta1,
            beta2: this.beta2,
            epsilon: this.epsilon,
            decay,
            correction1,
            correction2,
          },
        ) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
        variable.assign(p1);
        m.assign(m1);
        v.assign(v1);
        tf.dispose([p1, m1, v1]);
        continue;
      }
      tf.tidy(() => {
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(grad, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(grad), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        const update = tf.div(
          tf.div(m1, correction1),
          tf.add(tf.sqrt(tf.div(v1, correction2)), this.epsilon),
        );
        const withDecay = decay > 0 ? tf.add(update, tf.mul(variable, decay)) : update;
        variable.assign(tf.sub(variable, tf.mul(withDecay, lr)));
      });
    }
  }

  /** Copies of the moments (the caller owns and disposes them) and the step. */
  getState(): OptimizerState {
    const firstMoment: tf.NamedTensorMap = {};
    const secondMoment: tf.NamedTensorMap = {};
    for (const [key, m] of this.m) firstMoment[key] = tf.clone(m);
    for (const [key, v] of this.v) secondMoment[key] = tf.clone(v);
    return { step: this.stepCount, firstMoment, secondMoment };
  }

  /** Replaces the state (values are copied; `state` stays owned by the caller). */
  setState(state: OptimizerState): void {
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new OptimizerError(`state.step must be a non-negative integer, got ${state.step}`);
    const keys = Object.keys(state.firstMoment);
    const second = Object.keys(state.secondMoment);
    if (keys.length !== second.length || keys.some((k) => state.secondMoment[k] === undefined)) {
      throw new OptimizerError(
        'state.firstMoment and state.secondMoment must hold the same parameters',
      );
    }
    this.disposeMoments();
    for (const key of keys) {
      this.m.set(key, tf.variable(state.firstMoment[key]!, false));
      this.v.set(key, tf.variable(state.secondMoment[key]!, false));
    }
    this.stepCount = state.step;
  }

  private disposeMoments(): void {
    for (const t of this.m.values()) t.dispose();
    for (const t of this.v.values()) t.dispose();
    this.m.clear();
    this.v.clear();
  }

  dispose(): void {
    this.disposeMoments();
  }
}

/** Linear warmup to `peak` over `warmupSteps`, then cosine decay to `peak·minRatio` at `totalSteps` (held after). */
export function warmupCosine(options: {
  peak: number;
  warmupSteps: number;
  totalSteps: number;
  minRatio?: number;
}): (step: number) => number {
  const { peak, warmupSteps, totalSteps } = options;
  const minRatio = options.minRatio ?? 0.1;
  if (
    !(peak >= 0) ||
    !(warmupSteps >= 0) ||
    !(totalSteps >= 1) ||
    !(minRatio >= 0 && minRatio <= 1)
  ) {
    throw new OptimizerError(
      `warmupCosine needs peak >= 0, warmupSteps >= 0, totalSteps >= 1, 0 <= minRatio <= 1; got ${JSON.stringify(options)}`,
    );
  }
  return (step: number): number => {
    if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const span = Math.max(1, totalSteps - warmupSteps);
    const progress = Math.min(1, (step - warmupSteps) / span);
    return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}

/** Global L2 norm of all gradients and copies scaled so that norm ≤ maxNorm. The inputs are not disposed. */
export function clipByGlobalNorm(
  grads: tf.NamedTensorMap,
  maxNorm: number,
): { grads: tf.NamedTensorMap; norm: number } {
  if (!(maxNorm > 0)) throw new OptimizerError(`maxNorm must be > 0, got ${maxNorm}`);
  const entries = Object.entries(grads);
  const norm =
    entries.length === 0
      ? 0
      : tf.tidy(() =>
          Math.sqrt(tf.addN(entries.map(([, g]) => tf.sum(tf.square(g)))).dataSync()[0]!),
        );
  const scale = Number.isFinite(norm) && norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  const out: tf.NamedTensorMap = {};
  for (const [name, g] of entries)
    out[name] = scale === 1 ? tf.clone(g) : tf.tidy(() => tf.mul(g, scale));
  return { grads: out, norm };
}

/** Weighted running sum of gradients (e.g. over micro-batches); `mean` divides by the summed weights. */
export class GradientAccumulator {
  private sums: tf.NamedTensorMap = {};
  private totalWeight = 0;

  add(grads: tf.NamedTensorMap, weight = 1): void {
    if (!(weight >= 0)) throw new OptimizerError(`weight must be >= 0, got ${weight}`);
    for (const [name, g] of Object.entries(grads)) {
      const previous = this.sums[name];
      this.sums[name] = tf.tidy(() =>
        previous === undefined ? tf.mul(g, weight) : tf.add(previous, tf.mul(g, weight)),
      );
      previous?.dispose();
    }
    this.totalWeight += weight;
  }

  get weight(): number {
    return this.totalWeight;
  }

  /** New tensors (owned by the caller): the weighted mean of everything added since the last reset. */
  mean(): tf.NamedTensorMap {
    if (this.totalWeight <= 0)
      throw new OptimizerError('GradientAccumulator.mean() called with nothing added');
    const out: tf.NamedTensorMap = {};
    for (const [name, sum] of Object.entries(this.sums))
      out[name] = tf.tidy(() => tf.div(sum, this.totalWeight));
    return out;
  }

  reset(): void {
    for (const t of Object.values(this.sums)) t.dispose();
    this.sums = {};
    this.totalWeight = 0;
  }
}

/** Loss value and gradients of `loss` w.r.t. the model's trainable variables (keyed by variable name; the caller disposes them). */
export function computeGradients(
  model: CausalLM,
  loss: () => tf.Scalar,
): { loss: number; grads: tf.NamedTensorMap } {
  const variables = model.trainableVariables;
  if (variables.length === 0)
    throw new OptimizerError('the model has no trainable variables (a frozen clone?)');
  // LoRA dropout is a training-time regulariser: on while gradients are taken, off elsewhere.
  const dropoutBefore = model.adapterDropout;
  model.adapterDropout = true;
  let result;
  try {
    result = tf.variableGrads(loss, variables);
  } finally {
    model.adapterDropout = dropoutBefore;
  }
  const { value, grads } = result;
  const lossValue = value.dataSync()[0]!;
  value.dispose();
  return { loss: lossValue, grads };
}
