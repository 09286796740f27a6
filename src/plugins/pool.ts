/**
 * The compute pool (src/pool.ts) as a decoration of the app, closed with it: Fastify closes the
 * server first, then the pool waits for the tasks in flight before ending its workers.
 */
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { createPool, type ComputePool } from '../pool.ts';
import type { ComputeResult, CurvatureTask } from '../core/index.ts';
import type { Hold } from '../budget.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The compute pool the routes run on (the server stops its tasks when a shutdown's grace runs out). */
    computePool: ComputePool;
    /** How answers are watched while they stream (ANSWER_STALL_MS), and how many were cut off (for /metrics). */
    answers: { readonly stallMs: number; stalled: number };
  }
  interface FastifyRequest {
    /** The memory held for this request's body until its task is sized (src/plugins/admission.ts). */
    bodyHold?: Hold;
  }
}

export interface PoolPluginOptions {
  readonly config: Config;
  /** Runs tasks in this thread instead of on worker threads (sizing and admission still apply). */
  readonly runTask?: (task: CurvatureTask) => Promise<ComputeResult>;
  /** A pool made by the caller, who then closes it. */
  readonly pool?: ComputePool;
}

export const poolPlugin = fp<PoolPluginOptions>(async (app, opts) => {
  const pool = opts.pool ?? createPool(opts.config, opts.runTask, { log: app.log });
  app.decorate('computePool', pool);
  app.decorate('answers', { stallMs: opts.config.answerStallMs, stalled: 0 });
  // Shutdown begins: no new task, /health/ready says so, the tasks in flight finish (then onClose).
  app.addHook('preClose', async () => { pool.beginShutdown(); });
  if (!opts.pool) app.addHook('onClose', async () => pool.close());
  const { workers, fastWorkers, queueLimit, blasThreads, cheapTaskMs, memory } = pool.stats();
  app.log.info({
    workers, fastWorkers, blasThreads, queueLimit, cheapTaskMs, memoryBudgetBytes: memory.budgetBytes, answerStallMs: opts.config.answerStallMs,
    requestTimeoutMs: opts.config.requestTimeoutMs, apiKeys: opts.config.apiKeys.length,
  }, 'compute pool ready');
}, { name: 'pool' });
