/** GET /health, /health/live and /health/ready. */
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
  ready: z.boolean().describe('What GET /health/ready says (false while starting, shutting down or near the memory budget).'),
  pool: z
    .object({
      workers: z.number().int().describe('Worker threads computing answers (WORKERS; 0 = the main thread).'),
      fastWorkers: z.number().int().describe('Worker threads of the cheap lane (FAST_WORKERS), which take only tasks estimated within CHEAP_TASK_MS.'),
      busyWorkers: z.number().int().describe('Workers (of both kinds) computing now.'),
      queued: z.number().int().describe('Requests waiting for a worker.'),
      queuedCheap: z.number().int().describe('Cheap requests among them.'),
      queuedSeconds: z.number().describe('The estimated seconds of computing the waiting requests need.'),
      runningSeconds: z.number().describe('The estimated seconds the running computations still need.'),
      queueLimit: z.number().int().describe('Most heavy requests that may wait (QUEUE_LIMIT); past it, 503 with Retry-After.'),
      cheapTaskMs: z.number().int().describe('Requests estimated at most this many ms are cheap (CHEAP_TASK_MS).'),
      blasThreads: z.number().int().describe('OpenBLAS threads per kernel call (process-wide): every core unless CURVATURE_BLAS_THREADS is set.'),
      completedTasks: z.number().int(),
      abortedTasks: z.number().int().describe('Computations aborted because the client disconnected.'),
      timedOutTasks: z.number().int().describe('Computations aborted after REQUEST_TIMEOUT_MS.'),
      rejectedTasks: z.number().int().describe('Requests refused with 503 for want of room: workers and queue, the estimated backlog, or the memory budget.'),
      terminatedWorkers: z.number().int().describe('Workers terminated and replaced because an aborted computation did not stop within the grace period (it stops at its next kernel call otherwise, and its worker stays).'),
      memory: z.object({
        budgetBytes: z.number().int().describe('The memory budget for everything in flight (MEMORY_BUDGET_BYTES; default 75 % of the container limit).'),
        usedBytes: z.number().int().describe('Bytes held now: bodies being read, computations queued and running, answers in transit.'),
        bodyBytes: z.number().int(),
        taskBytes: z.number().int(),
        answerBytes: z.number().int().describe('Answers computed and not yet sent to their last byte.'),
        answersInTransit: z.number().int(),
      }).describe('The memory budget and what is held against it.'),
    })
    .describe('The compute pool: its size, load and counters.'),
});

export const LivenessResponseSchema = z.object({
  status: z.literal('ok').describe('The process answers: its event loop runs (computations are on worker threads).'),
});

export const READINESS_REASONS = ['starting', 'shuttingDown', 'memory'] as const;

export const ReadinessResponseSchema = z.object({
  ready: z.boolean(),
  reasons: z.array(z.enum(READINESS_REASONS)).describe("Why not: 'starting' (workers still loading), 'shuttingDown' (SIGTERM received), 'memory' (at least 90 % of the memory budget held)."),
});

export const MetricsResponseSchema = z.string().describe('Prometheus text exposition format 0.0.4.');
