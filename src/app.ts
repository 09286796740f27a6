/**
 * The service as a Fastify plugin (serviceApp) and the instance that carries it (buildApp), in the
 * shape of fastify/demo: small plugins for request ids, the connection's limits, the JSON body, refusals, OpenAPI and the
 * compute pool, then the routes; the compute routes are one encapsulated plugin with their own
 * hooks (routes/compute.ts). Tests build it and inject; src/server.ts boots it.
 */
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { DEFAULT_CONFIG, type Config } from './config.ts';
import type { ComputePool } from './pool.ts';
import type { ComputeResult, CurvatureTask } from './core/index.ts';
import { connectionOptions, connectionsPlugin } from './plugins/connections.ts';
import { jsonBodyPlugin } from './plugins/json-body.ts';
import { metricsPlugin } from './plugins/metrics.ts';
import { poolPlugin } from './plugins/pool.ts';
import { problemsPlugin } from './plugins/problems.ts';
import { requestId, requestIdPlugin } from './plugins/request-id.ts';
import { swaggerPlugin } from './plugins/swagger.ts';
import { computeRoutes } from '../routes/compute.ts';
import { healthRoutes } from '../routes/health.ts';

export interface AppOptions {
  readonly config?: Partial<Config>;
  /** Fastify's logger option: false (default, for tests), true, or pino options. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Runs compute tasks in this thread instead of on worker threads (sizing and admission still apply). */
  readonly runTask?: (task: CurvatureTask) => Promise<ComputeResult>;
  /** A compute pool made by the caller (who then closes it); default: one of config.workers threads, closed with the app. */
  readonly pool?: ComputePool;
}

/** The service version from package.json (found from src/ and from dist/src/). */
export function serviceVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'curvature-service' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return '0.0.0';
}

export interface ServiceAppOptions {
  readonly config: Config;
  readonly runTask?: AppOptions['runTask'];
  readonly pool?: ComputePool;
}

/** The whole service, as a plugin of a Fastify instance (its decorations, the pool and the document, on that instance). */
export const serviceApp = fp<ServiceAppOptions>(async (app, opts) => {
  const { config } = opts;
  const version = serviceVersion();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(requestIdPlugin);
  await app.register(connectionsPlugin, { config });
  await app.register(jsonBodyPlugin, { bodyLimit: config.bodyLimit });
  await app.register(problemsPlugin, { bodyLimit: config.bodyLimit });
  await app.register(swaggerPlugin, { version });
  await app.register(poolPlugin, { config, runTask: opts.runTask, pool: opts.pool });
  await app.register(metricsPlugin);
  await app.register(healthRoutes, { version });
  await app.register(computeRoutes, { apiKeys: config.apiKeys, bodyLimit: config.bodyLimit, bodyTimeoutMs: config.bodyTimeoutMs });
}, { name: 'curvature-service' });

/** A Fastify instance with the service on it, not yet listening. */
export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const config: Config = { ...DEFAULT_CONFIG, ...options.config };
  const app = Fastify({
    ...connectionOptions(config),
    logger: options.logger ?? false,
    bodyLimit: config.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true },
    requestIdHeader: false,
    genReqId: requestId,
    // During a shutdown, requests that still arrive on open connections reach the service's own
    // handlers (Fastify sets Connection: close on them): /health/ready answers 503 with its
    // reasons and computing routes a problem+json 503 OVERLOADED, rather than Fastify's bare 503.
    return503OnClosing: false,
  });
  await app.register(serviceApp, { config, runTask: options.runTask, pool: options.pool });
  return app;
}
