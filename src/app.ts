/**
 * Builds the HTTP app as a Fastify instance: validation and OpenAPI from the zod schemas, the
 * routes, one error handler, request ids. Tests build it and inject; src/server.ts boots it.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ComputeResult, ComputeTask } from './compute.ts';
import { DEFAULT_CONFIG, type Config } from './config.ts';
import { ServiceError } from './errors.ts';
import { errorHandler, sendProblem, toProblem } from './http/problem.ts';
import { registerApiKeys } from './http/auth.ts';
import { createPool, type ComputePool } from './pool.ts';
import { documentMultipart, registerMultipartBodies } from './http/multipart.ts';
import { healthRoutes } from '../routes/health.ts';
import { jacobianRoutes } from '../routes/jacobian.ts';
import { hessianRoutes } from '../routes/hessian.ts';

export interface AppOptions {
  readonly config?: Partial<Config>;
  /** Fastify's logger option: false (default, for tests), true, or pino options. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Runs compute tasks in this thread instead of on worker threads (sizing and admission still apply). */
  readonly runTask?: (task: ComputeTask) => Promise<ComputeResult>;
  /** A compute pool made by the caller (who then closes it); default: one of config.workers threads, closed with the app. */
  readonly pool?: ComputePool;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The compute pool the routes run on (the server stops its tasks when a shutdown's grace runs out). */
    computePool: ComputePool;
  }
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

const BINARY_HEADERS = {
  'X-Array-Shape': { type: 'string', description: 'Binary answers: the shape of the array, comma-separated (e.g. 13,13).' },
  'X-Array-Name': { type: 'string', description: "Binary answers: the array's field name in the JSON answer (jacobian, hessian, diagonal, product, inverse)." },
  'X-Parameter-Count': { type: 'integer', description: 'Binary answers: W, where the JSON answer has parameterCount.' },
  'X-Log-Determinant': { type: 'number', description: 'Binary answers of /hessian/inverse: log det(H + αI).' },
  'X-Request-Id': { type: 'string', description: "The request's id in the service logs (the caller's X-Request-Id when it sent one)." },
};

/** The zod transform, plus the binary answers' headers on each 200 that has a .npy form. */
function documentBinaryHeaders(doc: Parameters<typeof jsonSchemaTransform>[0]): ReturnType<typeof jsonSchemaTransform> {
  const out = jsonSchemaTransform(doc);
  const ok = (out.schema as { response?: Record<string, { content?: Record<string, unknown>; headers?: unknown }> } | undefined)?.response?.['200'];
  if (ok?.content?.['application/x-npy']) ok.headers = BINARY_HEADERS;
  const withMultipart = documentMultipart((doc.schema as { body?: unknown } | undefined)?.body, (out.schema as { body?: unknown } | undefined)?.body);
  if (withMultipart) (out.schema as { body?: unknown }).body = withMultipart;
  return out;
}

const COMPUTE_PATHS = new Set(['/jacobian', '/hessian', '/hessian/vector-product', '/hessian/inverse']);

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const config: Config = { ...DEFAULT_CONFIG, ...options.config };
  const version = serviceVersion();
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: config.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true },
    // A caller's X-Request-Id is kept when it is a sane token, so logs can be joined across services.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  // JSON and multipart (below) are the only request bodies; Fastify's default text/plain parser would turn a 415 into a confusing 400.
  app.removeContentTypeParser('text/plain');
  // Our own JSON parser, to tell the user where the JSON breaks (Fastify's drops the parser's message).
  // JSON.parse makes `__proto__` an own key, which the strict schemas then refuse: no prototype pollution.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(new ServiceError('MALFORMED_BODY', { detail: 'the body is empty; send the request as a JSON object' }), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      done(new ServiceError('MALFORMED_BODY', { detail: `the body is not valid JSON: ${(e as Error).message}` }), undefined);
    }
  });
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  app.setErrorHandler(errorHandler(config.bodyLimit));
  // multipart/form-data: a JSON part 'request' with inputs, targets or vector as .npy parts.
  await registerMultipartBodies(app, { bodyLimit: config.bodyLimit });
  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, toProblem(new ServiceError('NOT_FOUND', {
      detail: `no endpoint ${req.method} ${req.url.split('?')[0]}; the endpoints are POST /jacobian, POST /hessian, POST /hessian/vector-product, POST /hessian/inverse, GET /health, GET /openapi.json and GET /docs`,
    }), config.bodyLimit)),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Curvature service',
        version,
        description:
          'Jacobians, Hessians and inverse Hessians of multilayer perceptrons (Bishop, PRML §5.3.4–5.4.6). ' +
          'Parameter order everywhere: layer by layer, weights row-major (out × in, as torch.nn.Linear.weight), then bias — ' +
          'the order of torch.nn.utils.parameters_to_vector. Every answer is JSON by default, or the principal array as a ' +
          'NumPy .npy file (Accept: application/x-npy) or raw little-endian float64 (Accept: application/octet-stream).',
      },
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key, needed by the computing endpoints when the service is started with API_KEYS; /health, /openapi.json and /docs are always open.',
          },
        },
      },
      security: [{ bearerAuth: [] }],
      tags: [
        { name: 'jacobian', description: 'First derivatives of the outputs' },
        { name: 'hessian', description: 'Second derivatives of the error' },
        { name: 'operations', description: 'Health' },
      ],
    },
    transform: documentBinaryHeaders,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const pool = options.pool ?? createPool(config, options.runTask);
  app.decorate('computePool', pool);
  // Fastify closes the server first; the pool then waits for tasks in flight before ending its workers.
  if (!options.pool) app.addHook('onClose', async () => pool.close());
  const runTask = (task: ComputeTask, signal?: AbortSignal): Promise<ComputeResult> => pool.run(task, signal);
  const { maxResultBytes, maxTaskBytes, maxPoints, maxParameters, maxFiniteDifferenceCost } = config;
  const limits = { maxResultBytes, maxTaskBytes, maxPoints, maxParameters, maxFiniteDifferenceCost };
  registerApiKeys(app, config.apiKeys);
  // Shed load before reading a body: a full pool answers 503 at once instead of parsing up to
  // BODY_LIMIT of JSON only to refuse it (the pool checks again when the task is queued).
  app.addHook('onRequest', async (req) => {
    if (req.method === 'POST' && COMPUTE_PATHS.has(req.url.split('?')[0])) pool.admit();
  });
  const { workers, queueLimit, blasThreads } = pool.stats();
  app.log.info({ workers, blasThreads, queueLimit, requestTimeoutMs: config.requestTimeoutMs, apiKeys: config.apiKeys.length }, 'compute pool ready');
  await app.register(healthRoutes, { version, stats: () => pool.stats() });
  await app.register(jacobianRoutes, { runTask, limits });
  await app.register(hessianRoutes, { runTask, limits });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
