/** GET /health — answers once the service can take work. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HealthResponseSchema } from '../schemas/health.ts';
import { linalgInfo } from '../src/core/linalg/index.ts';

export const healthRoutes: FastifyPluginAsync<{ readonly version: string }> = async (app, opts) => {
  const started = Date.now();
  app.withTypeProvider<ZodTypeProvider>().get('/health', {
    schema: {
      operationId: 'health',
      tags: ['operations'],
      summary: 'Liveness and readiness',
      description: 'Always open (no API key); answered by the main thread, also while every worker is busy.',
      security: [],
      response: { 200: HealthResponseSchema },
    },
  }, async () => ({
    status: 'ok' as const,
    version: opts.version,
    linalg: linalgInfo(),
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
    pool: app.computePool.stats(),
  }));
};
