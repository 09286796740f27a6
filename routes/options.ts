/** What the compute routes are given by the app: how to run a task, and the limits to run it under. */
import type { ComputeLimits, ComputeResult, ComputeTask } from '../src/compute.ts';

export interface ComputeRouteOptions {
  /** Runs a task: in this thread, or on a worker pool. */
  readonly runTask: (task: ComputeTask) => Promise<ComputeResult>;
  readonly limits: ComputeLimits;
}
