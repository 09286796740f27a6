/**
 * Size before work: from a task's array lengths alone (nothing allocated), the bytes of its answer
 * and of everything alive at the peak of its computation, as the sum of the estimates the core's
 * methods export beside their budgets; and a refusal (413) naming the sizes, the limit's variable
 * and a cheaper alternative when that is over the configured limits. The pool sizes each task once,
 * in the main thread, before it is queued; it takes microseconds.
 */
import {
  choleskyScratchBytes,
  countParameters,
  curvatureScratchBytes,
  diagonalApproximationScratchBytes,
  finiteDifferenceScratchBytes,
  hessianDiagonalScratchBytes,
  hessianVectorProductScratchBytes,
  jacobianScratchBytes,
  passesBytes,
  woodburyScratchBytes,
  type LayerSize,
} from './core/index.ts';
import { ServiceError } from './errors.ts';
import { taskInputs, taskNetwork, type CurvatureTask, type TaskSummary } from './task.ts';

/** The limits a task is sized against (a subset of Config, so a Config serves). */
export interface SizeLimits {
  readonly maxResultBytes: number;
  readonly maxTaskBytes: number;
  readonly maxPoints: number;
  readonly maxParameters: number;
  readonly maxFiniteDifferenceCost: number;
}

/** What a task will hold, in bytes, and what a refusal says of it. */
export interface TaskSize {
  readonly summary: TaskSummary;
  /** The answer: principal array plus outputs. */
  readonly answerBytes: number;
  /** The answer plus everything else alive at the peak of the computation. */
  readonly totalBytes: number;
}

const DOUBLE = 8;

/** The answer and peak memory of a task, by endpoint and method. */
export function sizeTask(task: CurvatureTask): TaskSize {
  const layers: LayerSize[] = taskNetwork(task).layers.map((l) => ({ out: l.weights.rows, in: l.weights.cols }));
  const n = taskInputs(task).rows;
  const d = layers[0]?.in ?? 0;
  const k = layers[layers.length - 1]?.out ?? 0;
  const w = countParameters(layers);
  const passes = passesBytes(layers, n);
  const method = task.endpoint === 'jacobian' ? task.wrt : task.endpoint === 'hessian-vector-product' ? undefined : task.method;
  const summary: TaskSummary = { endpoint: task.endpoint, method, n, d, k, w };
  const size = (answerDoubles: number, scratchBytes: number): TaskSize => {
    const answerBytes = DOUBLE * answerDoubles;
    return { summary, answerBytes, totalBytes: answerBytes + passes + scratchBytes };
  };
  switch (task.endpoint) {
    case 'jacobian':
      return size(n * k * (task.wrt === 'parameters' ? w : d) + n * k, jacobianScratchBytes(layers, n, task.wrt));
    case 'hessian':
      switch (task.method) {
        case 'diagonal':
          return size(w, hessianDiagonalScratchBytes(layers, n));
        case 'diagonal-approximation':
          return size(w, diagonalApproximationScratchBytes(layers, n));
        case 'finite-difference':
          return size(w * w, finiteDifferenceScratchBytes(layers, n, w));
        case 'exact':
        case 'outer-product':
          return size(w * w, curvatureScratchBytes(layers, n));
      }
      break;
    case 'hessian-vector-product':
      return size(w, hessianVectorProductScratchBytes(layers, n, w));
    case 'hessian-inverse':
      return task.method === 'woodbury'
        ? size(w * w, woodburyScratchBytes(w, k, n))
        : size(w * w, curvatureScratchBytes(layers, n) + choleskyScratchBytes(w));
  }
  throw new Error(`no size for ${JSON.stringify(summary)}`);
}

/** Refuses (413) a task whose size is over `limits`, naming the sizes, the limit's variable and an alternative. */
export function checkTaskSize(size: TaskSize, limits: SizeLimits): void {
  const task = size.summary;
  const { n, w } = task;
  if (w > limits.maxParameters) throw new ServiceError('LIMIT_EXCEEDED', { reason: 'parameters', w, limit: limits.maxParameters });
  if (n > limits.maxPoints) throw new ServiceError('LIMIT_EXCEEDED', { reason: 'points', n, limit: limits.maxPoints });
  if (size.answerBytes > limits.maxResultBytes) {
    throw new ServiceError('RESULT_TOO_LARGE', { task, bytes: size.answerBytes, limit: limits.maxResultBytes });
  }
  if (size.totalBytes > limits.maxTaskBytes) {
    throw new ServiceError('WORKING_SET_TOO_LARGE', { task, bytes: size.totalBytes, answerBytes: size.answerBytes, limit: limits.maxTaskBytes });
  }
  if (task.endpoint === 'hessian' && task.method === 'finite-difference' && n * w * w > limits.maxFiniteDifferenceCost) {
    throw new ServiceError('LIMIT_EXCEEDED', { reason: 'finiteDifference', n, w, limit: limits.maxFiniteDifferenceCost });
  }
}
