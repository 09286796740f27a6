/**
 * GET /health (the pool's state), GET /health/live (the process answers) and GET /health/ready
 * (it should be sent requests: not while its workers are still loading, while it shuts down or
 * while at least READY_MEMORY_FRACTION of its memory budget is held). All open, with or without
 * API_KEYS, and answered by the main thread while every worker is busy.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HealthResponseSchema, LivenessResponseSchema, ReadinessResponseSchema, type READINESS_REASONS } from '../schemas/health.ts';
import { linalgInfo } from '../src/core/linalg/index.ts';
import type { ComputePool } from '../src/pool.ts';

/** Not ready while at least this share of the memory budget is held: a new request would likely be refused. */
export const READY_MEMORY_FRACTION = 0.9;

/** Why the service should not be sent requests now (empty: ready). */
export function notReadyReasons(pool: ComputePool): (typeof READINESS_REASONS)[number][] {
  const reasons: (typeof READINESS_REASONS)[number][] = [];
  if (pool.closing()) reasons.push('shuttingDown');
  else if (!pool.ready()) reasons.push('starting');
  const b = pool.budget;
  if (b.used() >= READY_MEMORY_FRACTION * b.limit) reasons.push('memory');
  return reasons;
}

export const healthRoutes: FastifyPluginAsync<{ readonly version: string }> = async (app, opts) => {
  const started = Date.now();
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/health', {
    schema: {
      operationId: 'health',
      tags: ['operations'],
      summary: 'The service and its compute pool',
      description: 'Always open (no API key); answered by the main thread, also while every worker is busy. For probes use /health/live and /health/ready.',
      security: [],
      response: { 200: HealthResponseSchema },
    },
  }, async () => ({
    status: 'ok' as const,
    version: opts.version,
    linalg: linalgInfo(),
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    ready: notReadyReasons(app.computePool).length === 0,
    pool: app.computePool.stats(),
  }));

  r.get('/health/live', {
    schema: {
      operationId: 'checkLiveness',
      tags: ['operations'],
      summary: 'Liveness: the process answers',
      description: 'Always 200 while the event loop runs (computations run on worker threads, so a busy service is alive). Kubernetes restarts a pod whose liveness fails.',
      security: [],
      response: { 200: LivenessResponseSchema },
    },
  }, async () => ({ status: 'ok' as const }));

  r.get('/health/ready', {
    schema: {
      operationId: 'checkReadiness',
      tags: ['operations'],
      summary: 'Readiness: send this instance requests',
      description: `200 when ready; 503 while the workers are loading, once shutdown has begun, or while at least ${READY_MEMORY_FRACTION * 100} % of the memory budget is held. ` +
        'Kubernetes sends no traffic to a pod that is not ready.',
      security: [],
      response: { 200: ReadinessResponseSchema, 503: ReadinessResponseSchema },
    },
  }, async (_req, reply) => {
    const reasons = notReadyReasons(app.computePool);
    return reply.code(reasons.length ? 503 : 200).send({ ready: reasons.length === 0, reasons });
  });
};
