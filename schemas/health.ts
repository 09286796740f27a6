/** GET /health. */
import { z } from 'zod';

export const HealthResponseSchema = z.object({
  status: z.literal('ok'),
  version: z.string().describe('The service version (package.json).'),
  linalg: z
    .object({
      backend: z.enum(['typescript', 'openblas']),
      threads: z.number().int().describe('Threads one kernel call may use.'),
      reason: z.string().describe('Why this backend (the CURVATURE_LINALG setting, or why OpenBLAS did not load).'),
      openblas: z.string().optional().describe("OpenBLAS's build and kernel set, when it is in use."),
    })
    .describe('The linear-algebra backend in use.'),
  uptimeSeconds: z.number(),
  pool: z
    .object({
      workers: z.number().int().describe('Worker threads computing answers (WORKERS; 0 = the main thread).'),
      busyWorkers: z.number().int().describe('Workers computing now.'),
      queued: z.number().int().describe('Requests waiting for a worker.'),
      queueLimit: z.number().int().describe('Most requests that may wait (QUEUE_LIMIT); past it, 503 with Retry-After.'),
      blasThreads: z.number().int().describe('OpenBLAS threads per kernel call (process-wide): every core unless CURVATURE_BLAS_THREADS is set.'),
      completedTasks: z.number().int(),
      abortedTasks: z.number().int().describe('Computations aborted because the client disconnected.'),
      timedOutTasks: z.number().int().describe('Computations aborted after REQUEST_TIMEOUT_MS.'),
      rejectedTasks: z.number().int().describe('Requests refused with 503 because the queue was full.'),
      terminatedWorkers: z.number().int().describe('Workers terminated and replaced because an aborted computation did not stop within the grace period (it stops at its next kernel call otherwise, and its worker stays).'),
      failedWorkers: z.number().int().describe('Workers that failed: did not start (e.g. EMFILE while loading) or died while computing; each is logged, its request answered 503 WORKER_FAILED, and the worker replaced.'),
    })
    .describe('The compute pool: its size, load and counters.'),
});
