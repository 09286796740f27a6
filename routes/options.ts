/** What the compute routes are given by the app: how to run a task, and the limits to run it under. */
import type { ComputeLimits, ComputeResult, ComputeTask } from '../src/compute.ts';

export interface ComputeRouteOptions {
  /** Runs a task on the worker pool; `signal` aborts it (the client disconnected). */
  readonly runTask: (task: ComputeTask, signal?: AbortSignal) => Promise<ComputeResult>;
  readonly limits: ComputeLimits;
}
