/**
 * Size before work: from a validated request alone (its array lengths, nothing allocated), what
 * the answer and the computation's working set will need, and a refusal (413) naming the sizes
 * and a cheaper alternative when that is over the configured limits. It runs in the main thread
 * before a task is queued, in microseconds, so a careless request never reaches a worker.
 */
import { ServiceError } from './errors.ts';
import type { ComputeTask } from './compute.ts';
import { countParameters, curvatureScratchBytes } from './core/index.ts';

/** The limits a task is sized against (a subset of Config, so a Config serves). */
export interface SizeLimits {
  readonly maxResultBytes: number;
  readonly maxTaskBytes?: number;
  readonly maxPoints?: number;
  readonly maxParameters?: number;
  readonly maxFiniteDifferenceCost?: number;
}

/** The sizes of a request, read from its arrays' lengths (shape errors are the core's to find). */
export interface RequestDims {
  /** Data points. */
  readonly n: number;
  /** Inputs per point (the first layer's in). */
  readonly d: number;
  /** Outputs per point (the last layer's out). */
  readonly k: number;
  /** Parameters. */
  readonly w: number;
  /** Units over all layers, Σ out_l. */
  readonly units: number;
}

/** What a task will hold, in bytes, and what it is called in a refusal. */
export interface TaskSize {
  readonly what: string;
  /** The answer: principal array plus outputs. */
  readonly answerBytes: number;
  /** The answer plus everything else alive at the peak of the computation. */
  readonly totalBytes: number;
  readonly dims: RequestDims;
}

const DOUBLE = 8;
/** Doubles of the core's per-chunk scratch (chunkSize's default budget, 1 << 23 doubles = 64 MiB). */
const CHUNK = (1 << 23) * DOUBLE;

export function requestDims(task: ComputeTask): RequestDims {
  const layers = task.request.network.layers;
  const inputs = task.request.inputs;
  const sizes = layerSizes(task);
  const w = countParameters(sizes);
  const units = sizes.reduce((s, l) => s + l.out, 0);
  return {
    // JSON rows, or a dense Matrix from a .npy part
    n: Array.isArray(inputs) ? inputs.length : (inputs as { rows: number }).rows,
    d: layers[0]?.weights[0]?.length ?? 0,
    k: layers[layers.length - 1]?.bias.length ?? 0,
    w,
    units,
  };
}

/**
 * The answer and peak memory of a task, by endpoint and method. The forward and backward passes
 * keep about five numbers per unit and data point (a, z, h′, h″, δ) plus inputs and targets.
 */
export function taskSize(task: ComputeTask): TaskSize {
  const dims = requestDims(task);
  const { n, d, k, w, units } = dims;
  const passes = DOUBLE * n * (d + 5 * units + 2 * k);
  const size = (what: string, answerDoubles: number, extraBytes: number): TaskSize => {
    const answerBytes = DOUBLE * answerDoubles;
    return { what, answerBytes, totalBytes: answerBytes + passes + extraBytes, dims };
  };
  switch (task.endpoint) {
    case 'jacobian':
      return task.request.wrt === 'parameters'
        ? size(`the Jacobian with respect to parameters, N × K × W = ${fmt(n)} × ${fmt(k)} × ${fmt(w)}`, n * k * w + n * k, 0)
        : size(`the Jacobian with respect to inputs, N × K × D = ${fmt(n)} × ${fmt(k)} × ${fmt(d)}`, n * k * d + n * k, DOUBLE * n * k * units);
    case 'hessian':
      switch (task.request.method) {
        case 'diagonal':
        case 'diagonal-approximation':
          return size(`the Hessian diagonal by method '${task.request.method}' for W = ${fmt(w)} parameters`, w, CHUNK);
        case 'finite-difference':
          // two gradients and a perturbed copy of the network per step
          return size(`the finite-difference Hessian for W = ${fmt(w)} parameters`, w * w, DOUBLE * 4 * w);
        default:
          return size(`the ${task.request.method === 'exact' ? 'exact' : 'outer-product'} Hessian for W = ${fmt(w)} parameters`, w * w, curvatureScratch(task, n));
      }
    case 'hessian-vector-product':
      // the R-forward and R-backward passes mirror the ordinary ones
      return size(`the Hessian-vector product for W = ${fmt(w)} parameters`, w, passes + DOUBLE * 2 * w);
    case 'hessian-inverse': {
      const r = task.request;
      const what = `the inverse by method '${r.method}' for W = ${fmt(w)} parameters`;
      // Woodbury: M (W²) and blocks of at most 128 Jacobian rows; Cholesky: H in place (W²), plus a
      // copy for the eigenvalue hint where W ≤ 800, plus the Hessian's own chunks.
      return r.method === 'woodbury'
        ? size(what, w * w, CHUNK / 2 + DOUBLE * 128 * (w + 128))
        : size(what, w * w, curvatureScratch(task, n) + (w <= 800 ? DOUBLE * w * w : 0));
    }
  }
}

/** Each layer's (out, in), read from its bias and first row of weights. */
function layerSizes(task: ComputeTask): { out: number; in: number }[] {
  return task.request.network.layers.map((l) => ({ out: l.bias.length, in: l.weights[0]?.length ?? 0 }));
}

/** The core's own account of the scratch memory of an exact or outer-product Hessian. */
function curvatureScratch(task: ComputeTask, n: number): number {
  return curvatureScratchBytes(layerSizes(task), n);
}

/** Refuses (413) a task whose size is over `limits`, naming the sizes, the limit's variable and an alternative. */
export function checkTaskSize(task: ComputeTask, limits: SizeLimits): TaskSize {
  const s = taskSize(task);
  const { n, w } = s.dims;
  if (limits.maxParameters !== undefined && w > limits.maxParameters) {
    throw new ServiceError('LIMIT_EXCEEDED', {
      detail: `the network has W = ${fmt(w)} parameters; this service allows at most ${fmt(limits.maxParameters)} (MAX_PARAMETERS)`,
    });
  }
  if (limits.maxPoints !== undefined && n > limits.maxPoints) {
    throw new ServiceError('LIMIT_EXCEEDED', {
      detail: `the request has N = ${fmt(n)} data points; this service allows at most ${fmt(limits.maxPoints)} (MAX_POINTS) per request; ` +
        'split the data into several requests and add the answers (every Hessian here is a sum over data points)',
    });
  }
  if (s.answerBytes > limits.maxResultBytes) {
    throw new ServiceError('RESULT_TOO_LARGE', {
      detail: `${s.what} needs ${bytes(s.answerBytes)}; this service allows ${bytes(limits.maxResultBytes)} per answer (MAX_RESULT_BYTES); ${alternative(task)}`,
    });
  }
  if (limits.maxTaskBytes !== undefined && s.totalBytes > limits.maxTaskBytes) {
    throw new ServiceError('RESULT_TOO_LARGE', {
      detail: `${s.what} with N = ${fmt(n)} data points needs ${bytes(s.totalBytes)} of memory while computing (answer ${bytes(s.answerBytes)}); ` +
        `this service allows ${bytes(limits.maxTaskBytes)} per computation (MAX_TASK_BYTES); ${alternative(task)}`,
    });
  }
  if (task.endpoint === 'hessian' && task.request.method === 'finite-difference' && limits.maxFiniteDifferenceCost !== undefined) {
    const cost = n * w * w;
    if (cost > limits.maxFiniteDifferenceCost) {
      throw new ServiceError('LIMIT_EXCEEDED', {
        detail: `the finite-difference Hessian costs 2W gradient passes over N points, N·W² = ${fmt(n)} × ${fmt(w)}² = ${cost.toExponential(2)}; ` +
          `this service allows ${limits.maxFiniteDifferenceCost.toExponential(2)} (MAX_FINITE_DIFFERENCE_COST); ` +
          "use method 'exact', which gives the same matrix without truncation error at a fraction of the cost",
      });
    }
  }
  return s;
}

function alternative(task: ComputeTask): string {
  switch (task.endpoint) {
    case 'jacobian':
      return 'send fewer data points per request';
    case 'hessian':
      return task.request.method === 'diagonal' || task.request.method === 'diagonal-approximation'
        ? 'send fewer data points per request'
        : "use method 'diagonal' or 'diagonal-approximation', or POST /hessian/vector-product, which need O(W) memory";
    case 'hessian-vector-product':
      return 'send fewer data points per request and add the products';
    case 'hessian-inverse':
      return 'use POST /hessian with method \'diagonal\' for a diagonal preconditioner, or POST /hessian/vector-product with an iterative solver (conjugate gradients), which need O(W) memory';
  }
}

const GB = 1e9;
const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** 333 GB (310 GiB); small sizes in MiB. */
export function bytes(b: number): string {
  if (b >= GIB) return `${b >= 100 * GB ? Math.round(b / GB) : (b / GB).toPrecision(3)} GB (${(b / GIB).toFixed(b >= 100 * GIB ? 0 : 2)} GiB)`;
  if (b >= MIB) return `${(b / MIB).toFixed(1)} MiB`;
  return `${b} bytes`;
}

function fmt(x: number): string {
  return x.toLocaleString('en-US');
}
