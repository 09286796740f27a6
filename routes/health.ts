/** GET /health — answers once the service can take work. */
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HealthResponseSchema } from '../schemas/health.ts';
import { linalgInfo } from '../src/core/linalg/index.ts';

export interface HealthRouteOptions {
  readonly version: string;
}

export const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, opts) => {
  const started = Date.now();
  app.withTypeProvider<ZodTypeProvider>().get('/health', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness and readiness',
      response: { 200: HealthResponseSchema },
    },
  }, async () => ({
    status: 'ok' as const,
    version: opts.version,
    linalg: linalgInfo(),
    uptimeSeconds: Math.round((Date.now() - started) / 1000),
  }));
};
