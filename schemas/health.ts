/** GET /health, /health/live and /health/ready. */
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
  ready: z.boolean().describe('What GET /health/ready says (false while starting, shutting down or near the memory budget).'),
  pool: z
    .object({
      workers: count.describe('Worker threads computing answers (WORKERS; 0 = the main thread).'),
      fastWorkers: count.describe('Worker threads of the cheap lane (FAST_WORKERS), which take only tasks estimated within CHEAP_TASK_MS.'),
      busyWorkers: count.describe('Workers (of both kinds) computing now.'),
      queued: count.describe('Requests waiting for a worker.'),
      queuedCheap: count.describe('Cheap requests among them.'),
      queuedSeconds: z.number().min(0).describe('The estimated seconds of computing the waiting requests need.'),
      runningSeconds: z.number().min(0).describe('The estimated seconds the running computations still need.'),
      queueLimit: count.describe('Most heavy requests that may wait (QUEUE_LIMIT); past it, 503 with Retry-After.'),
      cheapTaskMs: count.describe('Requests estimated at most this many ms are cheap (CHEAP_TASK_MS).'),
      blasThreads: count.describe('OpenBLAS threads per kernel call (process-wide): every core unless CURVATURE_BLAS_THREADS is set.'),
      completedTasks: count.describe('Computations answered.'),
      abortedTasks: count.describe('Computations aborted because the client disconnected.'),
      timedOutTasks: count.describe('Computations aborted after REQUEST_TIMEOUT_MS.'),
      rejectedTasks: count.describe('Requests refused with 503 for want of room: workers and queue, the estimated backlog, or the memory budget.'),
      failedWorkers: count.describe('Workers that failed: did not start (e.g. EMFILE while loading) or died while computing; each is logged, its request answered 503 WORKER_FAILED, and the worker replaced.'),
      terminatedWorkers: count.describe('Workers terminated and replaced because an aborted computation did not stop within the grace period (it stops at its next kernel call otherwise, and its worker stays).'),
      memory: z.object({
        budgetBytes: count.describe('The memory budget for everything in flight (MEMORY_BUDGET_BYTES; default 75 % of the container limit).'),
        usedBytes: count.describe('Bytes held now: bodies being read, computations queued and running, answers in transit.'),
        bodyBytes: count.describe('Request bodies being read.'),
        taskBytes: count.describe('Computations queued and running (their estimated footprints).'),
        answerBytes: count.describe('Answers computed and not yet sent to their last byte.'),
        answersInTransit: count.describe('Answers being sent now.'),
      }).describe('The memory budget and what is held against it.'),
    })
    .describe('The compute pool: its size, load and counters.'),
}).describe('The service is up: its version, linear-algebra backend and the load of its compute pool, and whether it is ready.'));

export const LivenessResponseSchema = answerComponent('Liveness', z.object({
  status: z.literal('ok').describe('The process answers: its event loop runs (computations are on worker threads).'),
}).describe('The process is alive.'));

export const READINESS_REASONS = ['starting', 'shuttingDown', 'memory'] as const;

export const ReadinessResponseSchema = answerComponent('Readiness', z.object({
  ready: z.boolean().describe('Whether the service takes work now.'),
  reasons: z.array(z.enum(READINESS_REASONS)).describe("Why not: 'starting' (workers still loading), 'shuttingDown' (SIGTERM received), 'memory' (at least 90 % of the memory budget held)."),
}).describe('Whether the service takes work: 200 when ready, 503 when not.'));

export const MetricsResponseSchema = z.string().describe('Prometheus text exposition format 0.0.4.');
