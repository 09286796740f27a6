/** GET /health. */
import { z } from 'zod';
import { answerComponent } from './components.ts';

/** A count (of workers, tasks, threads): a non-negative integer. */
const count = z.number().int().min(0);

export const HealthResponseSchema = answerComponent('Health', z.object({
  status: z.literal('ok').describe("Always 'ok': the service answers and can take work."),
  version: z.string().describe('The service version (package.json).'),
  linalg: z
    .object({
      backend: z.enum(['typescript', 'openblas']),
      threads: count.describe('Threads one kernel call may use.'),
      reason: z.string().describe('Why this backend (the CURVATURE_LINALG setting, or why OpenBLAS did not load).'),
      openblas: z.string().optional().describe("OpenBLAS's build and kernel set, when it is in use."),
    })
    .describe('The linear-algebra backend in use.'),
  uptimeSeconds: z.number().min(0).describe('Seconds since the service started.'),
  pool: z
    .object({
      workers: count.describe('Worker threads computing answers (WORKERS; 0 = the main thread).'),
      busyWorkers: count.describe('Workers computing now.'),
      queued: count.describe('Requests waiting for a worker.'),
      queueLimit: count.describe('Most requests that may wait (QUEUE_LIMIT); past it, 503 with Retry-After.'),
      blasThreads: count.describe('OpenBLAS threads per kernel call (process-wide): every core unless CURVATURE_BLAS_THREADS is set.'),
      completedTasks: count.describe('Computations answered.'),
      abortedTasks: count.describe('Computations aborted because the client disconnected.'),
      timedOutTasks: count.describe('Computations aborted after REQUEST_TIMEOUT_MS.'),
      rejectedTasks: count.describe('Requests refused with 503 because the queue was full.'),
      terminatedWorkers: count.describe('Workers terminated and replaced because an aborted computation did not stop within the grace period (it stops at its next kernel call otherwise, and its worker stays).'),
      failedWorkers: count.describe('Workers that failed: did not start (e.g. EMFILE while loading) or died while computing; each is logged, its request answered 503 WORKER_FAILED, and the worker replaced.'),
    })
    .describe('The compute pool: its size, load and counters.'),
}).describe('The service is up: its version, linear-algebra backend and the load of its compute pool.'));
