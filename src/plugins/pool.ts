/**
 * The compute pool (src/pool.ts) as a decoration of the app, closed with it: Fastify closes the
 * server first, then the pool waits for the tasks in flight before ending its workers.
 */
import fp from 'fastify-plugin';
import type { Config } from '../config.ts';
import { createPool, type ComputePool } from '../pool.ts';
import type { ComputeResult, CurvatureTask } from '../core/index.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The compute pool the routes run on (the server stops its tasks when a shutdown's grace runs out). */
    computePool: ComputePool;
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
  if (!opts.pool) app.addHook('onClose', async () => pool.close());
  const { workers, queueLimit, blasThreads } = pool.stats();
  app.log.info({ workers, blasThreads, queueLimit, requestTimeoutMs: opts.config.requestTimeoutMs, apiKeys: opts.config.apiKeys.length }, 'compute pool ready');
}, { name: 'pool' });
