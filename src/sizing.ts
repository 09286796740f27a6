/**
 * Size before work: a task's footprint (the core's estimate, src/core/operations.ts) against the
 * configured limits, and a refusal (413) naming the sizes, the limit's variable and a cheaper
 * alternative when it is over them. The pool checks each task once, in the main thread, before it
 * is queued.
 */
import type { TaskFootprint } from './core/index.ts';
import { ServiceError } from './errors.ts';

/** The limits a task is sized against (a subset of Config, so a Config serves). */
export interface SizeLimits {
  readonly maxResultBytes: number;
  readonly maxTaskBytes: number;
  readonly maxPoints: number;
  readonly maxParameters: number;
  readonly maxFiniteDifferenceCost: number;
}

/** Refuses (413) a task whose footprint is over `limits`, naming the sizes, the limit's variable and an alternative. */
export function checkTaskSize(size: TaskFootprint, limits: SizeLimits): void {
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
